"""Admin catalogue: products and variants — create, change, price, cost, status.

Reads: the list is the catalogue read model seen without its "active only" filter
(every status, prices, availability — no unit costs: they never enter that read
model); one product is read from the write side, with unit costs and always
current. Why the two sources: queries/admin_catalog.py.

Writes answer with what the command did, plus the ids the request named (fixed by
the path, so an idempotent replay is identical); read the product back with
`GET /v1/admin/products/{product_id}`.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import ADMIN_PRODUCT_EXAMPLE, ADMIN_PRODUCT_SUMMARY_EXAMPLE, PRODUCT_ID, STOCK_ITEM_ID, example, with_examples
from api.services import Services, services
from commands import catalog
from domain.pricing.tax import TaxClass
from domain.product import SKU_PATTERN, STATUSES
from queries.admin_catalog import AdminProduct, AdminProductSummary
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/admin/products", tags=["admin: catalogue"])

MAX_MONEY = 10**12
# Text that ends up in read-model columns: no control characters (PostgreSQL refuses NUL outright).
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

ProductStatus = Literal[STATUSES]  # draft | active | archived, the domain's values
TaxClassName = Literal[tuple(c.value for c in TaxClass)]
ProductId = Annotated[UUID, Path(description="The product's id, from `POST /v1/admin/products`")]
Sku = Annotated[str, Path(min_length=1, max_length=64, pattern=SKU_PATTERN.pattern)]
Category = Annotated[str, Field(min_length=1, max_length=100, pattern=ONE_LINE)]
Money = Annotated[int, Field(ge=0, le=MAX_MONEY, description="Minor units (cents)")]



class NewProduct(BaseModel):
    model_config = with_examples({"handle": "stoneware-mug", "title": "Stoneware Mug",
                              "description": "Hand-glazed, 350 ml.", "categories": ["mugs"]})
    handle: str = Field(min_length=1, max_length=100, pattern=ONE_LINE,
                        description="Lowercase letters, digits and '-'; unique in the store, part of the product's id")
    title: str = Field(min_length=1, max_length=300, pattern=ONE_LINE)
    description: str = Field(default="", max_length=20_000, pattern=MULTI_LINE)
    categories: list[Category] = Field(default_factory=list, max_length=50)


class ProductCreated(BaseModel):
    model_config = with_examples({"product_id": PRODUCT_ID})
    product_id: UUID


class ProductDetails(BaseModel):
    model_config = with_examples({"title": "Stoneware Mug", "description": "Hand-glazed, 350 ml, dishwasher safe.",
                              "categories": ["kitchen", "mugs"]})
    title: str = Field(min_length=1, max_length=300, pattern=ONE_LINE)
    description: str = Field(default="", max_length=20_000, pattern=MULTI_LINE)
    categories: list[Category] = Field(default_factory=list, max_length=50)


class ProductChanged(BaseModel):
    model_config = with_examples({"product_id": PRODUCT_ID})
    product_id: UUID


class StatusChange(BaseModel):
    model_config = with_examples({"status": "active"})
    status: ProductStatus = Field(description="draft → active/archived, active → draft/archived, archived → draft; "
                                              "a product needs a variant to become active")


class NewVariant(BaseModel):
    model_config = with_examples({"sku": "MUG-STONE-BLUE", "title": "Blue", "price": 1890, "unit_cost": 640,
                              "weight_grams": 420, "tax_class": "standard", "media_urls": []})
    sku: str = Field(min_length=1, max_length=64, pattern=SKU_PATTERN.pattern,
                     description="Unique in the store: letters, digits, '.', '_' or '-'")
    title: str = Field(default="", max_length=300, pattern=ONE_LINE, description="Defaults to the SKU")
    price: Money
    unit_cost: Money
    weight_grams: int = Field(default=0, ge=0, le=10_000_000)
    tax_class: TaxClassName = "standard"
    media_urls: list[Annotated[str, Field(min_length=1, max_length=2000, pattern=ONE_LINE)]] = Field(
        default_factory=list, max_length=20, description="http(s) URLs")


class VariantAdded(BaseModel):
    model_config = with_examples({"product_id": PRODUCT_ID, "sku": "MUG-STONE-BLUE", "stock_item_id": STOCK_ITEM_ID})
    product_id: UUID
    sku: str
    stock_item_id: UUID = Field(description="The variant's stock item: receive stock with `POST /v1/admin/stock/{sku}/receive`")


class NewPrice(BaseModel):
    model_config = with_examples({"price": 1990})
    price: Money


class NewCost(BaseModel):
    model_config = with_examples({"unit_cost": 700})
    unit_cost: Money


class VariantChanged(BaseModel):
    model_config = with_examples({"product_id": PRODUCT_ID, "sku": "MUG-STONE-BLUE"})
    product_id: UUID
    sku: str


@router.get("", summary="List products (every status; prices, not costs)", response_model=Page[AdminProductSummary],
            responses=example({"items": [ADMIN_PRODUCT_SUMMARY_EXAMPLE], "next_cursor": None}),
            **admin_route("catalog:read"))
def list_products(
    principal: Principal = Depends(require("catalog:read")), svc: Services = Depends(services),
    product_status: Annotated[ProductStatus | None, Query(alias="status", description="Only products of this status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")] = None,
    min_position: MinPosition = None,
):
    return svc.queries.admin_catalog.products(
        principal.ctx, status=product_status, limit=limit, cursor=cursor, min_position=min_position,
    )


@router.get("/{product_id}", summary="One product with its variants and unit costs (always current)",
            response_model=AdminProduct, responses=example(ADMIN_PRODUCT_EXAMPLE), **admin_route("catalog:read"))
def get_product(product_id: ProductId, principal: Principal = Depends(require("catalog:read")),
                svc: Services = Depends(services), min_position: MinPosition = None):
    return svc.queries.admin_catalog.product(principal.ctx, product_id, min_position=min_position)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a product (as a draft)",
             response_model=ProductCreated, **admin_route("catalog:write"))
def create_product(body: NewProduct, principal: Principal = Depends(require("catalog:write")),
                   gateway: CommandGateway = Depends(command_gateway)):
    command = catalog.CreateProduct(handle=body.handle, title=body.title, description=body.description,
                                    categories=body.categories)
    return gateway.run(command, principal.ctx, payload=body).data


@router.put("/{product_id}/details", summary="Change a product's title, description and categories",
            response_model=ProductChanged, **admin_route("catalog:write"))
def change_details(product_id: ProductId, body: ProductDetails, principal: Principal = Depends(require("catalog:write")),
                   gateway: CommandGateway = Depends(command_gateway)):
    command = catalog.ChangeProductDetails(product_id=product_id, title=body.title, description=body.description,
                                           categories=body.categories)
    return {"product_id": product_id, **gateway.run(command, principal.ctx, payload=body).data}


@router.put("/{product_id}/status", summary="Publish, unpublish or archive a product",
            response_model=ProductChanged, **admin_route("catalog:write"))
def change_status(product_id: ProductId, body: StatusChange, principal: Principal = Depends(require("catalog:write")),
                  gateway: CommandGateway = Depends(command_gateway)):
    command = catalog.ChangeProductStatus(product_id=product_id, status=body.status)
    return {"product_id": product_id, **gateway.run(command, principal.ctx, payload=body).data}


@router.post("/{product_id}/variants", status_code=status.HTTP_201_CREATED,
             summary="Add a variant (and its stock item, with nothing on hand)", response_model=VariantAdded,
             **admin_route("catalog:write"))
def add_variant(product_id: ProductId, body: NewVariant, principal: Principal = Depends(require("catalog:write")),
                gateway: CommandGateway = Depends(command_gateway)):
    command = catalog.AddVariant(product_id=product_id, **body.model_dump())
    return {"product_id": product_id, **gateway.run(command, principal.ctx, payload=body).data}


@router.put("/{product_id}/variants/{sku}/price", summary="Change a variant's price", response_model=VariantChanged,
            **admin_route("catalog:write"))
def change_price(product_id: ProductId, sku: Sku, body: NewPrice, principal: Principal = Depends(require("catalog:write")),
                 gateway: CommandGateway = Depends(command_gateway)):
    command = catalog.ChangeVariantPrice(product_id=product_id, sku=sku, price=body.price)
    return {"product_id": product_id, "sku": sku, **gateway.run(command, principal.ctx, payload=body).data}


@router.put("/{product_id}/variants/{sku}/cost", summary="Change a variant's unit cost", response_model=VariantChanged,
            **admin_route("catalog:write"))
def change_cost(product_id: ProductId, sku: Sku, body: NewCost, principal: Principal = Depends(require("catalog:write")),
                gateway: CommandGateway = Depends(command_gateway)):
    command = catalog.ChangeVariantCost(product_id=product_id, sku=sku, unit_cost=body.unit_cost)
    return {"product_id": product_id, "sku": sku, **gateway.run(command, principal.ctx, payload=body).data}
