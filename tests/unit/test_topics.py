"""Every stored event has an explicit, versioned, unique topic, so renaming Python code never orphans history."""

from __future__ import annotations

import re

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

from domain import AGGREGATES

EVENT_TOPIC = re.compile(r"^trafi\.[a-z_]+\.[a-z_]+\.v[0-9]+$")
AGGREGATE_TOPIC = re.compile(r"^trafi\.[a-z_]+\.v[0-9]+$")


def event_classes(aggregate):
    return [
        obj for name, obj in vars(aggregate).items()
        if isinstance(obj, type) and issubclass(obj, CanMutateAggregate) and name != "Event"
    ]


def test_every_aggregate_and_event_has_an_explicit_versioned_topic():
    topics = []
    for aggregate in AGGREGATES:
        assert AGGREGATE_TOPIC.match(aggregate.__dict__["TOPIC"]), aggregate
        assert get_topic(aggregate) == aggregate.TOPIC
        events = event_classes(aggregate)
        assert events, aggregate
        for cls in events:
            topic = cls.TOPIC  # resolves to this very class (checked below), so it is not a shared parent topic
            assert EVENT_TOPIC.match(topic), (cls, topic)
            assert topic.split(".")[1] == aggregate.TOPIC.split(".")[1], (cls, topic)
            assert get_topic(cls) == topic and resolve_topic(topic) is cls
            topics.append(topic)
    assert len(topics) == len(set(topics))
    assert len(topics) >= 35


def test_event_catalogue_lists_every_topic():
    from pathlib import Path

    catalogue = (Path(__file__).parents[2] / "docs" / "events.md").read_text()
    missing = [cls.TOPIC for a in AGGREGATES for cls in event_classes(a) if f"`{cls.TOPIC}`" not in catalogue]
    assert missing == []
