"""Schema change: a v1 `variant_added` stored by hand is read back as v2 (upcast), on both stores."""

from __future__ import annotations

import json

from eventsourcing.persistence import StoredEvent

from commands.catalog import CreateProduct
from domain.product import Product


def test_v1_variant_added_is_upcast_to_v2(app, bus, shop):
    product_id = shop.products["MUG-1"]
    product = app.repository.get(product_id)
    # Exactly what version 1 of the event looked like: no media_urls, no class_version marker.
    v1_state = {
        "originator_id": {"_type_": "uuid_hex", "_data_": product_id.hex},
        "originator_version": product.version + 1,
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-15T10:00:00+00:00"},
        "sku": "MUG-LEGACY", "title": "Legacy mug", "price": 990, "unit_cost": 400,
        "weight_grams": 350, "tax_class": "standard",
    }
    app.recorder.insert_events([StoredEvent(
        originator_id=product_id, originator_version=product.version + 1,
        topic="trafi.product.variant_added.v1", state=json.dumps(v1_state).encode(),
    )])

    events = list(app.events.get(product_id))
    legacy = events[-1]
    assert isinstance(legacy, Product.VariantAdded)
    assert legacy.media_urls == []  # filled in by upcast_v1_v2
    variant = app.repository.get(product_id).variants["MUG-LEGACY"]
    assert variant == {
        "sku": "MUG-LEGACY", "title": "Legacy mug", "price": 990, "unit_cost": 400,
        "weight_grams": 350, "tax_class": "standard", "media_urls": [],
    }


def test_new_events_are_written_as_current_version(app, bus, shop):
    stored = list(app.recorder.select_events(shop.products["TEE-M"]))
    variant_added = [s for s in stored if s.topic == "trafi.product.variant_added.v1"]
    assert len(variant_added) == 1
    assert json.loads(variant_added[0].state)["class_version"] == 2
