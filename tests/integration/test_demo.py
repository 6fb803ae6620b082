"""README command 1's job: the embedded demo seeds a store and sells through the write side."""

from __future__ import annotations

import re

from api.cli import main
from api.demo import demo_context
from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from domain.store import Store


def test_demo_seeds_store_and_sells_and_is_rerunnable(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRAFI_EVENT_STORE", raising=False)
    monkeypatch.delenv("TRAFI_SQLITE_PATH", raising=False)
    assert main(["demo", "--data-dir", str(tmp_path), "--buyers", "40"]) == 0
    first = capsys.readouterr().out
    assert "50 products" in first
    orders = int(re.search(r"→ (\d+) orders", first).group(1))
    assert orders > 10

    app = TrafiApplication(EventStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "events.sqlite")))
    store = app.repository.get(demo_context().store_id)
    assert isinstance(store, Store) and store.currency == "EUR" and store.prices_include_tax
    assert sum(len(zone["countries"]) for zone in store.shipping_zones) == 27
    events_after_first = app.recorder.max_notification_id()

    # A second run reuses the same store (deterministic ids) and only adds traffic.
    assert main(["demo", "--data-dir", str(tmp_path), "--buyers", "5"]) == 0
    assert "50 products" in capsys.readouterr().out
    assert app.recorder.max_notification_id() > events_after_first
    assert app.repository.get(demo_context().store_id).version == store.version
