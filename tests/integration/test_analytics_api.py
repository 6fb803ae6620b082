"""GET /v1/admin/analytics/funnel and …/overview: embedded, forwarded to `trafi analytics run`, and refused.

Real components throughout: the app on real event stores, storefront events through POST
/v1/events into the real telemetry log, a DuckDB warehouse in tmp_path fed by the embedded worker
thread — and for the scaled shape a real `trafi analytics run` process that the API forwards to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from tests.api.conftest import SECRET, _free_port, api_settings, open_api_store
from tests.conftest import create_pg_database, drop_pg_database, make_config
from tests.factories import ADDRESS_DE

ROOT = Path(__file__).resolve().parents[2]
FUNNEL = "/v1/admin/analytics/funnel"
OVERVIEW = "/v1/admin/analytics/overview"


@pytest.fixture
def config(store_kind, tmp_path):
    pg_name = create_pg_database() if store_kind == "postgres" else None
    yield make_config(store_kind, tmp_path, pg_name, pool_size=10)
    if pg_name:
        drop_pg_database(pg_name)


class Shop:
    def __init__(self, client: TestClient, services, store):
        self.client, self.services, self.store = client, services, store

    def events(self, *events: dict) -> None:
        store_id = str(self.store.keys.store_id)
        body = {"events": [{"store_id": store_id, "event_id": uuid4().hex, **e} for e in events]}
        answer = self.client.post("/v1/events", json=body, headers=self.store.storefront)
        assert answer.status_code == 202 and not answer.json()["rejected"], answer.text

    def buy(self, visitor_id: str | None, *, pay: bool = True) -> str:
        c, h = self.client, self.store.storefront
        cart_id = c.post("/v1/carts", json={"currency": "EUR", "email": "ada@example.com",
                                             **({"visitor_id": visitor_id} if visitor_id else {})}, headers=h).json()["cart_id"]
        line = {"product_id": str(self.store.shop.products["MUG-1"]), "sku": "MUG-1", "quantity": 2}
        assert c.post(f"/v1/carts/{cart_id}/lines", json=line, headers=h).status_code == 200
        assert c.put(f"/v1/carts/{cart_id}/shipping-address", json={"address": ADDRESS_DE}, headers=h).status_code == 200
        assert c.put(f"/v1/carts/{cart_id}/shipping-method", json={"rate_id": "standard"}, headers=h).status_code == 200
        placed = c.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=h)
        assert placed.status_code == 201, placed.text
        order = placed.json()
        if pay:
            paid = c.post(f"/v1/admin/orders/{order['order_id']}/mark-paid",
                          json={"amount": order["total"], "reference": "bank"}, headers=self.store.admin)
            assert paid.status_code == 200, paid.text
        return order["order_id"]


def visit(visitor: str, at: datetime, furthest: int, *, device: str, country: str = "DE") -> list[dict]:
    """A visitor's storefront events up to step `furthest` (index into FUNNEL_STEPS)."""
    common = {"visitor_id": visitor, "session_id": f"s-{visitor}", "device": device, "country": country}
    steps = [
        {"type": "page_view", "url": "https://shop.example/?utm_source=newsletter", "utm_source": "newsletter"},
        {"type": "product_view", "product_id": "mug"},
        {"type": "add_to_cart", "sku": "MUG-1", "quantity": 1, "price": 1500, "currency": "EUR", "product_id": "mug"},
        {"type": "checkout_start"},
        {"type": "checkout_step", "step": "shipping"},
        {"type": "checkout_step", "step": "payment"},
        {"type": "checkout_complete", "order_id": f"o-{visitor}", "value": 3000, "currency": "EUR"},
    ]
    return [{**common, **e, "occurred_at": (at + timedelta(seconds=i)).isoformat()}
            for i, e in enumerate(steps[:furthest + 1])]


def caught_up(services, timeout: float = 30.0) -> None:
    worker = services.analytics
    deadline = time.monotonic() + timeout
    while worker.feeder.lag() != {"telemetry": 0, "commerce": 0}:
        assert time.monotonic() < deadline, worker.feeder.lag()
        worker.wake()
        time.sleep(0.05)


@pytest.fixture
def shop(config, tmp_path):
    services = build_services(api_settings(config, warehouse_path=str(tmp_path / "warehouse.duckdb")))
    store = open_api_store(services)
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        yield Shop(client, services, store)


def test_the_funnel_and_its_breakdown_from_storefront_and_commerce_events(shop):
    now = datetime.now(timezone.utc) - timedelta(minutes=1)
    shop.events(*visit("v1", now, 6, device="mobile"), *visit("v2", now, 2, device="desktop"),
                *visit("v3", now, 0, device="mobile", country="AT"))
    shop.buy("v1")  # the storefront visitor's own order: the same visitor-day, complete already
    shop.buy(None, pay=False)  # a cart without a storefront: its own visitor, up to the payment step
    caught_up(shop.services)
    h = shop.store.admin

    funnel = shop.client.get(FUNNEL, headers=h)
    assert funnel.status_code == 200, funnel.text
    body = funnel.json()
    assert body["unit"] == "visitor_day" and body["date_to"] == now.date().isoformat()
    steps = {s["step"]: s for s in body["steps"]}
    assert [s["visitors"] for s in body["steps"]] == [4, 3, 3, 2, 2, 2, 1]
    assert steps["visit"]["conversion_pct"] is None and steps["visit"]["drop_off"] == 0
    assert steps["product_view"] == {"step": "product_view", "visitors": 3, "conversion_pct": 75.0,
                                     "conversion_from_start_pct": 75.0, "drop_off": 1, "drop_off_pct": 25.0}
    assert steps["complete"]["conversion_pct"] == 50.0 and steps["complete"]["drop_off"] == 1

    mobile = shop.client.get(FUNNEL, params={"device": "mobile"}, headers=h).json()
    assert [s["visitors"] for s in mobile["steps"]] == [2, 1, 1, 1, 1, 1, 1] and mobile["device"] == "mobile"

    by_device = shop.client.get(FUNNEL, params={"step": "add_to_cart", "by": "device"}, headers=h).json()
    assert by_device["previous_step"] == "product_view"
    assert [(s["segment"], s["visitors"], s["previous_step_visitors"], s["drop_off"]) for s in by_device["segments"]] == [
        ("desktop", 1, 1, 0), ("mobile", 1, 1, 0), ("unknown", 1, 1, 0)]
    by_country = shop.client.get(FUNNEL, params={"step": "product_view", "by": "country"}, headers=h).json()
    assert {s["segment"]: (s["visitors"], s["conversion_pct"]) for s in by_country["segments"]} == {
        "DE": (3, 100.0), "AT": (0, 0.0)}
    by_source = shop.client.get(FUNNEL, params={"step": "visit", "by": "source"}, headers=h).json()
    assert {s["segment"]: s["previous_step_visitors"] for s in by_source["segments"]} == {"newsletter": None,
                                                                                          "unknown": None}
    returning = shop.client.get(FUNNEL, params={"step": "complete", "by": "returning"}, headers=h).json()
    assert [(s["segment"], s["visitors"]) for s in returning["segments"]] == [("new", 1)]


def test_the_overview_compares_with_the_period_before(shop):
    now = datetime.now(timezone.utc) - timedelta(minutes=1)
    shop.events(*visit("v1", now, 6, device="mobile"), *visit("v2", now, 1, device="desktop"))
    order_id = shop.buy("v1")
    shop.buy(None, pay=False)
    caught_up(shop.services)
    today = now.date()
    answer = shop.client.get(OVERVIEW, params={"from": (today - timedelta(days=6)).isoformat(),
                                               "to": today.isoformat()}, headers=shop.store.admin)
    assert answer.status_code == 200, answer.text
    o = answer.json()
    assert (o["previous_from"], o["previous_to"]) == ((today - timedelta(days=13)).isoformat(),
                                                      (today - timedelta(days=7)).isoformat())
    with shop.services.warehouse.reading() as cur:
        revenue, profit = cur.execute("SELECT revenue_minor, gross_profit_minor FROM order_profit WHERE order_id = ?",
                                      [order_id]).fetchall()[0]
    assert o["currency"] == "EUR"
    assert o["visitors"] == {"current": 3, "previous": 0, "change": 3, "change_pct": None}
    assert o["orders"]["current"] == 1 and o["revenue_minor"]["current"] == revenue
    assert o["average_order_value_minor"]["current"] == revenue
    assert o["gross_profit_minor"]["current"] == profit
    assert o["margin"]["current_pct"] == round(profit * 100 / revenue, 2) and o["margin"]["previous_pct"] is None
    assert o["conversion_rate"]["current_pct"] == round(100 / 3, 2)
    assert o["cart_abandonment_rate"]["current_pct"] == 0.0  # both carts were checked out (one is unpaid)
    assert o["sessions"]["current"] == 2 and o["page_views"]["current"] == 2
    sold, viewed = o["top_products"]  # by revenue: the product bought, then the one the storefront showed
    assert sold["product_id"] == str(shop.store.shop.products["MUG-1"]) and sold["units_sold"] == 2
    assert sold["add_to_carts"] == 2 and sold["purchases"] == 1 and sold["add_to_cart_pct"] is None  # no views
    assert (viewed["product_id"], viewed["views"], viewed["revenue_minor"]) == ("mug", 2, 0)


@pytest.mark.parametrize("params, field, code", [
    ({"from": "2026-13-01"}, "query.from", None),
    ({"to": "yesterday"}, "query.to", None),
    ({"from": "2026-03-10", "to": "2026-03-01"}, "query.from", "analytics.invalid_range"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, "query.to", "analytics.range_too_long"),
    ({"to": "0001-01-01"}, "query.to", "analytics.invalid_range"),  # the period before would leave the calendar
    ({"from": "9999-12-31"}, "query.from", "analytics.invalid_range"),
    ({"device": "phone"}, "query.device", None),
    ({"country": "Germany"}, "query.country", None),
    ({"step": "basket", "by": "device"}, "query.step", None),
    ({"step": "payment", "by": "planet"}, "query.by", None),
    ({"step": "payment"}, "query.by", "analytics.breakdown_incomplete"),
    ({"by": "device"}, "query.step", "analytics.breakdown_incomplete"),
])
def test_bad_input_is_a_422_problem_naming_the_parameter(shop, params, field, code):
    answer = shop.client.get(FUNNEL, params=params, headers=shop.store.admin)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    if code:
        assert answer.json()["code"] == code


def test_a_year_and_a_day_is_the_longest_range(shop):
    ok = shop.client.get(OVERVIEW, params={"from": "2025-01-01", "to": "2026-01-01"}, headers=shop.store.admin)
    assert ok.status_code == 200 and ok.json()["previous_to"] == "2024-12-31"
    too_long = shop.client.get(OVERVIEW, params={"from": "2024-12-31", "to": "2026-01-01"}, headers=shop.store.admin)
    assert too_long.status_code == 422 and too_long.json()["code"] == "analytics.range_too_long"


def test_admin_routes_need_an_admin_credential(shop):
    assert shop.client.get(FUNNEL).status_code == 401
    assert shop.client.get(OVERVIEW, headers=shop.store.storefront).json()["code"] == "auth.wrong_key_kind"


def test_without_a_warehouse_the_answer_is_503_with_retry_after(config):
    services = build_services(api_settings(config, warehouse_path=None))  # no warehouse, no TRAFI_ANALYTICS_URL
    store = open_api_store(services)
    with TestClient(create_app(services=services)) as client:
        answer = client.get(OVERVIEW, headers=store.admin)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "analytics.unavailable" and "analytics unavailable" in answer.json()["detail"]


# --- scaled: `trafi analytics run`, the API forwarding to it ---------------------------------------------


def worker_env(config, tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAFI_SECRET_KEY": SECRET.decode(),
           "TRAFI_DATA_DIR": str(tmp_path / "worker-data"), "TRAFI_WAREHOUSE_PATH": str(tmp_path / "scaled.duckdb"),
           "TRAFI_EVENT_STORE": config.kind, "TRAFI_POOL_SIZE": "4", "TRAFI_LOG_LEVEL": "WARNING"}
    if config.kind == "sqlite":
        env["TRAFI_SQLITE_PATH"] = config.sqlite_path
    else:
        env["TRAFI_POSTGRES_DSN"] = config.postgres_dsn
    return env


def wait_until(check, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def healthz(url: str) -> dict | None:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).json()
    except httpx.HTTPError:
        return None


def test_replicas_forward_to_the_analytics_worker_and_answer_503_when_it_is_gone(config, tmp_path):
    port = _free_port()
    worker_url = f"http://127.0.0.1:{port}"
    services = build_services(api_settings(config, embedded_projections=False, analytics_url=worker_url))
    store = open_api_store(services)
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "analytics", "run", "--host", "127.0.0.1",
                               "--port", str(port), "--poll-interval", "0.1"], cwd=ROOT, env=worker_env(config, tmp_path))
    try:
        with TestClient(create_app(services=services)) as client:
            shop = Shop(client, services, store)
            now = datetime.now(timezone.utc) - timedelta(minutes=1)
            shop.events(*visit("v1", now, 3, device="tablet"), *visit("v2", now, 0, device="mobile"))
            wait_until(lambda: (healthz(worker_url) or {}).get("lag") == {"telemetry": 0, "commerce": 0},
                       what="the worker to catch up")
            assert services.warehouse is None  # this process owns no warehouse: the worker answers

            forwarded = client.get(FUNNEL, params={"step": "checkout_start", "by": "device"},
                                   headers={**store.admin, "X-Request-Id": "fwd-1"})
            assert forwarded.status_code == 200, forwarded.text
            direct = httpx.get(worker_url + FUNNEL, params={"step": "checkout_start", "by": "device"},
                               headers=store.admin)
            assert forwarded.json() == direct.json()
            assert [(s["segment"], s["visitors"]) for s in forwarded.json()["segments"]] == [("tablet", 1), ("mobile", 0)]
            # The worker checks the credential itself and validates as the API does.
            assert httpx.get(worker_url + FUNNEL, headers={"Authorization": "Bearer trafi_sk_nope"}).status_code == 401
            # An on-demand diagnosis reads the warehouse: the worker runs it and records it in the event store.
            before = services.app.recorder.max_notification_id()
            run = client.post("/v1/admin/analytics/diagnosis/run", headers=store.admin)
            assert run.status_code == 200, run.text
            assert run.json()["run_id"] and services.app.recorder.max_notification_id() > before
            bad = client.get(OVERVIEW, params={"from": "2026-03-10", "to": "2026-03-01"}, headers=store.admin)
            assert bad.status_code == 422 and bad.json()["code"] == "analytics.invalid_range"

            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0  # stopped between batches, cleanly
            gone = client.get(OVERVIEW, headers=store.admin)
            assert gone.status_code == 503 and gone.headers["retry-after"] == "5"
            assert gone.json()["code"] == "analytics.unavailable"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    # The worker's warehouse was left whole: another owner opens it where it stopped.
    from autopilot.warehouse.store import Warehouse
    reopened = Warehouse(tmp_path / "scaled.duckdb")
    assert reopened.position("telemetry") == 5
    reopened.close()
