"""Admin webhooks over HTTP: endpoints, secrets, deliveries and replays — with the embedded deliverer
sending to a real local receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import create_api_key
from api.services import build_services
from domain.webhook_signature import verify
from tests.api.conftest import api_settings, open_api_store
from tests.integration.test_outbound_webhooks import Receiver

BASE = "/v1/admin/webhooks"
SECRET_PATTERN = re.compile(r"^whsec_[0-9a-f]{64}$")


@pytest.fixture
def api(api_config):
    """The app with its embedded projections and deliverer; webhooks may reach 127.0.0.1, retries come fast."""
    settings = api_settings(api_config, webhooks_allow_private=True, webhooks_backoff_scale=0.0002,
                            webhooks_timeout_s=5.0)
    services = build_services(settings)
    store, other = open_api_store(services), open_api_store(services)
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        yield client, services, store, other


@pytest.fixture
def receiver():
    answers = {"status": 200}
    made = Receiver(lambda path, envelope: (answers["status"], 0.0))
    made.answers = answers
    yield made
    made.close()


def create(client, headers, url="https://erp.example.com/hooks", event_types=("trafi.stock_item.*",), **extra):
    response = client.post(BASE, json={"url": url, "event_types": list(event_types), "description": "ERP", **extra},
                           headers=headers)
    assert response.status_code == 201, response.text
    return response.json(), response.headers["X-Trafi-Position"]


def wait_for(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def deliveries(client, headers, endpoint_id, **params) -> dict:
    """A page of the endpoint's deliveries (pass the creation's position as min_position: a read model)."""
    response = client.get(f"{BASE}/{endpoint_id}/deliveries", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- endpoints --------------------------------------------------------------------------------------
def test_endpoints_are_created_listed_changed_rotated_disabled_and_deleted(api):
    client, _, store, _ = api
    h = store.admin
    created, position = create(client, h)
    assert SECRET_PATTERN.match(created["secret"]) and created["generation"] == 0 and created["status"] == "active"
    assert created["event_types"] == ["trafi.stock_item.*"] and created["description"] == "ERP"
    endpoint_id = created["endpoint_id"]

    listed = client.get(BASE, params={"min_position": position}, headers=h)
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["endpoint_id"] == endpoint_id and item["secret_generation"] == 0 and item["status"] == "active"
    assert created["secret"] not in listed.text

    changed = client.patch(f"{BASE}/{endpoint_id}", json={"event_types": ["trafi.order.*", "trafi.order.paid.v1"]},
                           headers=h)
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["trafi.order.*", "trafi.order.paid.v1"]
    assert changed.json()["url"] == "https://erp.example.com/hooks"  # left out: unchanged
    moved = client.patch(f"{BASE}/{endpoint_id}", json={"url": "https://erp2.example.com/h", "description": ""},
                         headers=h)
    assert moved.json()["url"] == "https://erp2.example.com/h" and moved.json()["description"] == ""

    rotated = client.post(f"{BASE}/{endpoint_id}/rotate-secret", headers=h)
    assert rotated.status_code == 200 and rotated.json()["generation"] == 1
    assert SECRET_PATTERN.match(rotated.json()["secret"]) and rotated.json()["secret"] != created["secret"]

    assert client.post(f"{BASE}/{endpoint_id}/disable", headers=h).json()["status"] == "disabled"
    assert client.post(f"{BASE}/{endpoint_id}/disable", headers=h).json()["status"] == "disabled"  # a retry is safe
    enabled = client.post(f"{BASE}/{endpoint_id}/enable", headers=h)
    assert enabled.json()["status"] == "active"
    one = client.get(f"{BASE}/{endpoint_id}", params={"min_position": enabled.headers["X-Trafi-Position"]}, headers=h)
    assert one.status_code == 200
    assert one.json()["url"] == "https://erp2.example.com/h" and one.json()["secret_generation"] == 1
    assert "secret" not in one.json()

    deleted = client.delete(f"{BASE}/{endpoint_id}", headers=h)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    after = deleted.headers["X-Trafi-Position"]
    assert client.get(f"{BASE}/{endpoint_id}", params={"min_position": after}, headers=h).status_code == 404
    assert client.get(BASE, params={"min_position": after}, headers=h).json()["items"] == []
    for method, path in (("patch", ""), ("delete", ""), ("post", "/rotate-secret"), ("post", "/enable")):
        response = client.request(method.upper(), f"{BASE}/{endpoint_id}{path}", headers=h,
                                  **({"json": {"description": "x"}} if method == "patch" else {}))
        assert response.status_code == 404 and response.json()["code"] == "webhook_endpoint.not_found", path


def test_an_idempotent_create_shows_the_same_secret_again(api):
    client, _, store, _ = api
    headers = {**store.admin, "Idempotency-Key": f"create-{uuid.uuid4()}"}
    body = {"url": "https://erp.example.com/hooks", "event_types": ["trafi.order.*"]}
    first = client.post(BASE, json=body, headers=headers)
    again = client.post(BASE, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    listed = client.get(BASE, params={"min_position": again.headers["X-Trafi-Position"]}, headers=store.admin)
    assert len(listed.json()["items"]) == 1


def test_the_subscribable_event_types_are_listed_without_credential_aggregates(api):
    client, _, store, _ = api
    listed = client.get(f"{BASE}/event-types", headers=store.admin).json()
    assert "trafi.order.paid.v1" in listed["event_types"] and "trafi.order.*" in listed["wildcards"]
    for topic in listed["event_types"] + listed["wildcards"]:
        assert topic.split(".")[1] in {"order", "stock_item", "product", "cart", "customer", "store", "changeset"}, topic
    assert "trafi.changeset.rolled_back.v1" in listed["event_types"]  # the merchant hears of an automatic rollback


@pytest.mark.parametrize("body, field, code", [
    ({"url": "ftp://erp.example.com/x"}, "url", "webhook_endpoint.invalid_url"),
    ({"url": "https://user:pass@erp.example.com/x"}, "url", "webhook_endpoint.invalid_url"),
    ({"url": "https://erp.example.com/x#frag"}, "url", "webhook_endpoint.invalid_url"),
    ({"url": "https://erp.example.com/a b"}, "url", "webhook_endpoint.invalid_url"),
    ({"url": "https:///nohost"}, "url", "webhook_endpoint.invalid_url"),
    ({"url": "https://erp.example.com:99999/"}, "url", "webhook_endpoint.invalid_url"),
    ({"url": "https://bad_host!.example.com/"}, "url", "webhook_endpoint.invalid_url"),
    ({"url": "https://erp.example.com/" + "x" * 2040}, "body.url", None),
    ({"event_types": ["trafi.order.teleported.v1"]}, "event_types", "webhook_endpoint.unknown_event_type"),
    ({"event_types": ["trafi.api_key.*"]}, "event_types", "webhook_endpoint.unknown_event_type"),
    ({"event_types": ["trafi.session.started.v1"]}, "event_types", "webhook_endpoint.unknown_event_type"),
    ({"event_types": ["trafi.admin_user.created.v1"]}, "event_types", "webhook_endpoint.unknown_event_type"),
    ({"event_types": ["trafi.idempotency_record.*"]}, "event_types", "webhook_endpoint.unknown_event_type"),
    ({"event_types": ["*"]}, "event_types", "webhook_endpoint.unknown_event_type"),
    ({"event_types": []}, "body.event_types", None),
    ({"description": "line\nbreak"}, "body.description", None),
    ({"secret": "mine"}, "body.secret", None),
])
def test_bad_endpoints_are_422_naming_the_field_and_the_reason(api, body, field, code):
    client, _, store, _ = api
    request = {"url": "https://erp.example.com/hooks", "event_types": ["trafi.order.*"], **body}
    response = client.post(BASE, json=request, headers=store.admin)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field and problem["reason"]
    assert response.headers["Content-Type"].startswith("application/problem+json")
    if code:
        assert problem["code"] == code
    if "api_key" in str(body):
        assert "cannot be subscribed" in problem["reason"]


def test_a_bad_change_is_422_and_changes_nothing(api):
    client, _, store, _ = api
    created, position = create(client, store.admin)
    response = client.patch(f"{BASE}/{created['endpoint_id']}", json={"event_types": ["trafi.customer.*", "nope"]},
                            headers=store.admin)
    assert response.status_code == 422 and response.json()["field"] == "event_types"
    assert "X-Trafi-Position" not in response.headers
    current = client.get(f"{BASE}/{created['endpoint_id']}", params={"min_position": position}, headers=store.admin)
    assert current.json()["event_types"] == ["trafi.stock_item.*"]


def test_another_stores_endpoints_are_not_found(api):
    client, _, store, other = api
    theirs, position = create(client, other.admin)
    endpoint_id = theirs["endpoint_id"]
    delivery_id = str(uuid.uuid4())
    h = store.admin
    assert client.get(BASE, params={"min_position": position}, headers=h).json()["items"] == []
    for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("post", "/rotate-secret"), ("post", "/disable"),
                         ("post", "/enable"), ("get", "/deliveries"), ("get", f"/deliveries/{delivery_id}"),
                         ("post", f"/deliveries/{delivery_id}/replay")):
        response = client.request(method.upper(), f"{BASE}/{endpoint_id}{path}", headers=h,
                                  **({"json": {"description": "x"}} if method == "patch" else {}))
        assert response.status_code == 404, (method, path, response.text)
    # …and it is untouched.
    mine = client.get(f"{BASE}/{endpoint_id}", params={"min_position": position}, headers=other.admin).json()
    assert mine["status"] == "active" and mine["description"] == "ERP" and mine["secret_generation"] == 0


def test_reading_and_managing_are_separate_permissions(api):
    client, services, store, _ = api
    created, position = create(client, store.admin)
    reader = create_api_key(services.bus, store.ctx, services.settings.secret_key, kind="secret", name="monitor",
                            scopes=("webhooks:read",))
    headers = {"Authorization": f"Bearer {reader}"}
    assert client.get(f"{BASE}/{created['endpoint_id']}", params={"min_position": position},
                      headers=headers).status_code == 200
    refused = client.post(f"{BASE}/{created['endpoint_id']}/rotate-secret", headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "auth.forbidden"
    assert client.post(BASE, json={"url": "https://x.example.com/", "event_types": ["trafi.order.*"]},
                       headers=headers).status_code == 403


# --- deliveries, end to end ----------------------------------------------------------------------------
def test_an_event_reaches_the_receiver_signed_and_its_delivery_can_be_inspected(api, receiver):
    client, _, store, _ = api
    h = store.admin
    created, _ = create(client, h, url=receiver.url())
    endpoint_id = created["endpoint_id"]
    received = client.post("/v1/admin/stock/MUG-1/receive", json={"quantity": 3}, headers=h)
    assert received.status_code == 200, received.text
    at = received.headers["X-Trafi-Position"]

    page = wait_for(lambda: (d := deliveries(client, h, endpoint_id, status="delivered", min_position=at))["items"]
                    and d)
    [delivery] = page["items"]
    assert delivery["event_type"] == "trafi.stock_item.received.v1" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200 and delivery["next_attempt_at"] is None
    assert int(received.headers["X-Trafi-Position"]) == delivery["position"]

    [request] = receiver.received
    verify(created["secret"], request.headers["Trafi-Signature"], request.body)
    assert request.headers["Trafi-Delivery-Id"] == delivery["delivery_id"]
    detail = client.get(f"{BASE}/{endpoint_id}/deliveries/{delivery['delivery_id']}", headers=h)
    assert detail.status_code == 200
    detail = detail.json()
    assert detail["payload"] == request.envelope and detail["payload"]["data"]["quantity"] == 3
    [attempt] = detail["attempt_log"]
    assert attempt["attempt_no"] == 1 and attempt["status_code"] == 200 and attempt["outcome"] == "delivered"
    assert attempt["response_excerpt"] == "answer 200" and attempt["latency_ms"] >= 0
    missing = client.get(f"{BASE}/{endpoint_id}/deliveries/{uuid.uuid4()}", headers=h)
    assert missing.status_code == 404 and missing.json()["code"] == "webhook_delivery.not_found"


def test_a_failed_delivery_is_replayed_once_the_receiver_is_fixed(api, receiver):
    client, _, store, _ = api
    h = store.admin
    receiver.answers["status"] = 410
    created, position = create(client, h, url=receiver.url())
    endpoint_id = created["endpoint_id"]
    client.post("/v1/admin/stock/MUG-1/receive", json={"quantity": 1}, headers=h)
    [failed] = wait_for(lambda: deliveries(client, h, endpoint_id, status="failed", min_position=position)["items"])
    assert failed["attempts"] == 1 and failed["last_status_code"] == 410 and failed["last_error"] == "HTTP 410"
    path = f"{BASE}/{endpoint_id}/deliveries/{failed['delivery_id']}/replay"

    receiver.answers["status"] = 200
    key = {**h, "Idempotency-Key": f"replay-{uuid.uuid4()}"}
    replayed = client.post(path, headers=key)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {"delivery_id": failed["delivery_id"], "endpoint_id": endpoint_id, "status": "pending"}
    [delivered] = wait_for(lambda: deliveries(client, h, endpoint_id, status="delivered")["items"])
    assert delivered["delivery_id"] == failed["delivery_id"] and delivered["attempts"] == 2  # the count continues
    assert len(receiver.received) == 2 and receiver.received[0].body == receiver.received[1].body

    again = client.post(path, headers=key)  # the same request again: the first answer, not a second replay
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    conflict = client.post(path, headers=h)
    assert conflict.status_code == 409 and conflict.json()["code"] == "webhook_delivery.not_replayable"
    assert "delivered" in conflict.json()["reason"]
    unknown = client.post(f"{BASE}/{endpoint_id}/deliveries/{uuid.uuid4()}/replay", headers=h)
    assert unknown.status_code == 404
    assert len(receiver.received) == 2


def test_deliveries_come_in_keyset_pages_newest_first(api, receiver):
    client, _, store, _ = api
    h = store.admin
    created, position = create(client, h, url=receiver.url())
    endpoint_id = created["endpoint_id"]
    for _ in range(5):
        client.post("/v1/admin/stock/MUG-1/receive", json={"quantity": 1}, headers=h)
    wait_for(lambda: len(deliveries(client, h, endpoint_id, status="delivered", min_position=position)["items"]) == 5)
    positions, cursor = [], None
    while True:
        page = deliveries(client, h, endpoint_id, limit=2, **({"cursor": cursor} if cursor else {}))
        positions += [d["position"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(positions) == 5 and positions == sorted(positions, reverse=True)
    assert deliveries(client, h, endpoint_id, status="pending")["items"] == []
    for params in ({"cursor": "not-a-cursor"}, {"status": "lost"}, {"limit": 0}):
        response = client.get(f"{BASE}/{endpoint_id}/deliveries", params=params, headers=h)
        assert response.status_code == 422, params
