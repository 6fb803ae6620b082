"""Storefront catalogue: active products with variants, prices and stock (read model `storefront_catalogue`).

Only active products are shown; a draft or archived product is "not found"
here. Stock is shown as a sellable count (on hand − reserved, never below 0)
and an in_stock flag; unit costs never reach the storefront.
"""

from __future__ import annotations

import json
from uuid import UUID

from commands.context import StoreContext
from domain.errors import NotFound
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel
from queries.pagination import DEFAULT_PAGE_SIZE, Page, check_limit, decode_cursor, page_of

PRODUCT_COLUMNS = "p.product_id, p.handle, p.title, p.description, p.categories, s.currency, s.prices_include_tax"
# A product is in stock when any of its variants has a sellable unit.
IN_STOCK = (
    "EXISTS (SELECT 1 FROM rm_catalogue_variants v JOIN rm_catalogue_stock k "
    "ON k.store_id = v.store_id AND k.sku = v.sku WHERE v.product_id = p.product_id AND k.on_hand > k.reserved)"
)


class CatalogueVariant(QueryModel):
    sku: str
    title: str
    price: int  # minor units; gross or net per the product's prices_include_tax
    weight_grams: int
    tax_class: str
    media_urls: tuple[str, ...]
    available: int
    in_stock: bool


class CatalogueProduct(QueryModel):
    product_id: UUID
    handle: str
    title: str
    description: str
    categories: tuple[str, ...]
    currency: str
    prices_include_tax: bool
    price_from: int  # the lowest variant price
    in_stock: bool  # any variant in stock
    variants: tuple[CatalogueVariant, ...]


def _variant(row: tuple) -> CatalogueVariant:
    sku, title, price, weight_grams, tax_class, media_urls, available = row
    available = max(available or 0, 0)
    return CatalogueVariant(
        sku=sku, title=title, price=price, weight_grams=weight_grams, tax_class=tax_class,
        media_urls=tuple(json.loads(media_urls)), available=available, in_stock=available > 0,
    )


def _product(row: tuple, variants: list[CatalogueVariant]) -> CatalogueProduct:
    product_id, handle, title, description, categories, currency, prices_include_tax = row
    return CatalogueProduct(
        product_id=UUID(product_id), handle=handle, title=title, description=description,
        categories=tuple(json.loads(categories)), currency=currency, prices_include_tax=bool(prices_include_tax),
        price_from=min(v.price for v in variants), in_stock=any(v.in_stock for v in variants),
        variants=tuple(variants),
    )


def _variants_of(tx, product_ids: list[str]) -> dict[str, list[CatalogueVariant]]:
    if not product_ids:
        return {}
    rows = tx.execute(
        "SELECT v.product_id, v.sku, v.title, v.price, v.weight_grams, v.tax_class, v.media_urls, "
        "k.on_hand - k.reserved FROM rm_catalogue_variants v "
        "LEFT JOIN rm_catalogue_stock k ON k.store_id = v.store_id AND k.sku = v.sku "
        f"WHERE v.product_id IN ({', '.join(['%s'] * len(product_ids))}) ORDER BY v.product_id, v.line_no",
        product_ids,
    ).fetchall()
    found: dict[str, list[CatalogueVariant]] = {pid: [] for pid in product_ids}
    for row in rows:
        found[row[0]].append(_variant(row[1:]))
    return found


class CatalogueQueries(ReadModelQueries):
    projection_name = "storefront_catalogue"

    def products(
        self, ctx: StoreContext, *, in_stock_only: bool = False, limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None, min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Page[CatalogueProduct]:
        """Active products by handle (alphabetical), optionally only those in stock."""
        check_limit(limit)
        where, params = ["p.store_id = %s", "p.status = 'active'"], [str(ctx.store_id)]
        if in_stock_only:
            where.append(IN_STOCK)
        if cursor is not None:
            (after_handle,) = decode_cursor(cursor, 1)
            where.append("p.handle > %s")
            params.append(after_handle)
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                f"SELECT {PRODUCT_COLUMNS} FROM rm_catalogue_products p "
                "JOIN rm_catalogue_stores s ON s.store_id = p.store_id "
                f"WHERE {' AND '.join(where)} ORDER BY p.handle LIMIT %s",
                (*params, limit + 1),
            ).fetchall()
            variants = _variants_of(tx, [row[0] for row in rows[:limit]])
        return page_of(rows, limit, lambda row: (row[1],), lambda row: _product(row, variants[row[0]]))

    def product(
        self, ctx: StoreContext, handle: str, *,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> CatalogueProduct:
        """One active product by its handle; NotFound if it is not for sale (or not this store's)."""
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(
                f"SELECT {PRODUCT_COLUMNS} FROM rm_catalogue_products p "
                "JOIN rm_catalogue_stores s ON s.store_id = p.store_id "
                "WHERE p.store_id = %s AND p.handle = %s AND p.status = 'active'",
                (str(ctx.store_id), handle),
            ).fetchone()
            if row is None:
                raise NotFound("product", handle)
            variants = _variants_of(tx, [row[0]])
        return _product(row, variants[row[0]])
