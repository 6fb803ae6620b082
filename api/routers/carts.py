"""Storefront carts and checkout.

Writes answer with what the command did (and `X-Trafi-Position`); the full cart,
priced, is `GET /v1/carts/{cart_id}` — pass `min_position` to see your last write.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, Field

from api.auth import CustomerSession, Principal, optional_customer, storefront
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import CART_EXAMPLE, CART_ID, ORDER_ID, PRODUCT_ID, example, with_examples
from api.routers.flags import GUEST_CHECKOUT_DEFAULT, SHIPPING_ESTIMATE_ON_CART, TRUST_BADGES, OptionalVisitorId
from api.services import Services, services
from commands import cart as cart_commands
from commands.checkout import Checkout
from queries.carts import CartDetail

router = APIRouter(prefix="/v1/carts", tags=["storefront: carts and checkout"])

CartId = Annotated[UUID, Path(description="The cart's id, from `POST /v1/carts`")]
Sku = Annotated[str, Path(min_length=1, max_length=64)]



class NewCart(BaseModel):
    model_config = with_examples({"currency": "EUR", "email": "ada@example.com"})
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217; must be the store's currency")
    email: str | None = Field(default=None, max_length=254, description="The buyer's e-mail, if known already")
    visitor_id: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="The storefront's analytics visitor id (as in its `/v1/events`), so the cart's orders count "
                    "in that visitor's funnel; omit it without analytics consent",
    )


class CartCreated(BaseModel):
    model_config = with_examples({"cart_id": CART_ID})
    cart_id: UUID


class NewLine(BaseModel):
    model_config = with_examples({"product_id": PRODUCT_ID, "sku": "MUG-STONE-BLUE", "quantity": 2})
    product_id: UUID
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)


class LineQuantity(BaseModel):
    model_config = with_examples({"quantity": 3})
    quantity: int = Field(ge=1, le=10_000)


class LineChanged(BaseModel):
    model_config = with_examples({"cart_id": CART_ID, "sku": "MUG-STONE-BLUE", "quantity": 2})
    cart_id: UUID
    sku: str
    quantity: int


class CartChanged(BaseModel):
    model_config = with_examples({"cart_id": CART_ID})
    cart_id: UUID


class Buyer(BaseModel):
    model_config = with_examples({"email": "ada@example.com"})
    email: str = Field(max_length=254)


class BuyerIdentified(BaseModel):
    model_config = with_examples({"cart_id": CART_ID, "customer_id": "5a4b3c2d-1e0f-5a9b-8c7d-6e5f4a3b2c1d"})
    cart_id: UUID
    customer_id: UUID


class Address(BaseModel):
    model_config = with_examples({"country": "DE", "name": "Ada Lovelace", "line1": "Invalidenstraße 1", "line2": "",
                              "city": "Berlin", "postal_code": "10115", "phone": "+49 30 1234567"})
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, an EU country")
    name: str = Field(max_length=200)
    line1: str = Field(max_length=200)
    line2: str = Field(default="", max_length=200)
    city: str = Field(max_length=200)
    postal_code: str = Field(max_length=20)
    phone: str = Field(default="", max_length=40)


class ShippingAddress(BaseModel):
    model_config = with_examples({"address": Address.model_config["json_schema_extra"]["examples"][0]})
    address: Address


class AddressSet(BaseModel):
    model_config = with_examples({"cart_id": CART_ID, "country": "DE"})
    cart_id: UUID
    country: str


class ShippingMethod(BaseModel):
    model_config = with_examples({"rate_id": "standard"})
    rate_id: str = Field(min_length=1, max_length=64, description="One of the cart's `shipping_options`")


class MethodChosen(BaseModel):
    model_config = with_examples({"cart_id": CART_ID, "rate_id": "standard"})
    cart_id: UUID
    rate_id: str


class CheckoutRequest(BaseModel):
    model_config = with_examples({"expected_total": 4275}, {})
    expected_total: int | None = Field(
        default=None, ge=0, le=10**12,
        description="The total the buyer saw; checkout stops with 409 `checkout.total_changed` if it moved",
    )


class PriceChange(BaseModel):
    sku: str
    old_price: int
    new_price: int


class OrderPlaced(BaseModel):
    model_config = with_examples({"order_id": ORDER_ID, "order_token": "k3J9x…", "total": 4275, "currency": "EUR",
                              "repriced": []})
    order_id: UUID
    order_token: str = Field(description="Opens `GET /v1/orders/{order_id}` for the buyer (header `X-Order-Token`)")
    total: int
    currency: str
    repriced: list[PriceChange]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Start a cart", response_model=CartCreated)
def create_cart(
    body: NewCart, principal: Principal = Depends(storefront), gateway: CommandGateway = Depends(command_gateway),
):
    command = cart_commands.CreateCart(currency=body.currency, email=body.email, visitor_id=body.visitor_id)
    result = gateway.run(command, principal.ctx, payload=body)
    return result.data


@router.get("/{cart_id}", summary="A cart, priced: lines, tax, shipping options and total",
            response_model=CartDetail, responses=example(CART_EXAMPLE))
def get_cart(cart_id: CartId, principal: Principal = Depends(storefront), svc: Services = Depends(services),
             min_position: MinPosition = None, visitor_id: OptionalVisitorId = None):
    # The playbook flags change what this answer holds for the visitor's variant (api/routers/flags.py)
    variants = svc.flags.variants(principal.store_id, visitor_id)

    def treated(flag_key: str) -> bool:
        return variants.get(flag_key) == "treatment"

    detail = svc.queries.carts.get_cart(principal.ctx, cart_id, min_position=min_position,
                                        early_estimate=treated(SHIPPING_ESTIMATE_ON_CART))
    return detail.model_copy(update={"checkout_mode": "guest" if treated(GUEST_CHECKOUT_DEFAULT) else "account",
                                      "trust_badges": treated(TRUST_BADGES)})


@router.post("/{cart_id}/lines", summary="Add a variant to the cart (adds to an existing line)",
             response_model=LineChanged)
def add_line(cart_id: CartId, body: NewLine, principal: Principal = Depends(storefront),
             gateway: CommandGateway = Depends(command_gateway)):
    command = cart_commands.AddToCart(cart_id=cart_id, product_id=body.product_id, sku=body.sku, quantity=body.quantity)
    return gateway.run(command, principal.ctx, payload=body).data


@router.patch("/{cart_id}/lines/{sku}", summary="Change a line's quantity", response_model=CartChanged)
def change_line(cart_id: CartId, sku: Sku, body: LineQuantity, principal: Principal = Depends(storefront),
                gateway: CommandGateway = Depends(command_gateway)):
    command = cart_commands.ChangeCartLineQuantity(cart_id=cart_id, sku=sku, quantity=body.quantity)
    return gateway.run(command, principal.ctx, payload=body).data


@router.delete("/{cart_id}/lines/{sku}", summary="Remove a line", response_model=CartChanged)
def remove_line(cart_id: CartId, sku: Sku, principal: Principal = Depends(storefront),
                gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(cart_commands.RemoveCartLine(cart_id=cart_id, sku=sku), principal.ctx).data


@router.put("/{cart_id}/buyer", summary="Say who is buying (guest e-mail)", response_model=BuyerIdentified)
def identify_buyer(cart_id: CartId, body: Buyer, principal: Principal = Depends(storefront),
                   gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(cart_commands.IdentifyBuyer(cart_id=cart_id, email=body.email), principal.ctx, payload=body).data


@router.put("/{cart_id}/shipping-address", summary="Set the shipping address", response_model=AddressSet)
def set_shipping_address(cart_id: CartId, body: ShippingAddress, principal: Principal = Depends(storefront),
                         gateway: CommandGateway = Depends(command_gateway)):
    command = cart_commands.SetShippingAddress(cart_id=cart_id, address=body.address.model_dump())
    return gateway.run(command, principal.ctx, payload=body).data


@router.put("/{cart_id}/shipping-method", summary="Choose a shipping method", response_model=MethodChosen)
def choose_shipping_method(cart_id: CartId, body: ShippingMethod, principal: Principal = Depends(storefront),
                           gateway: CommandGateway = Depends(command_gateway)):
    command = cart_commands.ChooseShippingMethod(cart_id=cart_id, rate_id=body.rate_id)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post(
    "/{cart_id}/checkout", status_code=status.HTTP_201_CREATED, response_model=OrderPlaced,
    summary="Check out: reserve stock and place the order (as a guest, or signed in with X-Customer-Session)",
)
def checkout(cart_id: CartId, body: CheckoutRequest, principal: Principal = Depends(storefront),
             customer: CustomerSession | None = Depends(optional_customer),
             gateway: CommandGateway = Depends(command_gateway)):
    command = Checkout(cart_id=cart_id, expected_total=body.expected_total,
                       customer_id=customer.customer_id if customer else None)
    ctx = customer.ctx if customer else principal.ctx
    return gateway.run(command, ctx, payload=body).data
