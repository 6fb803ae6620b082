"""Small, explicit builders for test data."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid4

from commands.bus import CommandBus
from commands.cart import AddToCart, ChooseShippingMethod, CreateCart, IdentifyBuyer, SetShippingAddress
from commands.catalog import AddVariant, ChangeProductStatus, CreateProduct
from commands.context import StoreContext
from commands.stock import ReceiveStock
from commands.store import OpenStore, SetShippingZones
from domain import ids

ADDRESS_DE = {"country": "DE", "name": "Erika Mustermann", "line1": "Heidestraße 17", "city": "Köln", "postal_code": "51147"}

ZONES = [
    {
        "id": "eu-core", "name": "Germany and neighbours", "countries": ["DE", "AT", "NL", "BE", "FR"],
        "rates": [
            {"id": "standard", "name": "Standard", "kind": "free_over", "amount": 490, "free_over": 5000},
            {"id": "express", "name": "Express", "kind": "flat", "amount": 1290},
        ],
    },
    {
        "id": "eu-rest", "name": "Rest of the EU", "countries": ["IT", "ES", "PT", "PL", "SE", "FI", "IE", "HU"],
        "rates": [
            {"id": "parcel", "name": "Parcel by weight", "kind": "weight",
             "brackets": [{"up_to_grams": 2000, "amount": 990}, {"up_to_grams": 30000, "amount": 1990}]},
        ],
    },
]


@dataclass
class Shop:
    ctx: StoreContext
    products: dict[str, UUID] = field(default_factory=dict)  # sku → product id


def seed_small_store(bus: CommandBus, slug: str | None = None, *, stock: int = 100) -> Shop:
    slug = slug or f"shop-{uuid4().hex[:8]}"
    ctx = StoreContext(store_id=ids.store_id(slug), actor="test")
    bus.execute(OpenStore(slug=slug, name="Test Shop", currency="EUR", prices_include_tax=True, origin_country="DE"), ctx)
    return fill_store(bus, ctx, stock=stock)


def fill_store(bus: CommandBus, ctx: StoreContext, *, stock: int = 100) -> Shop:
    """Shipping zones and three active products (with stock) in an open store."""
    bus.execute(SetShippingZones(zones=ZONES), ctx)
    shop = Shop(ctx)
    for handle, sku, price, cost, tax_class in [
        ("mug", "MUG-1", 1500, 600, "standard"),
        ("book", "BOOK-1", 2400, 1400, "reduced"),
        ("tee", "TEE-M", 2900, 900, "standard"),
    ]:
        product_id = UUID(bus.execute(CreateProduct(handle=handle, title=handle.title()), ctx).data["product_id"])
        bus.execute(AddVariant(product_id=product_id, sku=sku, price=price, unit_cost=cost, weight_grams=400, tax_class=tax_class), ctx)
        bus.execute(ChangeProductStatus(product_id=product_id, status="active"), ctx)
        if stock:
            bus.execute(ReceiveStock(sku=sku, quantity=stock), ctx)
        shop.products[sku] = product_id
    return shop


def ready_cart(bus: CommandBus, shop: Shop, lines: dict[str, int], *, email: str = "buyer@example.com") -> UUID:
    """A cart with lines, a buyer, a German address and standard shipping: ready to check out."""
    cart_id = UUID(bus.execute(CreateCart(currency="EUR"), shop.ctx).data["cart_id"])
    for sku, qty in lines.items():
        bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products[sku], sku=sku, quantity=qty), shop.ctx)
    bus.execute(IdentifyBuyer(cart_id=cart_id, email=email), shop.ctx)
    bus.execute(SetShippingAddress(cart_id=cart_id, address=ADDRESS_DE), shop.ctx)
    bus.execute(ChooseShippingMethod(cart_id=cart_id, rate_id="standard"), shop.ctx)
    return cart_id


def draft_experiment(bus: CommandBus, shop: Shop, flag_key: str = "checkout.trust_badges") -> UUID:
    """A merchant's ChangeSet on `flag_key`, drafted and submitted (for the `changesets` read model)."""
    from datetime import datetime, timezone
    from uuid import uuid4

    from commands.changeset import DraftChangeSet, SubmitChangeSet

    contract = {
        "hypothesis": {"problem": "few trust signals", "expected_outcome": "more payments", "confidence": "low"},
        "action_plan": {"type": "feature_flag", "target_segment": "all visitors", "rollout_strategy": "holdout",
                        "rollout_percentage": 50, "implementation": {"flag_key": flag_key}},
        "guardrails": {"profit_floor_min_margin_pct": 10, "stock_threshold": 0, "risk_level": "low"},
        "rollback_plan": {"procedure": "flag off", "estimated_rollback_time_minutes": 1},
        "proof_plan": {"primary_metrics": ["gross_profit_per_visitor"], "holdout_pct": 50, "method": "bayesian",
                       "minimum_sample_size": 1000, "measurement_window_days": 14, "significance_threshold": 0.05},
    }
    changeset_id, now = uuid4(), datetime.now(timezone.utc)
    bus.execute(DraftChangeSet(changeset_id=changeset_id, contract=contract, at=now), shop.ctx)
    bus.execute(SubmitChangeSet(changeset_id=changeset_id, at=now), shop.ctx)
    return changeset_id
