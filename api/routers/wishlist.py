"""The signed-in customer's wishlist: keep variants for later, drop them, or move one into a cart.

Every route needs the storefront key and the customer's `X-Customer-Session`; the
wishlist is the session's customer's, never one named in the path or body. Reads
come from the write side (queries/wishlist.py), so an item shows the moment it is added.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, Field

from api.auth import CustomerSession, signed_in_customer
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import CART_ID, CUSTOMER_ID, PRODUCT_ID, example, with_examples
from api.services import Services, services
from commands.wishlist import AddToWishlist, MoveWishlistItemToCart, RemoveFromWishlist
from queries.wishlist import WishlistView

router = APIRouter(prefix="/v1/account/wishlist", tags=["storefront: wishlist"])

WISHLIST_ID = "8c7b6a5f-4e3d-5c2b-9a1f-0e9d8c7b6a5f"
Sku = Annotated[str, Path(min_length=1, max_length=64, description="The variant's SKU")]



class WishlistEntry(BaseModel):
    model_config = with_examples({"product_id": PRODUCT_ID, "sku": "MUG-STONE-BLUE"})
    product_id: UUID
    sku: str = Field(min_length=1, max_length=64)


class WishlistItemAdded(BaseModel):
    model_config = with_examples({"wishlist_id": WISHLIST_ID, "sku": "MUG-STONE-BLUE", "added": True, "item_count": 3})
    wishlist_id: UUID
    sku: str
    added: bool = Field(description="False when the variant was on the wishlist already (then the status is 200)")
    item_count: int


class WishlistItemRemoved(BaseModel):
    model_config = with_examples({"wishlist_id": WISHLIST_ID, "item_count": 2})
    wishlist_id: UUID
    item_count: int


class MoveToCart(BaseModel):
    model_config = with_examples({"cart_id": CART_ID, "quantity": 1})
    cart_id: UUID = Field(description="An open cart of this store: a guest cart, or one of yours")
    quantity: int = Field(default=1, ge=1, le=10_000)


class MovedToCart(BaseModel):
    model_config = with_examples({"cart_id": CART_ID, "sku": "MUG-STONE-BLUE", "quantity": 1, "wishlist_item_count": 2})
    cart_id: UUID
    sku: str
    quantity: int = Field(description="The cart line's quantity now")
    wishlist_item_count: int


WISHLIST_EXAMPLE = {"customer_id": CUSTOMER_ID, "items": [{"product_id": PRODUCT_ID, "sku": "MUG-STONE-BLUE"}]}


@router.get("", summary="My wishlist, oldest first", response_model=WishlistView, responses=example(WISHLIST_EXAMPLE))
def get_wishlist(customer: CustomerSession = Depends(signed_in_customer), svc: Services = Depends(services),
                 min_position: MinPosition = None):
    # The write side is always current: min_position is accepted like on every GET and never waits.
    return svc.queries.wishlist.get_wishlist(customer.ctx, customer.customer_id)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=WishlistItemAdded,
    summary="Keep a variant on my wishlist (201 added; 200 when it was there already)",
    responses={200: {"model": WishlistItemAdded, "description": "Already on the wishlist: nothing changed"}},
)
def add_to_wishlist(body: WishlistEntry, response: Response, customer: CustomerSession = Depends(signed_in_customer),
                    gateway: CommandGateway = Depends(command_gateway)):
    command = AddToWishlist(customer_id=customer.customer_id, product_id=body.product_id, sku=body.sku)
    data = gateway.run(command, customer.ctx, payload=body).data
    response.status_code = status.HTTP_201_CREATED if data["added"] else status.HTTP_200_OK
    return data


@router.delete("/{sku}", response_model=WishlistItemRemoved, summary="Drop a variant from my wishlist")
def remove_from_wishlist(sku: Sku, customer: CustomerSession = Depends(signed_in_customer),
                         gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(RemoveFromWishlist(customer_id=customer.customer_id, sku=sku), customer.ctx).data


@router.post("/{sku}/move-to-cart", response_model=MovedToCart,
             summary="Move a variant from my wishlist into a cart (off the list and into the cart in one step)")
def move_to_cart(sku: Sku, body: MoveToCart, customer: CustomerSession = Depends(signed_in_customer),
                 gateway: CommandGateway = Depends(command_gateway)):
    command = MoveWishlistItemToCart(customer_id=customer.customer_id, sku=sku, cart_id=body.cart_id,
                                     quantity=body.quantity)
    return gateway.run(command, customer.ctx, payload=body).data
