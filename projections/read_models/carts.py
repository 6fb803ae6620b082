"""Cart view: a cart's header and lines, and the store settings needed to price it.

Totals and the shipping estimate are not stored: they are computed when the cart
is read, by the same pure pricing functions checkout uses (queries/carts.py), so
the view can never disagree with what checkout will charge. That is why this
projection keeps each store's tax settings and shipping zones in a table of its
own — it may not read another projection's tables.
"""

from __future__ import annotations

import json

from domain.cart import Cart
from domain.store import Store
from projections.projection import Projection, handles
from projections.read_models.timestamps import utc_text


class CartView(Projection):
    name = "cart_view"
    tables = ("rm_carts", "rm_cart_lines", "rm_cart_stores")

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_carts ("
            "cart_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, currency TEXT NOT NULL, customer_id TEXT, "
            "country TEXT, shipping_method TEXT, status TEXT NOT NULL, order_id TEXT, "
            "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version BIGINT NOT NULL)"
        )
        # line_no: the version of the event that added the line, so lines read back in the order added.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_cart_lines ("
            "cart_id TEXT NOT NULL, sku TEXT NOT NULL, line_no BIGINT NOT NULL, product_id TEXT NOT NULL, "
            "title TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price BIGINT NOT NULL, tax_class TEXT NOT NULL, "
            "weight_grams INTEGER NOT NULL, PRIMARY KEY (cart_id, sku))"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_cart_stores ("
            "store_id TEXT PRIMARY KEY, currency TEXT NOT NULL, prices_include_tax INTEGER NOT NULL, "
            "origin_country TEXT NOT NULL, rounding TEXT NOT NULL, shipping_zones TEXT NOT NULL)"
        )

    # --- store settings ------------------------------------------------------------------
    @handles(Store.Created)
    def store_opened(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO rm_cart_stores VALUES (%s, %s, %s, %s, %s, '[]')",
            (str(event.originator_id), event.currency, int(event.prices_include_tax), event.origin_country,
             event.rounding),
        )

    @handles(Store.TaxSettingsChanged)
    def tax_settings_changed(self, tx, event) -> None:
        tx.execute(
            "UPDATE rm_cart_stores SET prices_include_tax = %s, origin_country = %s, rounding = %s WHERE store_id = %s",
            (int(event.prices_include_tax), event.origin_country, event.rounding, str(event.originator_id)),
        )

    @handles(Store.ShippingZonesSet)
    def shipping_zones_set(self, tx, event) -> None:
        tx.execute(
            "UPDATE rm_cart_stores SET shipping_zones = %s WHERE store_id = %s",
            (json.dumps(event.zones, sort_keys=True), str(event.originator_id)),
        )

    @handles(Store.CurrencyChanged)
    def currency_changed(self, tx, event) -> None:
        tx.execute(
            "UPDATE rm_cart_stores SET currency = %s WHERE store_id = %s", (event.currency, str(event.originator_id))
        )

    # --- carts ---------------------------------------------------------------------------
    @handles(Cart.Created)
    def created(self, tx, event) -> None:
        at = utc_text(event.timestamp)
        tx.execute(
            "INSERT INTO rm_carts VALUES (%s, %s, %s, %s, NULL, NULL, 'open', NULL, %s, %s, %s)",
            (str(event.originator_id), str(event.store_id), event.currency,
             str(event.customer_id) if event.customer_id else None, at, at, event.originator_version),
        )

    @handles(Cart.ItemAdded)
    def item_added(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO rm_cart_lines VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (str(event.originator_id), event.sku, event.originator_version, str(event.product_id), event.title,
             event.quantity, event.unit_price, event.tax_class, event.weight_grams),
        )
        self._touch(tx, event)

    @handles(Cart.QuantityChanged)
    def quantity_changed(self, tx, event) -> None:
        self._set_line(tx, event, quantity=event.quantity)

    @handles(Cart.LinePriceChanged)
    def line_price_changed(self, tx, event) -> None:
        self._set_line(tx, event, unit_price=event.new_price)

    @handles(Cart.ItemRemoved)
    def item_removed(self, tx, event) -> None:
        tx.execute("DELETE FROM rm_cart_lines WHERE cart_id = %s AND sku = %s", (str(event.originator_id), event.sku))
        self._touch(tx, event)

    @handles(Cart.BuyerIdentified)
    def buyer_identified(self, tx, event) -> None:
        self._touch(tx, event, customer_id=str(event.customer_id))

    @handles(Cart.ShippingAddressSet)
    def shipping_address_set(self, tx, event) -> None:
        # As in the aggregate: a rate belongs to a zone, so a new country drops the chosen method.
        tx.execute(
            "UPDATE rm_carts SET shipping_method = CASE WHEN country = %s THEN shipping_method END, country = %s "
            "WHERE cart_id = %s",
            (event.country, event.country, str(event.originator_id)),
        )
        self._touch(tx, event)

    @handles(Cart.ShippingMethodChosen)
    def shipping_method_chosen(self, tx, event) -> None:
        self._touch(tx, event, shipping_method=event.rate_id)

    @handles(Cart.CheckedOut)
    def checked_out(self, tx, event) -> None:
        self._touch(tx, event, status="checked_out", order_id=str(event.order_id))

    # --- helpers ------------------------------------------------------------------------------
    def _set_line(self, tx, event, **changes) -> None:
        tx.update("rm_cart_lines", {"cart_id": str(event.originator_id), "sku": event.sku}, set=changes)
        self._touch(tx, event)

    @staticmethod
    def _touch(tx, event, **changes) -> None:
        # Rows, not SQL: a cart's many small events within a batch merge into one UPDATE.
        tx.update(
            "rm_carts", {"cart_id": str(event.originator_id)},
            set={**changes, "updated_at": utc_text(event.timestamp), "version": event.originator_version},
        )
