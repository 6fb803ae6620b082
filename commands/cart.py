"""Cart commands: create, lines, buyer, address, shipping method, re-pricing."""

from __future__ import annotations

from uuid import UUID, uuid4

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.cart import Cart
from domain.customer import check_address, normalise_email
from domain.errors import Conflict, InvalidValue
from domain.personal import PersonalData
from domain.product import Product
from domain.store import Store


class CreateCart(Command):
    cart_id: UUID = Field(default_factory=uuid4)
    currency: str = Field(max_length=3)
    email: str | None = Field(default=None, max_length=254)
    # The storefront's analytics visitor id (the same as in its telemetry events), when it has one.
    visitor_id: str | None = Field(default=None, min_length=1, max_length=128)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ctx.store_id, self.cart_id]


def _buyer(store_id: UUID, email: str) -> tuple[UUID, PersonalData]:
    email = normalise_email(email)
    customer_id = ids.customer_id(store_id, email)
    return customer_id, PersonalData(customer_id, email)


def create_cart(cmd: CreateCart, uow: UnitOfWork) -> dict:
    store = uow.get(Store, uow.ctx.store_id, "store")
    if uow.exists(cmd.cart_id):
        raise Conflict(f"cart {cmd.cart_id} already exists", code="cart.exists")
    customer_id, email = _buyer(store.id, cmd.email) if cmd.email else (None, None)
    uow.add(Cart.start(
        cmd.cart_id, store_id=store.id, store_currency=store.currency, currency=cmd.currency,
        customer_id=customer_id, email=email, visitor_id=cmd.visitor_id,
    ))
    return {"cart_id": str(cmd.cart_id)}


class CartCommand(Command):
    cart_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.cart_id]

    def cart(self, uow: UnitOfWork) -> Cart:
        return uow.get(Cart, self.cart_id, "cart")


class AddToCart(CartCommand):
    product_id: UUID
    sku: str = Field(max_length=64)
    quantity: int

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.cart_id, self.product_id]


def add_to_cart(cmd: AddToCart, uow: UnitOfWork) -> dict:
    cart = cmd.cart(uow)
    product = uow.find(Product, cmd.product_id)
    if product is None or not product.sellable:
        raise InvalidValue("product_id", "no such product for sale", code="cart.unknown_product")
    variant = product.variant(cmd.sku)
    cart.add_item(product_id=product.id, variant=variant, product_title=product.title, quantity=cmd.quantity)
    return {"cart_id": str(cart.id), "sku": cmd.sku, "quantity": cart.lines[cmd.sku]["quantity"]}


class ChangeCartLineQuantity(CartCommand):
    sku: str = Field(max_length=64)
    quantity: int


def change_cart_line_quantity(cmd: ChangeCartLineQuantity, uow: UnitOfWork) -> dict:
    cmd.cart(uow).change_quantity(cmd.sku, cmd.quantity)
    return {"cart_id": str(cmd.cart_id)}


class RemoveCartLine(CartCommand):
    sku: str = Field(max_length=64)


def remove_cart_line(cmd: RemoveCartLine, uow: UnitOfWork) -> dict:
    cmd.cart(uow).remove_item(cmd.sku)
    return {"cart_id": str(cmd.cart_id)}


class IdentifyBuyer(CartCommand):
    """Attach the buyer's e-mail (guest) or account; both map to the same customer id."""

    email: str = Field(max_length=254)


def identify_buyer(cmd: IdentifyBuyer, uow: UnitOfWork) -> dict:
    cart = cmd.cart(uow)
    customer_id, email = _buyer(cart.store_id, cmd.email)
    cart.identify(customer_id, email)
    return {"cart_id": str(cart.id), "customer_id": str(customer_id)}


class SetShippingAddress(CartCommand):
    address: dict


def set_shipping_address(cmd: SetShippingAddress, uow: UnitOfWork) -> dict:
    cart = cmd.cart(uow)
    cleaned = check_address(cmd.address)
    country = cleaned.pop("country")
    # The address belongs to the buyer; before we know who that is, the cart is the subject.
    subject = cart.customer_id or cart.id
    cart.set_shipping_address(country, PersonalData(subject, cleaned))
    return {"cart_id": str(cart.id), "country": country}


class ChooseShippingMethod(CartCommand):
    rate_id: str = Field(max_length=64)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.cart_id, ctx.store_id]


def choose_shipping_method(cmd: ChooseShippingMethod, uow: UnitOfWork) -> dict:
    cart = cmd.cart(uow)
    store = uow.get(Store, uow.ctx.store_id, "store")
    cart.choose_shipping_method(cmd.rate_id, store.zones)
    return {"cart_id": str(cart.id), "rate_id": cmd.rate_id}


class RefreshCartPrices(CartCommand):
    pass


def current_prices(cart: Cart, uow: UnitOfWork) -> dict[str, int]:
    """Today's price of every line; a line whose product is gone or not for sale fails the refresh."""
    uow.load(line["product_id"] for line in cart.lines.values())
    prices = {}
    for sku, line in cart.lines.items():
        product = uow.find(Product, line["product_id"])
        if product is None or not product.sellable or sku not in product.variants:
            raise InvalidValue("sku", f"{sku} is no longer for sale", code="cart.unavailable_product")
        prices[sku] = product.variants[sku]["price"]
    return prices


def refresh_cart_prices(cmd: RefreshCartPrices, uow: UnitOfWork) -> dict:
    cart = cmd.cart(uow)
    changes = cart.reprice(current_prices(cart, uow))
    return {"cart_id": str(cart.id), "repriced": changes}
