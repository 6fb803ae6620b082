"""POST /v1/events and the event-flow health, through the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.bootstrap import NewStore, bootstrap_store
from api.services import Services, build_services
from api.settings import ApiSettings, Rate
from autopilot.telemetry.columns import TELEMETRY_COLUMNS
from autopilot.telemetry.log import US_PER_MINUTE, event_row
from commands.admin_users import CreateAdminUser
from commands.sessions import SignInAdmin
from domain import tokens
from tests.api.conftest import api_settings

PASSWORD = "events-password-1"


@dataclass
class EventsApi:
    settings: ApiSettings
    services: Services
    client: TestClient
    store: NewStore
    other: NewStore
    _stack: ExitStack = field(default_factory=ExitStack)

    @property
    def storefront(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.store.publishable_key}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.store.secret_key}"}

    def send(self, *events, headers: dict | None = None, **kwargs):
        return self.client.post("/v1/events", json={"events": list(events)},
                                headers=self.storefront if headers is None else headers, **kwargs)

    def rows(self) -> list[dict]:
        return [dict(zip(TELEMETRY_COLUMNS, r)) for r in self.services.telemetry.read(0, 10_000)]

    def restart(self) -> None:
        """A new API process on the same databases: the old one's lifespan ends, a new one begins."""
        self._stack.close()
        self._stack = ExitStack()
        self.services = build_services(self.settings)
        self.client = self._stack.enter_context(TestClient(create_app(services=self.services),
                                                           raise_server_exceptions=False))

    def close(self) -> None:
        self._stack.close()


def open_events_api(config, **overrides) -> EventsApi:
    settings = api_settings(config, **{"events_rate": Rate(1000, 1000), **overrides})
    services = build_services(settings)
    store, other = (bootstrap_store(services.bus, settings.secret_key, slug=f"ev-{uuid.uuid4().hex[:8]}", name="Shop",
                                    owner_email=f"{uuid.uuid4().hex[:6]}@shop.example", owner_password=PASSWORD)
                    for _ in range(2))
    api = EventsApi(settings, services, None, store, other)  # type: ignore[arg-type]
    api.client = api._stack.enter_context(TestClient(create_app(services=services), raise_server_exceptions=False))
    return api


@pytest.fixture
def events_api(api_config):
    api = open_events_api(api_config)
    yield api
    api.close()


def event(api: EventsApi, kind: str = "page_view", **fields) -> dict:
    base = {"type": kind, "event_id": uuid.uuid4().hex, "occurred_at": datetime.now(timezone.utc).isoformat(),
            "store_id": str(api.store.store_id), "session_id": "s-1", "visitor_id": "v-1"}
    extra = {"page_view": {"url": "https://shop.example/"},
             "add_to_cart": {"sku": "MUG-1", "quantity": 1, "price": 1500, "currency": "EUR"},
             "checkout_complete": {"order_id": "o-1", "value": 1990, "currency": "EUR"}}.get(kind, {})
    return {**base, **extra, **fields}


def admin_session(api: EventsApi, role: str) -> dict[str, str]:
    from commands.context import StoreContext

    ctx = StoreContext(api.store.store_id, actor="test")
    email = f"{role}-{uuid.uuid4().hex[:6]}@shop.example"
    api.services.bus.execute(CreateAdminUser(email=email, password=PASSWORD, role=role, acting_role="owner"), ctx)
    session_id = uuid.uuid4()
    token = api.services.token("as", session_id)
    api.services.bus.execute(SignInAdmin(email=email, password=PASSWORD, session_id=session_id,
                                         token_hash=tokens.token_hash(token)), ctx)
    return {"Authorization": f"Bearer {token}"}


# --- ingestion -----------------------------------------------------------------------------------


def test_a_batch_is_answered_event_by_event_and_the_valid_ones_are_stored(events_api):
    api = events_api
    good = [event(api), event(api, "add_to_cart"), event(api, "checkout_complete")]
    wrong_store = event(api, store_id=str(api.other.store_id))
    response = api.send(good[0], wrong_store, good[1], {"type": "page_view", "event_id": "half"}, good[2], good[0])
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == [e["event_id"] for e in good]
    assert body["duplicates"] == [good[0]["event_id"]]
    assert [(r["index"], r["event_id"], r["field"], r["code"]) for r in body["rejected"]] == [
        (1, wrong_store["event_id"], "store_id", "event.wrong_store"),
        (3, "half", "occurred_at", "validation.missing"),
    ]
    assert body["rejected"][1]["reason"] and len(body["rejected"][1]["errors"]) >= 3
    rows = api.rows()
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in good]
    assert {r["store_id"] for r in rows} == {str(api.store.store_id)}  # the key's store, whatever was sent
    assert (rows[1]["sku"], rows[1]["price_minor"], rows[2]["value_minor"]) == ("MUG-1", 1500, 1990)


def test_retries_are_duplicates_also_after_a_restart(events_api):
    api = events_api
    batch = [event(api) for _ in range(5)]
    assert len(api.send(*batch).json()["accepted"]) == 5
    api.restart()
    retried = api.send(*batch, event(api, event_id="new-one"))
    assert retried.json()["accepted"] == ["new-one"]
    assert retried.json()["duplicates"] == [e["event_id"] for e in batch]
    assert len(api.rows()) == 6


def test_without_consent_an_event_is_stored_without_identifiers(events_api):
    api = events_api
    sent = event(api, consent={"analytics": False}, customer_id="c-1", url="https://shop.example/p?email=a@b.c",
                 properties={"search": "my name"})
    assert api.send(sent).json()["accepted"] == [sent["event_id"]]
    stored = api.rows()[0]
    assert [stored[c] for c in ("session_id", "visitor_id", "customer_id", "properties")] == [None] * 4
    assert stored["url"] == "https://shop.example/p"


def test_a_body_that_is_no_batch_is_refused_whole_and_nothing_is_written(api_config):
    api = open_events_api(api_config, max_body_bytes=64 * 1024)
    try:
        api.send(event(api))
        cases = [
            (api.client.post("/v1/events", content=b'{"events": [', headers=api.storefront), 400, "events.malformed_json"),
            (api.client.post("/v1/events", json={"events": []}, headers=api.storefront), 202, None),
            (api.client.post("/v1/events", json={"events": [{}] * 501}, headers=api.storefront), 422,
             "events.batch_too_large"),
            (api.client.post("/v1/events", json=[event(api)], headers=api.storefront), 422, "events.not_a_batch"),
            (api.send(event(api, properties={"x": "y" * 70_000})), 413, "request.too_large"),
        ]
        for response, status, code in cases:
            assert response.status_code == status, response.text
            if code:
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["code"] == code
        assert len(api.rows()) == 1
        totals = api.services.telemetry.totals(str(api.store.store_id))[0]
        assert (totals.accepted, totals.refused_batches) == (1, 3)  # the 413 never reached the route
    finally:
        api.close()


def test_who_may_send_events(events_api):
    api = events_api
    missing = api.send(event(api), headers={})
    assert missing.status_code == 401 and missing.json()["code"] == "auth.missing_credentials"
    unknown = api.send(event(api), headers={"Authorization": "Bearer trafi_pk_" + "0" * 72})
    assert unknown.status_code == 401 and unknown.json()["code"] == "auth.invalid_token"
    session = api.send(event(api), headers=admin_session(api, "owner"))
    assert session.status_code == 403 and session.json()["code"] == "auth.wrong_key_kind"
    assert api.send(event(api), headers=api.admin).status_code == 202  # a secret key may send too
    beacon = api.client.post(f"/v1/events?key={api.store.publishable_key}",
                             content=json.dumps({"events": [event(api)]}), headers={"Content-Type": "text/plain"})
    assert beacon.status_code == 202 and len(beacon.json()["accepted"]) == 1
    secret_in_url = api.client.post(f"/v1/events?key={api.store.secret_key}", json={"events": [event(api)]})
    assert secret_in_url.status_code == 403 and secret_in_url.json()["code"] == "auth.wrong_key_kind"
    theirs = api.send(event(api), headers={"Authorization": f"Bearer {api.other.publishable_key}"})
    assert theirs.status_code == 202 and theirs.json()["rejected"][0]["code"] == "event.wrong_store"
    assert len(api.rows()) == 2


def test_events_have_their_own_rate_limit(api_config):
    api = open_events_api(api_config, storefront_rate=Rate(0.01, 1), events_rate=Rate(0.01, 3))
    try:
        assert [api.send(event(api)).status_code for _ in range(3)] == [202, 202, 202]  # past the storefront budget
        limited = api.send(event(api))
        assert limited.status_code == 429 and limited.headers["retry-after"]
        assert api.client.get("/v1/products", headers=api.storefront).status_code == 200  # the shopper's budget is intact
    finally:
        api.close()


jsonish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_junk_never_gets_a_5xx_nor_a_partial_write(events_api, data):
    api = events_api
    mutations = st.dictionaries(st.sampled_from(["type", "event_id", "occurred_at", "store_id", "url", "quantity",
                                                 "price", "consent", "properties", "session_id", "sku"]), jsonish,
                                max_size=3)
    events = data.draw(st.lists(st.one_of(jsonish, mutations.map(lambda m: {**event(api, "add_to_cart"), **m})),
                                max_size=6))
    raw = data.draw(st.one_of(st.just(json.dumps({"events": events}).encode()), st.binary(max_size=200)))
    before = api.services.telemetry.head()
    response = api.client.post("/v1/events", content=raw, headers=api.storefront)
    assert response.status_code in (202, 400, 422), response.text
    accepted = response.json()["accepted"] if response.status_code == 202 else []
    assert api.services.telemetry.head() == before + len(accepted)


# --- event-flow health ---------------------------------------------------------------------------


def seed_history(api: EventsApi, days: int, per_minute: int, window: int) -> None:
    """The store's traffic in the same clock hours of the previous days: what makes silence improbable."""
    now_minute = time.time_ns() // 1000 // US_PER_MINUTE
    for day in range(1, days + 1):
        first_hour = (now_minute - window - day * 1440) // 60 * 60
        for minute in range(first_hour, (now_minute - day * 1440) // 60 * 60 + 60):
            at = minute * US_PER_MINUTE
            api.services.telemetry.append(str(api.store.store_id), [
                event_row(event_id=f"h-{minute}-{i}", kind="page_view", occurred_at_us=at) for i in range(per_minute)
            ], at)


def test_event_flow_counts_what_arrived_and_finds_the_gap(events_api):
    api = events_api
    seed_history(api, days=2, per_minute=20, window=60)
    while time.time() % 60 > 55:  # what follows must happen within one minute
        time.sleep(0.5)
    batch = [event(api) for _ in range(4)]
    api.send(*batch, batch[0], {"type": "nope"})
    api.client.post("/v1/events", content=b"{", headers=api.storefront)
    response = api.client.get("/v1/admin/analytics/event-flow?minutes=60", headers=api.admin)
    assert response.status_code == 200, response.text
    flow = response.json()
    assert (flow["minutes"], flow["accepted"], flow["duplicates"], flow["rejected"], flow["refused_batches"]) == \
        (60, 4, 1, 1, 1)
    assert flow["baseline_days"] == 2 and len(flow["per_minute"]) == 60
    current = flow["per_minute"][-1]
    assert (current["accepted"], current["expected"]) == (4, 20.0)
    # Silent for the rest of the hour, where about 20 a minute arrived on the days before: one long gap,
    # up to the minute in progress.
    assert len(flow["gaps"]) == 1
    gap = flow["gaps"][0]
    assert gap["end"] == current["minute"] and gap["minutes"] == 59
    assert gap["expected_events"] == pytest.approx(sum(m["expected"] for m in flow["per_minute"][:-1]), abs=0.1)
    assert all(m["expected"] >= 10 for m in flow["per_minute"])
    assert flow["events_per_minute"] == round(4 / 60, 3)


def test_event_flow_is_for_those_who_see_the_dashboard(events_api):
    api = events_api
    path = "/v1/admin/analytics/event-flow"
    assert api.client.get(path, headers=api.storefront).json()["code"] == "auth.wrong_key_kind"
    assert api.client.get(path, headers=admin_session(api, "viewer")).status_code == 200
    refused = api.client.get(path, headers=admin_session(api, "privacy_manager"))
    assert refused.status_code == 403 and refused.json()["code"] == "auth.forbidden"
    assert api.client.get(path + "?minutes=0", headers=api.admin).status_code == 422
    assert api.client.get(path + "?minutes=1441", headers=api.admin).status_code == 422
    empty = api.client.get(path + "?minutes=5", headers=api.admin).json()
    assert (empty["accepted"], empty["gaps"], empty["baseline_days"], empty["last_accepted_at"]) == (0, [], 0, None)


def metric(text: str, name: str, store) -> float:
    for line in text.splitlines():
        if line.startswith(f'{name}{{store="{store}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {store} not in /metrics")


def test_metrics_count_per_store_and_survive_a_restart(events_api):
    api = events_api
    sent = [event(api) for _ in range(3)]
    api.send(*sent, sent[0], "junk")
    api.send(event(api, store_id=str(api.other.store_id)), headers={"Authorization": f"Bearer {api.other.publishable_key}"})
    api.restart()
    text = api.client.get("/metrics").text
    store, other = api.store.store_id, api.other.store_id
    assert metric(text, "trafi_storefront_events_accepted_total", store) == 3
    assert metric(text, "trafi_storefront_events_duplicates_total", store) == 1
    assert metric(text, "trafi_storefront_events_rejected_total", store) == 1
    assert metric(text, "trafi_storefront_event_batches_refused_total", store) == 0
    assert metric(text, "trafi_storefront_events_accepted_total", other) == 1
    last = metric(text, "trafi_storefront_events_last_accepted_timestamp_seconds", store)
    assert abs(last - time.time()) < 120


def test_the_event_route_is_documented_with_its_body(events_api):
    document = events_api.client.get("/openapi.json").json()
    operation = document["paths"]["/v1/events"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["examples"][0]["events"][0]["type"] == "page_view"
    kinds = {branch["properties"]["type"]["const"] for branch in schema["properties"]["events"]["items"]["oneOf"]}
    assert kinds == {"page_view", "product_view", "add_to_cart", "checkout_start", "checkout_step", "checkout_complete"}
    assert {"202", "400", "401", "413", "422", "429"} <= set(operation["responses"])
    assert document["paths"]["/v1/admin/analytics/event-flow"]["get"]["x-permission"] == "dashboard:read"
    assert "/bench/accept-only" not in document["paths"]
