"""Payments end to end: the real Stripe SDK against a local Stripe-like server, signed webhooks,
refunds, cancellations, returns and 3PL fulfilments — over the real API on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import threading
import time
from uuid import UUID

import pytest
import stripe
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from api.cli import main as cli_main
from commands.payments.records import RecordPaymentAttempt
from tests.api.conftest import Api, api_settings, open_api_store
from tests.api.test_admin_commerce import _placed_order, _problem
from tests.stripe_server import start_fake_stripe

WEBHOOK_SECRET = "whsec_test_secret"


@pytest.fixture
def fake_stripe():
    fake, server = start_fake_stripe()
    yield fake
    server.shutdown()


@pytest.fixture
def stripe_api(api_config, fake_stripe):
    settings = api_settings(api_config, payment_provider="stripe", stripe_secret_key="sk_test_fake",
                            stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=fake_stripe.url)
    services = build_services(settings)
    store, other = open_api_store(services), open_api_store(services)
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        yield Api(client=client, services=services, store=store, other=other)


def _buyer(order: dict) -> dict:
    return {"X-Order-Token": order["order_token"]}


def _pay(api: Api, order: dict, body: dict | None = None, path: str = "payment"):
    headers = {**api.store.storefront, **_buyer(order)}
    return api.client.post(f"/v1/orders/{order['order_id']}/{path}", json=body or {}, headers=headers)


def _payments(api: Api, order_id: str) -> dict:
    response = api.client.get(f"/v1/admin/orders/{order_id}/payments", headers=api.store.admin)
    assert response.status_code == 200, response.text
    return response.json()


def _event(kind: str, obj: dict, *, created: int, event_id: str) -> dict:
    return {"id": event_id, "object": "event", "type": kind, "created": created, "livemode": False,
            "api_version": "2025-10-29", "data": {"object": obj}}


def _webhook(api: Api, event: dict, *, store=None, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
             payload: str | None = None):
    body = payload if payload is not None else json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    store_id = (store or api.store).keys.store_id
    return api.client.post(f"/webhooks/stripe/{store_id}", content=body,
                           headers={"Stripe-Signature": header, "Content-Type": "application/json"})


def _intent(fake, intent_id: str, **changes) -> dict:
    return {**fake.intents[intent_id], **changes}


# --- intents ---------------------------------------------------------------------------------
def test_an_intent_carries_the_order_total_currency_metadata_and_a_deterministic_key(stripe_api, fake_stripe):
    order = _placed_order(stripe_api)
    started = _pay(stripe_api, order)
    assert started.status_code == 200, started.text
    body = started.json()
    assert (body["status"], body["attempt"], body["provider"], body["order_status"]) == (
        "requires_payment_method", 1, "stripe", "pending_payment")
    assert body["client_secret"] == f"{body['intent_id']}_secret_fake"
    [create] = fake_stripe.calls("POST", "/v1/payment_intents")
    assert create.idempotency_key == f"trafi-{order['order_id']}-attempt-1"
    assert create.params["amount"] == str(order["total"]) and create.params["currency"] == "eur"
    assert create.params["metadata"] == {"trafi_store_id": str(stripe_api.store.keys.store_id),
                                         "trafi_order_id": order["order_id"], "trafi_attempt": "1"}
    assert create.params["automatic_payment_methods"] == {"enabled": "true"}
    # Asking again resumes the same attempt: no second intent.
    again = _pay(stripe_api, order).json()
    assert again["intent_id"] == body["intent_id"] and len(fake_stripe.calls("POST", "/v1/payment_intents")) == 1


def test_a_retried_start_after_a_crash_reuses_the_key_and_gets_the_same_intent(stripe_api, fake_stripe, monkeypatch):
    order = _placed_order(stripe_api)
    payments = stripe_api.services.payments
    real_execute, crashed = payments.bus.execute, []

    def crash_once(command, ctx, **kwargs):
        if isinstance(command, RecordPaymentAttempt) and not crashed:
            crashed.append(command)
            raise ConnectionError("the process died after Stripe answered")
        return real_execute(command, ctx, **kwargs)

    monkeypatch.setattr(payments.bus, "execute", crash_once)
    with pytest.raises(ConnectionError):
        payments.start_payment(stripe_api.store.ctx, UUID(order["order_id"]), payment_method="pm_card_visa")
    outcome = payments.start_payment(stripe_api.store.ctx, UUID(order["order_id"]), payment_method="pm_card_visa")
    creates = fake_stripe.calls("POST", "/v1/payment_intents")
    assert [c.idempotency_key for c in creates] == [f"trafi-{order['order_id']}-attempt-1"] * 2
    assert len(fake_stripe.intents) == 1 and outcome.status == "succeeded" and outcome.order_status == "paid"
    assert [a["attempt"] for a in _payments(stripe_api, order["order_id"])["attempts"]] == [1]


def test_three_d_secure_is_surfaced_and_confirming_afterwards_pays(stripe_api, fake_stripe):
    order = _placed_order(stripe_api)
    challenged = _pay(stripe_api, order, {"payment_method": "pm_card_threeDSecure2Required",
                                          "return_url": "https://shop.example/return"}).json()
    assert challenged["status"] == "requires_action" and challenged["next_action"]["type"] == "redirect_to_url"
    assert fake_stripe.calls("POST", "/v1/payment_intents")[0].params["return_url"] == "https://shop.example/return"
    fake_stripe.authenticate(challenged["intent_id"])  # the buyer passes the challenge in the browser
    confirmed = _pay(stripe_api, order, path="payment/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["status"], confirmed.json()["order_status"]) == ("succeeded", "paid")
    status = stripe_api.client.get(f"/v1/orders/{order['order_id']}",
                                   headers={**stripe_api.store.storefront, **_buyer(order)}).json()
    assert (status["status"], status["paid_amount"], status["payment_status"]) == ("paid", order["total"], "succeeded")


def test_a_declined_card_can_be_followed_by_another_on_the_same_attempt(stripe_api, fake_stripe):
    order = _placed_order(stripe_api)
    declined = _pay(stripe_api, order, {"payment_method": "pm_card_chargeDeclined"})
    assert declined.status_code == 200, declined.text
    assert (declined.json()["status"], declined.json()["failure"]) == ("requires_payment_method", "Your card was declined.")
    paid = _pay(stripe_api, order, {"payment_method": "pm_card_visa"}).json()
    assert (paid["attempt"], paid["intent_id"], paid["order_status"]) == (1, declined.json()["intent_id"], "paid")
    trail = [e["type"] for e in _payments(stripe_api, order["order_id"])["trail"]]
    assert trail == ["trafi.order.placed.v1", "trafi.order.payment_started.v1", "trafi.order.payment_failed.v1",
                     "trafi.order.paid.v1"]


def test_storefront_payment_needs_the_order_token(stripe_api):
    order = _placed_order(stripe_api)
    _problem(_pay(stripe_api, {**order, "order_token": "wrong"}), 404, "order.not_found")
    _problem(stripe_api.client.post(f"/v1/orders/{order['order_id']}/payment", json={},
                                    headers={**stripe_api.other.storefront, **_buyer(order)}), 404, "order.not_found")


# --- webhooks in -----------------------------------------------------------------------------
def _lifecycle_events(fake, intent_id: str, total: int) -> list[dict]:
    base = fake.intents[intent_id]
    return [
        _event("payment_intent.requires_action", {**base, "status": "requires_action"}, created=100, event_id="evt_a"),
        _event("payment_intent.payment_failed", {**base, "status": "requires_payment_method",
                                                 "last_payment_error": {"message": "declined"}}, created=101,
               event_id="evt_f"),
        _event("payment_intent.succeeded", {**base, "status": "succeeded", "amount_received": total}, created=102,
               event_id="evt_s"),
        _event("charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": intent_id, "paid": True,
                                   "amount_captured": total, "amount_refunded": 500,
                                   "refunds": {"data": [{"id": "re_dash1", "amount": 500, "status": "succeeded",
                                                         "metadata": {}}]}}, created=103, event_id="evt_r"),
        _event("charge.dispute.created", {"id": "dp_1", "object": "dispute", "payment_intent": intent_id,
                                          "amount": 700, "reason": "fraudulent"}, created=104, event_id="evt_d"),
    ]


def _final_state(payments: dict) -> tuple:
    return (payments["status"], payments["paid_amount"], payments["refunded_amount"], payments["refundable"],
            [(a["status"], a["captured"]) for a in payments["attempts"]],
            [(r["amount"], r["status"], r["provider_refund_id"]) for r in payments["refunds"]],
            [(d["dispute_id"], d["amount"]) for d in payments["disputes"]],
            sum(e["type"] == "trafi.order.paid.v1" for e in payments["trail"]))


def test_signed_webhooks_three_times_each_in_shuffled_order_end_in_the_same_state(stripe_api, fake_stripe):
    finals = set()
    for seed in range(4):
        order = _placed_order(stripe_api, email=f"shuffle{seed}@example.com")
        intent_id = _pay(stripe_api, order).json()["intent_id"]
        events = _lifecycle_events(fake_stripe, intent_id, order["total"])
        deliveries = [dict(e, id=f"{e['id']}_{seed}") for e in events] * 3
        random.Random(seed).shuffle(deliveries)
        seen = set()
        for event in deliveries:
            response = _webhook(stripe_api, event)
            assert response.status_code == 200, response.text
            assert response.json()["handled"] and response.json()["duplicate"] == (event["id"] in seen)
            seen.add(event["id"])
        finals.add(json.dumps(_final_state(_payments(stripe_api, order["order_id"]))))
    assert len(finals) == 1, finals
    status, paid, refunded, refundable, attempts, refunds, disputes, paid_events = json.loads(finals.pop())
    assert (status, refunded, refundable, paid_events) == ("partially_refunded", 500, paid - 500, 1)
    assert attempts == [["succeeded", paid]] and refunds == [[500, "succeeded", "re_dash1"]]
    assert disputes == [["dp_1", 700]]


def test_a_bad_or_stale_signature_is_refused_and_changes_nothing(stripe_api, fake_stripe):
    order = _placed_order(stripe_api)
    intent_id = _pay(stripe_api, order).json()["intent_id"]
    succeeded = _event("payment_intent.succeeded", _intent(fake_stripe, intent_id, status="succeeded",
                                                           amount_received=order["total"]),
                       created=int(time.time()), event_id="evt_bad")
    head = stripe_api.services.app.recorder.max_notification_id()
    _problem(_webhook(stripe_api, succeeded, secret="whsec_wrong"), 400, "webhook.invalid_signature")
    _problem(_webhook(stripe_api, succeeded, timestamp=int(time.time()) - 301), 400, "webhook.invalid_signature")
    body = json.dumps(succeeded)
    tampered = body.replace(str(order["total"]), str(order["total"] + 1))
    header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
    response = stripe_api.client.post(f"/webhooks/stripe/{stripe_api.store.keys.store_id}", content=tampered,
                                      headers={"Stripe-Signature": header})
    _problem(response, 400, "webhook.invalid_signature")
    _problem(stripe_api.client.post(f"/webhooks/stripe/{stripe_api.store.keys.store_id}", content=body), 400,
             "webhook.invalid_signature")
    _problem(_webhook(stripe_api, {}, payload="not json at all"), 400, "webhook.invalid_signature")
    assert stripe_api.services.app.recorder.max_notification_id() == head
    assert _payments(stripe_api, order["order_id"])["status"] == "pending_payment"
    # The same event, signed properly and fresh, is taken.
    assert _webhook(stripe_api, succeeded).json()["order_status"] == "paid"


def test_unknown_types_and_payments_of_other_stores_are_acknowledged_and_ignored(stripe_api, fake_stripe):
    order = _placed_order(stripe_api)
    intent_id = _pay(stripe_api, order).json()["intent_id"]
    unknown = _webhook(stripe_api, _event("customer.created", {"id": "cus_1"}, created=1, event_id="evt_u"))
    assert unknown.status_code == 200 and unknown.json()["handled"] is False
    succeeded = _event("payment_intent.succeeded", _intent(fake_stripe, intent_id, status="succeeded",
                                                           amount_received=order["total"]),
                       created=1, event_id="evt_x")
    elsewhere = _webhook(stripe_api, succeeded, store=stripe_api.other)
    assert elsewhere.status_code == 200 and elsewhere.json()["handled"] is False
    assert _payments(stripe_api, order["order_id"])["status"] == "pending_payment"


def test_a_late_success_after_cancellation_never_reopens_the_order_and_is_refunded(stripe_api, fake_stripe):
    order = _placed_order(stripe_api)
    intent_id = _pay(stripe_api, order).json()["intent_id"]
    cancelled = stripe_api.client.post(f"/v1/admin/orders/{order['order_id']}/cancel", json={"reason": "buyer asked"},
                                       headers=stripe_api.store.admin)
    assert cancelled.json() == {"order_id": order["order_id"], "status": "cancelled", "refund": None}
    assert fake_stripe.calls("POST", f"/v1/payment_intents/{intent_id}/cancel")  # the intent is stopped…
    fake_stripe.authenticate(intent_id)  # …but the buyer's bank had already said yes
    late = _event("payment_intent.succeeded", _intent(fake_stripe, intent_id, status="succeeded",
                                                      amount_received=order["total"]),
                  created=int(time.time()), event_id="evt_late")
    assert _webhook(stripe_api, late).json()["order_status"] == "cancelled"
    after = _payments(stripe_api, order["order_id"])
    assert (after["status"], after["paid_amount"], after["refunded_amount"]) == ("cancelled", order["total"], order["total"])
    assert [e["type"] for e in after["trail"]][-3:] == [
        "trafi.order.payment_unmatched.v1", "trafi.order.refund_requested.v1", "trafi.order.refunded.v1"]
    [refund] = fake_stripe.calls("POST", "/v1/refunds")
    assert refund.idempotency_key == f"trafi-{order['order_id']}-refund-unmatched_{intent_id}"
    assert refund.params["amount"] == str(order["total"]) and refund.params["payment_intent"] == intent_id
    # Stripe telling us about that refund afterwards changes nothing.
    refunded = _event("charge.refunded", {"id": "ch_9", "payment_intent": intent_id, "paid": True,
                                          "amount_captured": order["total"], "amount_refunded": order["total"],
                                          "refunds": {"data": [{"id": refund_id, "amount": order["total"],
                                                                "status": "succeeded",
                                                                "metadata": {"trafi_refund_id": f"unmatched_{intent_id}"}}
                                                               for refund_id in fake_stripe.refunds]}},
                      created=int(time.time()), event_id="evt_late_refund")
    assert _webhook(stripe_api, refunded).status_code == 200
    assert _final_state(_payments(stripe_api, order["order_id"])) == _final_state(after)


@pytest.mark.postgres
@pytest.mark.parametrize("store_kind", ["postgres"], indirect=True)
def test_the_buyers_confirm_and_the_webhook_racing_pay_exactly_once(stripe_api, fake_stripe):
    payments, ctx = stripe_api.services.payments, stripe_api.store.ctx
    for round_no in range(8):
        order = _placed_order(stripe_api, email=f"race{round_no}@example.com")
        intent_id = _pay(stripe_api, order).json()["intent_id"]
        fake_stripe.authenticate(intent_id)  # paid at Stripe: now both paths learn it at once
        body = json.dumps(_event("payment_intent.succeeded", fake_stripe.intents[intent_id], created=int(time.time()),
                                 event_id=f"evt_race{round_no}"))
        headers = {"stripe-signature": stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)}
        start = threading.Barrier(2)
        errors = []

        def run(call):
            try:
                start.wait()
                call()
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(lambda: payments.confirm_payment(ctx, UUID(order["order_id"])),)),
                   threading.Thread(target=run, args=(lambda: payments.handle_webhook(ctx, "stripe", body.encode(), headers),))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        trail = [e["type"] for e in _payments(stripe_api, order["order_id"])["trail"]]
        assert trail.count("trafi.order.paid.v1") == 1 and "trafi.order.payment_unmatched.v1" not in trail


# --- refunds ---------------------------------------------------------------------------------
def _paid_order(api: Api, **kwargs) -> dict:
    order = _placed_order(api, **kwargs)
    paid = _pay(api, order, {"payment_method": "pm_card_visa"})
    assert paid.json()["order_status"] == "paid", paid.text
    return {**order, "intent_id": paid.json()["intent_id"], "position": paid.headers["X-Trafi-Position"]}


def test_a_refund_goes_through_stripe_once_per_key_and_restocks(stripe_api, fake_stripe):
    order = _paid_order(stripe_api, qty=3)
    base, h = f"/v1/admin/orders/{order['order_id']}", stripe_api.store.admin
    _problem(stripe_api.client.post(f"{base}/refund", json={"amount": order["total"] + 1}, headers=h), 422,
             "order.invalid_refund")
    keyed = {**h, "Idempotency-Key": "refund-chipped-1"}
    first = stripe_api.client.post(f"{base}/refund", json={"amount": 500, "restock": {"MUG-1": 1}}, headers=keyed)
    assert first.status_code == 200, first.text
    again = stripe_api.client.post(f"{base}/refund", json={"amount": 500, "restock": {"MUG-1": 1}}, headers=keyed)
    assert first.json() == again.json() and first.json()["refund_status"] == "succeeded"
    assert (first.json()["status"], first.json()["refunded"]) == ("partially_refunded", 500)
    _problem(stripe_api.client.post(f"{base}/refund", json={"amount": 600}, headers=keyed), 409, "refund.id_reused")
    [call] = fake_stripe.calls("POST", "/v1/refunds")
    assert call.idempotency_key == f"trafi-{order['order_id']}-refund-{first.json()['refund_id']}"
    assert (call.params["amount"], call.params["payment_intent"]) == ("500", order["intent_id"])
    assert call.params["metadata"]["trafi_refund_id"] == first.json()["refund_id"]
    stock = stripe_api.client.get("/v1/admin/stock/MUG-1", params={"min_position": again.headers["X-Trafi-Position"]},
                                  headers=h).json()
    assert stock["reserved"] == 2  # the refunded unit had not shipped: its reservation ended
    # What is left can be shipped: two units.
    assert stripe_api.client.post(f"{base}/fulfil", json={"lines": {"MUG-1": 2}}, headers=h).json()["status"] == "fulfilled"


def test_a_refund_stays_pending_while_stripe_is_down_and_is_settled_later(stripe_api, fake_stripe, monkeypatch):
    order = _paid_order(stripe_api)
    fake_stripe.refunds_down = True
    pending = stripe_api.client.post(f"/v1/admin/orders/{order['order_id']}/refund", json={"amount": 300},
                                     headers=stripe_api.store.admin)
    assert pending.status_code == 200 and pending.json()["refund_status"] == "pending", pending.text
    assert pending.json()["refundable"] == order["total"] - 300  # a pending refund is already spoken for
    fake_stripe.refunds_down = False
    # The worker a deployment runs: `trafi payments reconcile`, configured from the environment.
    config = stripe_api.services.settings.event_store
    for name, value in {"TRAFI_EVENT_STORE": config.kind, "TRAFI_SQLITE_PATH": config.sqlite_path,
                        "TRAFI_POSTGRES_DSN": config.postgres_dsn, "TRAFI_SECRET_KEY": "unused",
                        "TRAFI_PAYMENT_PROVIDER": "stripe", "TRAFI_STRIPE_SECRET_KEY": "sk_test_fake",
                        "TRAFI_STRIPE_API_BASE": fake_stripe.url}.items():
        monkeypatch.setenv(name, value or "")
    deadline = time.monotonic() + 10
    while _payments(stripe_api, order["order_id"])["refunds"][0]["status"] == "pending" and time.monotonic() < deadline:
        assert cli_main(["payments", "reconcile", "--once"]) == 0
        time.sleep(0.05)  # the read model naming pending refunds catches up
    after = _payments(stripe_api, order["order_id"])
    assert [(r["status"], r["amount"]) for r in after["refunds"]] == [("succeeded", 300)]
    keys = {c.idempotency_key for c in fake_stripe.calls("POST", "/v1/refunds")}
    assert keys == {f"trafi-{order['order_id']}-refund-{pending.json()['refund_id']}"} and len(fake_stripe.refunds) == 1


def test_cancelling_a_paid_order_refunds_it_and_releases_stock(stripe_api, fake_stripe):
    order = _paid_order(stripe_api, qty=2)
    cancelled = stripe_api.client.post(f"/v1/admin/orders/{order['order_id']}/cancel", json={},
                                       headers=stripe_api.store.admin)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (cancelled.json()["refund"]["refund_status"], cancelled.json()["refund"]["amount"]) == ("succeeded", order["total"])
    stock = stripe_api.client.get("/v1/admin/stock/MUG-1", params={"min_position": cancelled.headers["X-Trafi-Position"]},
                                  headers=stripe_api.store.admin).json()
    assert stock["reserved"] == 0


# --- fulfilment, tracking and returns (sandbox provider, the embedded default) -------------------
def test_3pl_fulfilment_tracking_and_a_return_to_its_refund(api):
    order = _placed_order(api, qty=2)
    paid = _pay(api, order, {"payment_method": "pm_card_visa"}).json()
    assert (paid["provider"], paid["order_status"]) == ("sandbox", "paid")
    base, h, c = f"/v1/admin/orders/{order['order_id']}", api.store.admin, api.client
    shipment = {"lines": {"MUG-1": 2}, "carrier": "DHL", "tracking_number": "", "fulfilment_id": "3pl-77"}
    first = c.post(f"{base}/fulfil", json=shipment, headers=h)
    again = c.post(f"{base}/fulfil", json=shipment, headers=h)  # the 3PL retries without a key
    assert first.json() == again.json() == {"order_id": order["order_id"], "status": "fulfilled", "fulfilment_id": "3pl-77"}
    _problem(c.post(f"{base}/fulfil", json={**shipment, "lines": {"MUG-1": 1}}, headers=h), 409, "order.fulfilment_exists")
    tracked = c.put(f"{base}/fulfilments/3pl-77/tracking", json={"carrier": "DHL", "tracking_number": "JD0001"}, headers=h)
    assert tracked.status_code == 200, tracked.text
    _problem(c.put(f"{base}/fulfilments/nope/tracking", json={"carrier": "x", "tracking_number": "y"}, headers=h), 404)
    assert c.post(f"{base}/mark-delivered", headers=h).json()["status"] == "delivered"

    buyer = {**api.store.storefront, **_buyer(order)}
    status = c.get(f"/v1/orders/{order['order_id']}", headers=buyer).json()
    assert status["shipments"] == [{"fulfilment_id": "3pl-77", "lines": {"MUG-1": 2}, "carrier": "DHL",
                                    "tracking_number": "JD0001"}]
    _problem(c.post(f"/v1/orders/{order['order_id']}/returns", json={"lines": {"MUG-1": 3}}, headers=buyer), 422,
             "order.invalid_return")
    asked = c.post(f"/v1/orders/{order['order_id']}/returns", json={"lines": {"MUG-1": 1}, "reason": "chipped"},
                   headers=buyer)
    assert asked.status_code == 201 and asked.json()["return_status"] == "requested", asked.text
    return_id = asked.json()["return_id"]
    _problem(c.post(f"{base}/returns/{return_id}/receive", json={}, headers=h), 409, "return.invalid_transition")
    _problem(c.post(f"{base}/returns/{return_id}/refund", json={}, headers=h), 409, "return.invalid_transition")
    assert c.post(f"{base}/returns/{return_id}/authorise", headers=h).json()["return_status"] == "authorised"
    received = c.post(f"{base}/returns/{return_id}/receive", json={"restock": True}, headers=h)
    assert received.json()["return_status"] == "received"
    refunded = c.post(f"{base}/returns/{return_id}/refund", json={}, headers=h)
    twice = c.post(f"{base}/returns/{return_id}/refund", json={}, headers=h)
    line_gross = c.get(base, params={"min_position": order["position"]}, headers=h).json()["lines"][0]["gross"]
    assert refunded.json() == twice.json() and refunded.json()["amount"] == line_gross // 2
    assert (refunded.json()["status"], refunded.json()["refund_status"]) == ("partially_refunded", "succeeded")
    stock = c.get("/v1/admin/stock/MUG-1", params={"min_position": twice.headers.get("X-Trafi-Position")
                                                    or refunded.headers["X-Trafi-Position"]}, headers=h).json()
    assert (stock["on_hand"], stock["reserved"]) == (99, 0)  # 100 − 2 shipped + 1 back
    returns = _payments(api, order["order_id"])["returns"]
    assert [(r["return_id"], r["status"], r["restocked"]) for r in returns] == [(return_id, "refunded", True)]


def test_sandbox_test_cards_decline_and_three_d_secure(api):
    order = _placed_order(api)
    declined = _pay(api, order, {"payment_method": "4000000000000002"}).json()
    assert (declined["status"], declined["failure"]) == ("requires_payment_method", "Your card was declined.")
    challenged = _pay(api, order, {"payment_method": "pm_card_threeDSecureRequired"}).json()
    assert challenged["status"] == "requires_action" and challenged["next_action"]["type"] == "sandbox_authenticate"
    failed = _pay(api, order, {"authentication": "fail"}, path="payment/confirm").json()
    assert failed["status"] == "requires_payment_method" and failed["order_status"] == "pending_payment"
    _pay(api, order, {"payment_method": "pm_card_threeDSecureRequired"})
    passed = _pay(api, order, {"authentication": "pass"}, path="payment/confirm").json()
    assert (passed["status"], passed["order_status"], passed["attempt"]) == ("succeeded", "paid", 1)
    _problem(_pay(api, order, {"payment_method": "pm_card_visa"}), 409, "payment.not_awaiting_payment")
    _problem(_pay(api, _placed_order(api, email="x@example.com"), {"payment_method": "pm_card_unknown"}), 422,
             "payment.unknown_test_card")
