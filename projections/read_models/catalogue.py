"""Storefront catalogue: products with their variants, prices and sellable stock.

What a shop front shows, and nothing it must not (no unit costs). It follows
stock events itself rather than reading the stock-levels read model: projections
advance independently, and one read model must never depend on another's position.
"""

from __future__ import annotations

import json

from domain.product import Product
from domain.stock import StockItem
from domain.store import Store
from projections.projection import Projection, handles
from projections.read_models.timestamps import utc_text


class StorefrontCatalogue(Projection):
    name = "storefront_catalogue"
    tables = ("rm_catalogue_products", "rm_catalogue_variants", "rm_catalogue_stock", "rm_catalogue_stores")

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_catalogue_products ("
            "product_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, handle TEXT NOT NULL, title TEXT NOT NULL, "
            "description TEXT NOT NULL, categories TEXT NOT NULL, status TEXT NOT NULL, "
            "updated_at TEXT NOT NULL, version BIGINT NOT NULL)"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_catalogue_products_store_status "
            "ON rm_catalogue_products (store_id, status, handle)"
        )
        # line_no: the version of the event that added the variant, so variants read back in that order.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_catalogue_variants ("
            "product_id TEXT NOT NULL, sku TEXT NOT NULL, store_id TEXT NOT NULL, line_no BIGINT NOT NULL, "
            "title TEXT NOT NULL, price BIGINT NOT NULL, weight_grams INTEGER NOT NULL, tax_class TEXT NOT NULL, "
            "media_urls TEXT NOT NULL, PRIMARY KEY (product_id, sku))"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_catalogue_stock ("
            "stock_item_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, sku TEXT NOT NULL, "
            "on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL)"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_catalogue_stock_store_sku ON rm_catalogue_stock (store_id, sku)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_catalogue_stores ("
            "store_id TEXT PRIMARY KEY, currency TEXT NOT NULL, prices_include_tax INTEGER NOT NULL)"
        )

    # --- stores ----------------------------------------------------------------------------
    @handles(Store.Created)
    def store_opened(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO rm_catalogue_stores VALUES (%s, %s, %s)",
            (str(event.originator_id), event.currency, int(event.prices_include_tax)),
        )

    @handles(Store.TaxSettingsChanged)
    def tax_settings_changed(self, tx, event) -> None:
        tx.execute(
            "UPDATE rm_catalogue_stores SET prices_include_tax = %s WHERE store_id = %s",
            (int(event.prices_include_tax), str(event.originator_id)),
        )

    @handles(Store.CurrencyChanged)
    def currency_changed(self, tx, event) -> None:
        tx.execute(
            "UPDATE rm_catalogue_stores SET currency = %s WHERE store_id = %s",
            (event.currency, str(event.originator_id)),
        )

    # --- products --------------------------------------------------------------------------
    @handles(Product.Created)
    def product_created(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO rm_catalogue_products VALUES (%s, %s, %s, %s, %s, %s, 'draft', %s, %s)",
            (str(event.originator_id), str(event.store_id), event.handle, event.title, event.description,
             json.dumps(list(event.categories)), utc_text(event.timestamp), event.originator_version),
        )

    @handles(Product.DetailsChanged)
    def details_changed(self, tx, event) -> None:
        self._touch(
            tx, event, title=event.title, description=event.description, categories=json.dumps(list(event.categories)),
        )

    @handles(Product.StatusChanged)
    def status_changed(self, tx, event) -> None:
        self._touch(tx, event, status=event.status)

    @handles(Product.VariantAdded)
    def variant_added(self, tx, event) -> None:
        # The event does not repeat the store; the product row (this projection's own) knows it.
        tx.execute(
            "INSERT INTO rm_catalogue_variants "
            "SELECT product_id, %s, store_id, %s, %s, %s, %s, %s, %s FROM rm_catalogue_products WHERE product_id = %s",
            (event.sku, event.originator_version, event.title, event.price, event.weight_grams, event.tax_class,
             json.dumps(list(event.media_urls)), str(event.originator_id)),
        )
        self._touch(tx, event)

    @handles(Product.PriceChanged)
    def price_changed(self, tx, event) -> None:
        tx.update("rm_catalogue_variants", {"product_id": str(event.originator_id), "sku": event.sku},
                  set={"price": event.price})
        self._touch(tx, event)

    @staticmethod
    def _touch(tx, event, **changes) -> None:
        tx.update(
            "rm_catalogue_products", {"product_id": str(event.originator_id)},
            set={**changes, "updated_at": utc_text(event.timestamp), "version": event.originator_version},
        )

    # --- stock -------------------------------------------------------------------------------
    @handles(StockItem.Created)
    def stock_item_created(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO rm_catalogue_stock VALUES (%s, %s, %s, 0, 0)",
            (str(event.originator_id), str(event.store_id), event.sku),
        )

    @handles(StockItem.Received)
    def stock_received(self, tx, event) -> None:
        self._move_stock(tx, event, on_hand=event.quantity)

    @handles(StockItem.Adjusted)
    def stock_adjusted(self, tx, event) -> None:
        tx.execute(
            "UPDATE rm_catalogue_stock SET on_hand = %s WHERE stock_item_id = %s",
            (event.on_hand, str(event.originator_id)),
        )

    @handles(StockItem.Reserved)
    def stock_reserved(self, tx, event) -> None:
        self._move_stock(tx, event, reserved=event.quantity)

    @handles(StockItem.Released)
    def stock_released(self, tx, event) -> None:
        self._move_stock(tx, event, reserved=-event.quantity)

    @handles(StockItem.Committed)
    def stock_committed(self, tx, event) -> None:
        self._move_stock(tx, event, on_hand=-event.quantity, reserved=-event.quantity)

    @staticmethod
    def _move_stock(tx, event, *, on_hand: int = 0, reserved: int = 0) -> None:
        tx.update("rm_catalogue_stock", {"stock_item_id": str(event.originator_id)},
                  add={"on_hand": on_hand, "reserved": reserved})
