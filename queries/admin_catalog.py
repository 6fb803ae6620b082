"""Admin catalogue: every product of the store, whatever its status — and, one at a time, with unit costs.

Two sources, on purpose:

* The list is the storefront catalogue read model (`storefront_catalogue`) seen
  without its "active only" filter: that read model already keeps drafts and
  archived products with their status, variants, prices and stock. It does not
  hold unit costs — they are kept out of it so that they can never reach a shop
  front — so list items show prices, not costs.
* One product is read from the write side: the Product aggregate, one primary-key
  read. That is where the costs are, it is always current (an admin sees their
  edit at once, without `min_position`), and it costs less than a second
  projection of every product for a screen a handful of admins open.
"""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

from commands.application import TrafiApplication
from commands.context import StoreContext
from domain.errors import InvalidValue, NotFound
from domain.product import STATUSES, Product
from projections.read_models.timestamps import from_utc_text
from projections.views import ViewStore
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel
from queries.pagination import DEFAULT_PAGE_SIZE, Page, check_limit, decode_cursor, page_of


class AdminListVariant(QueryModel):
    sku: str
    title: str
    price: int  # minor units; gross or net per the store's tax mode
    available: int  # on hand − reserved


class AdminProductSummary(QueryModel):
    product_id: UUID
    handle: str
    title: str
    status: str  # draft | active | archived
    categories: tuple[str, ...]
    variants: tuple[AdminListVariant, ...]
    updated_at: datetime


class AdminVariant(QueryModel):
    sku: str
    title: str
    price: int
    unit_cost: int  # what one unit costs the merchant (minor units)
    weight_grams: int
    tax_class: str
    media_urls: tuple[str, ...]


class AdminProduct(QueryModel):
    product_id: UUID
    handle: str
    title: str
    description: str
    categories: tuple[str, ...]
    status: str
    variants: tuple[AdminVariant, ...]  # in the order they were added
    version: int  # of the aggregate: how many changes it has seen
    created_at: datetime
    updated_at: datetime


def _summary(row: tuple, variants: list[AdminListVariant]) -> AdminProductSummary:
    product_id, handle, title, status, categories, updated_at = row
    return AdminProductSummary(
        product_id=UUID(product_id), handle=handle, title=title, status=status,
        categories=tuple(json.loads(categories)), variants=tuple(variants), updated_at=from_utc_text(updated_at),
    )


class AdminCatalogQueries(ReadModelQueries):
    projection_name = "storefront_catalogue"

    def __init__(self, views: ViewStore, app: TrafiApplication):
        super().__init__(views)
        self.app = app

    def products(
        self, ctx: StoreContext, *, status: str | None = None, limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None, min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Page[AdminProductSummary]:
        """Every product of the store by handle (alphabetical), optionally of one status."""
        check_limit(limit)
        where, params = ["store_id = %s"], [str(ctx.store_id)]
        if status is not None:
            if status not in STATUSES:
                raise InvalidValue("status", f"one of {', '.join(STATUSES)}", code="query.invalid_status")
            where.append("status = %s")
            params.append(status)
        if cursor is not None:
            (after_handle,) = decode_cursor(cursor, 1)
            where.append("handle > %s")
            params.append(after_handle)
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                "SELECT product_id, handle, title, status, categories, updated_at FROM rm_catalogue_products "
                f"WHERE {' AND '.join(where)} ORDER BY handle LIMIT %s",
                (*params, limit + 1),
            ).fetchall()
            variants = _variants_of(tx, [row[0] for row in rows[:limit]])
        return page_of(rows, limit, lambda row: (row[1],), lambda row: _summary(row, variants[row[0]]))

    def product(self, ctx: StoreContext, product_id: UUID, *, min_position: int | None = None) -> AdminProduct:
        """One product with unit costs. NotFound if there is none of that id in this store.

        `min_position` is accepted like on every query, and needs no waiting: the write side is always current.
        """
        found, _ = self.app.load_many([product_id])
        product = found.get(product_id)
        if not isinstance(product, Product) or product.store_id != ctx.store_id:
            raise NotFound("product", product_id)
        return AdminProduct(
            product_id=product.id, handle=product.handle, title=product.title, description=product.description,
            categories=tuple(product.categories), status=product.status,
            variants=tuple(
                AdminVariant(sku=v["sku"], title=v["title"], price=v["price"], unit_cost=v["unit_cost"],
                             weight_grams=v["weight_grams"], tax_class=v["tax_class"],
                             media_urls=tuple(v.get("media_urls", ())))
                for v in product.variants.values()
            ),
            version=product.version, created_at=product.created_on, updated_at=product.modified_on,
        )


def _variants_of(tx, product_ids: list[str]) -> dict[str, list[AdminListVariant]]:
    found: dict[str, list[AdminListVariant]] = {pid: [] for pid in product_ids}
    if not product_ids:
        return found
    rows = tx.execute(
        "SELECT v.product_id, v.sku, v.title, v.price, COALESCE(k.on_hand - k.reserved, 0) "
        "FROM rm_catalogue_variants v "
        "LEFT JOIN rm_catalogue_stock k ON k.store_id = v.store_id AND k.sku = v.sku "
        f"WHERE v.product_id IN ({', '.join(['%s'] * len(product_ids))}) ORDER BY v.product_id, v.line_no",
        product_ids,
    ).fetchall()
    for product_id, sku, title, price, available in rows:
        found[product_id].append(AdminListVariant(sku=sku, title=title, price=price, available=int(available)))
    return found
