"""The embedded demo: a seeded store (≈50 products with costs, stock, EU VAT, shipping zones)
and simulated buyers going through checkout, payment, fulfilment and cancellation.

Everything goes through the command bus, exactly as the API will.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from uuid import UUID

from commands.bus import CommandBus
from commands.cart import AddToCart, ChooseShippingMethod, CreateCart, IdentifyBuyer, SetShippingAddress
from commands.catalog import AddVariant, ChangeProductStatus, CreateProduct
from commands.checkout import Checkout
from commands.context import StoreContext
from commands.orders import CancelOrder, FulfilOrder, MarkOrderPaid
from commands.stock import ReceiveStock
from commands.store import OpenStore, SetShippingZones
from domain import ids
from domain.errors import InsufficientStock
from domain.pricing.tax import EU_COUNTRIES

DEMO_SLUG = "trafi-demo"
NEAR = ["AT", "BE", "NL", "LU", "FR", "DK", "PL", "CZ"]

# (category, tax class, product names, price range in cents, gross margin range in basis points)
CATALOGUE = [
    ("coffee", "reduced", ["Ethiopia Yirgacheffe", "Colombia Huila", "Kenya AA", "Brazil Cerrado", "Guatemala Antigua",
                           "Sumatra Mandheling", "House Espresso", "Decaf Swiss Water", "Costa Rica Tarrazu"], (890, 2490), (3500, 5500)),
    ("tea", "reduced", ["Sencha", "Darjeeling First Flush", "Assam Breakfast", "Earl Grey", "Rooibos Vanilla",
                        "Jasmine Pearls", "Oolong Milk"], (590, 1990), (4500, 6500)),
    ("books", "reduced", ["The Coffee Atlas", "Brewing Science", "Roasting at Home", "Tea Ceremony",
                          "Latte Art Basics", "Origins"], (1490, 3990), (2500, 4000)),
    ("mugs", "standard", ["Stoneware Mug", "Double-Wall Glass", "Enamel Camp Mug", "Espresso Cup Pair",
                          "Travel Tumbler", "Porcelain Cup", "Cortado Glass"], (990, 3490), (5000, 7000)),
    ("equipment", "standard", ["Pour-Over Dripper", "Gooseneck Kettle", "Hand Grinder", "French Press",
                               "Moka Pot", "Cold Brew Jar", "Digital Scale", "Milk Frother", "AeroPress"], (1990, 14990), (3000, 5000)),
    ("apparel", "standard", ["Barista Apron", "Logo Tee", "Beanie", "Hoodie", "Tote Bag", "Socks"], (1490, 5990), (5500, 7000)),
    ("accessories", "standard", ["Filter Papers", "Cleaning Tablets", "Tamper", "Knock Box", "Storage Canister",
                                 "Coasters Set"], (390, 3990), (4500, 6500)),
]

SHIPPING_ZONES = [
    {"id": "domestic", "name": "Germany", "countries": ["DE"], "rates": [
        {"id": "standard", "name": "DHL Paket (free over 49 €)", "kind": "free_over", "amount": 495, "free_over": 4900},
        {"id": "express", "name": "DHL Express", "kind": "flat", "amount": 1290},
    ]},
    {"id": "eu-near", "name": "Neighbouring countries", "countries": NEAR, "rates": [
        {"id": "standard", "name": "Standard (free over 79 €)", "kind": "free_over", "amount": 890, "free_over": 7900},
        {"id": "weight", "name": "By weight", "kind": "weight", "brackets": [
            {"up_to_grams": 2000, "amount": 790}, {"up_to_grams": 10000, "amount": 1490}, {"up_to_grams": 31500, "amount": 2490}]},
    ]},
    {"id": "eu-far", "name": "Rest of the EU", "countries": sorted(EU_COUNTRIES - set(NEAR) - {"DE"}), "rates": [
        {"id": "standard", "name": "International parcel", "kind": "weight", "brackets": [
            {"up_to_grams": 2000, "amount": 1290}, {"up_to_grams": 10000, "amount": 2190}, {"up_to_grams": 31500, "amount": 3490}]},
    ]},
]


@dataclass
class DemoStore:
    ctx: StoreContext
    variants: list[tuple[UUID, str]] = field(default_factory=list)  # (product id, sku)


def _handle(name: str) -> str:
    return name.lower().replace(" ", "-").replace("'", "")


def demo_context() -> StoreContext:
    return StoreContext(store_id=ids.store_id(DEMO_SLUG), actor="demo")


def seed_demo_store(bus: CommandBus, rng: random.Random) -> DemoStore:
    """Open the demo store and its catalogue. Deterministic ids: seeding twice changes nothing."""
    ctx = demo_context()
    demo = DemoStore(ctx)
    if bus.app.load_many([ctx.store_id])[0]:
        return _existing(bus, demo)
    bus.execute(OpenStore(slug=DEMO_SLUG, name="Trafi Demo Roastery", currency="EUR", prices_include_tax=True,
                          origin_country="DE"), ctx)
    bus.execute(SetShippingZones(zones=SHIPPING_ZONES), ctx)
    for category, tax_class, names, (low, high), margins in CATALOGUE:
        for name in names:
            handle = _handle(name)
            product_id = UUID(bus.execute(CreateProduct(handle=handle, title=name, categories=[category],
                                                        description=f"{name} — from the Trafi demo roastery."), ctx).data["product_id"])
            price = rng.randrange(low, high, 10) - 10 + 9  # ends in 9: 12.49, 8.99 …
            margin_bp = rng.randrange(*margins)
            sku = f"{category[:3].upper()}-{handle[:12].upper().strip('-')}-{len(demo.variants) + 1:03d}"
            bus.execute(AddVariant(product_id=product_id, sku=sku, title="Default", price=price,
                                   unit_cost=price * (10_000 - margin_bp) // 10_000, weight_grams=rng.choice([250, 400, 600, 1000, 1800]),
                                   tax_class=tax_class), ctx)
            bus.execute(ChangeProductStatus(product_id=product_id, status="active"), ctx)
            bus.execute(ReceiveStock(sku=sku, quantity=rng.randrange(20, 200), reason="opening stock"), ctx)
            demo.variants.append((product_id, sku))
    return demo


def _existing(bus: CommandBus, demo: DemoStore) -> DemoStore:
    product_ids = [ids.product_id(demo.ctx.store_id, _handle(name)) for _, _, names, _, _ in CATALOGUE for name in names]
    products = bus.app.load_many(product_ids)[0]  # one query for the whole catalogue
    demo.variants = [(product_id, sku) for product_id in product_ids for sku in products[product_id].variants]
    return demo


@dataclass
class TrafficSummary:
    carts: int = 0
    orders: int = 0
    paid: int = 0
    fulfilled: int = 0
    cancelled: int = 0
    out_of_stock: int = 0
    revenue: int = 0


def simulate_buyers(bus: CommandBus, demo: DemoStore, buyers: int, rng: random.Random) -> TrafficSummary:
    summary = TrafficSummary()
    ctx = demo.ctx
    for n in range(buyers):
        summary.carts += 1
        cart_id = UUID(bus.execute(CreateCart(currency="EUR"), ctx).data["cart_id"])
        for product_id, sku in rng.sample(demo.variants, rng.choice([1, 1, 2, 3])):
            bus.execute(AddToCart(cart_id=cart_id, product_id=product_id, sku=sku, quantity=rng.choice([1, 1, 2])), ctx)
        if rng.random() < 0.35:
            continue  # abandoned before checkout: the autopilot's raw material
        country = "DE" if rng.random() < 0.5 else rng.choice(sorted(EU_COUNTRIES))
        bus.execute(IdentifyBuyer(cart_id=cart_id, email=f"buyer{rng.randrange(buyers // 2 + 1)}@example.com"), ctx)
        bus.execute(SetShippingAddress(cart_id=cart_id, address={
            "country": country, "name": f"Buyer {n}", "line1": f"{n} Demo Street", "city": "Demo City", "postal_code": "10115",
        }), ctx)
        bus.execute(ChooseShippingMethod(cart_id=cart_id, rate_id="standard"), ctx)
        try:
            placed = bus.execute(Checkout(cart_id=cart_id), ctx)
        except InsufficientStock:
            summary.out_of_stock += 1
            continue
        summary.orders += 1
        order_id = UUID(placed.data["order_id"])
        if rng.random() < 0.1:
            bus.execute(CancelOrder(order_id=order_id, reason="buyer changed their mind"), ctx)
            summary.cancelled += 1
            continue
        bus.execute(MarkOrderPaid(order_id=order_id, amount=placed.data["total"], reference=f"sandbox_{n}"), ctx)
        summary.paid += 1
        summary.revenue += placed.data["total"]
        if rng.random() < 0.6:
            order = bus.app.load_many([order_id])[0][order_id]
            bus.execute(FulfilOrder(order_id=order_id, lines={l["sku"]: l["quantity"] for l in order.lines},
                                    carrier="DHL", tracking_number=f"00340434{n:010d}"), ctx)
            summary.fulfilled += 1
    return summary
