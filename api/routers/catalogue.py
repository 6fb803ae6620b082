"""Storefront catalogue: active products with live availability (read model `storefront_catalogue`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.auth import Principal, storefront
from api.commanding import MinPosition
from api.examples import PRODUCT_EXAMPLE, example
from api.services import Services, services
from queries.catalogue import CatalogueProduct
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/products", tags=["storefront: catalogue"])

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]


@router.get(
    "", summary="List products for sale", response_model=Page[CatalogueProduct],
    responses=example({"items": [PRODUCT_EXAMPLE], "next_cursor": None}),
)
def list_products(
    principal: Principal = Depends(storefront), svc: Services = Depends(services),
    in_stock: Annotated[bool, Query(description="Only products with a variant in stock")] = False,
    limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None, min_position: MinPosition = None,
):
    return svc.queries.catalogue.products(
        principal.ctx, in_stock_only=in_stock, limit=limit, cursor=cursor, min_position=min_position,
    )


@router.get(
    "/{handle}", summary="One product with its variants and availability", response_model=CatalogueProduct,
    responses=example(PRODUCT_EXAMPLE),
)
def get_product(
    handle: Annotated[str, Path(min_length=1, max_length=100)],
    principal: Principal = Depends(storefront), svc: Services = Depends(services), min_position: MinPosition = None,
):
    return svc.queries.catalogue.product(principal.ctx, handle, min_position=min_position)
