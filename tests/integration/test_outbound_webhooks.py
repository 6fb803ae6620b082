"""Outbound webhooks end to end: the log → the OutboundWebhooks projection → the deliverer → a real HTTP receiver.

The receiver is a real HTTP server on a free local port, scripted per request
(fail, hang past the deliverer's timeout, refuse, succeed). Everything runs on
SQLite and on the real local PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from uuid import UUID, uuid4

import pytest

from api import cli
from commands.application import TrafiApplication
from commands.stock import AdjustStock, ReceiveStock
from commands.webhooks import (
    CreateWebhookEndpoint, DeleteWebhookEndpoint, DisableWebhookEndpoint, EnableWebhookEndpoint,
    ReplayWebhookDelivery, RotateWebhookSecret,
)
from domain.envelope import ENVELOPE_FIELDS, event_id
from domain.webhook_endpoint import DeliveryNotReplayable, derive_secret
from domain.webhook_signature import verify
from projections.runner import ProjectionRunner
from projections.views import ViewStore
from projections.webhooks import schedule
from projections.webhooks.address import UnsafeAddress, is_public, resolve
from projections.webhooks.deliverer import DeliveryOptions, WebhookDeliverer
from projections.webhooks.projection import OutboundWebhooks, delivery_id
from projections.webhooks.queue import claim_due
from projections.read_models.timestamps import utc_text
from tests.factories import seed_small_store

SECRET = b"webhook-test-secret"
TIMEOUT_S = 1.0  # generous: a loaded CI machine must not turn a plain answer into a timeout


# --- a real receiver ---------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    answered: bool  # the answer reached the deliverer (False: it hung past the timeout)

    @property
    def envelope(self) -> dict:
        return json.loads(self.body)

    @property
    def succeeded(self) -> bool:
        return self.answered and 200 <= self.status < 300


Script = Callable[[str, dict], tuple[int, float]]  # (path, envelope) → (status, seconds to wait first)


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread; `script` decides each answer."""

    def __init__(self, script: Script):
        self.script = script
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, delay = receiver.script(self.path, json.loads(body))
                # Recorded on arrival; an answer given after the deliverer's timeout never reached it.
                received = Received(self.path, dict(self.headers), body, status, answered=delay < TIMEOUT_S)
                with receiver._lock:
                    receiver.received.append(received)
                time.sleep(delay)
                try:
                    reply = f"answer {status}".encode()
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    received.answered = False

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def successes(self) -> Counter:
        with self._lock:
            return Counter(r.headers["Trafi-Event-Id"] for r in self.received if r.succeeded)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    made = []

    def make(script: Script) -> Receiver:
        made.append(Receiver(script))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def always(status: int, delay: float = 0.0) -> Script:
    return lambda path, envelope: (status, delay)


# --- helpers -----------------------------------------------------------------------------------
def options(**overrides) -> DeliveryOptions:
    return DeliveryOptions(**{"secret_key": SECRET, "allow_private": True, "timeout_s": TIMEOUT_S,
                              "backoff_scale": 0.0002, "concurrency": 4, **overrides})


def create_endpoint(bus, ctx, url: str, event_types=("trafi.stock_item.*",)) -> UUID:
    endpoint = uuid4()
    bus.execute(CreateWebhookEndpoint(endpoint_id=endpoint, url=url, event_types=tuple(event_types),
                                      description="3PL"), ctx)
    return endpoint


def project(app, views) -> None:
    ProjectionRunner(app, views, OutboundWebhooks()).catch_up()


def deliveries(views, endpoint: UUID | None = None) -> dict[str, tuple[str, int]]:
    """delivery id → (status, attempts)."""
    where, params = ("WHERE endpoint_id = %s", (str(endpoint),)) if endpoint else ("", ())
    with views.read() as tx:
        rows = tx.execute(f"SELECT delivery_id, status, attempts FROM webhook_deliveries {where}", params).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def attempts_of(views, delivery: str) -> list[tuple]:
    with views.read() as tx:
        return tx.execute(
            "SELECT attempt_no, status_code, error, outcome, latency_ms, response_excerpt "
            "FROM webhook_delivery_attempts WHERE delivery_id = %s ORDER BY attempt_no", (delivery,),
        ).fetchall()


def settled(views) -> bool:
    return all(status != "pending" for status, _ in deliveries(views).values())


def deliver_until(deliverer: WebhookDeliverer, done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "deliveries did not settle in time"
        deliverer.run_once()
        time.sleep(0.01)


def utc_text_at(seconds: float) -> str:
    return utc_text(datetime.fromtimestamp(seconds, timezone.utc))


def receive(bus, shop, sku: str = "MUG-1", quantity: int = 1, times: int = 1) -> None:
    for _ in range(times):
        bus.execute(ReceiveStock(sku=sku, quantity=quantity), shop.ctx)


# --- retries --------------------------------------------------------------------------------------
def test_a_failure_then_a_timeout_then_success_delivers_each_event_exactly_once(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    calls: Counter = Counter()
    lock = threading.Lock()

    def flaky(path, envelope):
        with lock:
            calls[envelope["event_id"]] += 1
            n = calls[envelope["event_id"]]
        return {1: (500, 0.0), 2: (503, TIMEOUT_S * 2.5)}.get(n, (200, 0.0))

    receiver = receiver_factory(flaky)
    endpoint = create_endpoint(bus, shop.ctx, receiver.url())
    receive(bus, shop, "MUG-1", times=2)
    receive(bus, shop, "BOOK-1")
    project(app, views)
    queued = deliveries(views)
    assert len(queued) == 3 and {s for s, _ in queued.values()} == {"pending"}

    deliverer = WebhookDeliverer(views, options())
    try:
        deliver_until(deliverer, lambda: settled(views))
    finally:
        deliverer.close()

    assert {s for s, _ in deliveries(views).values()} == {"delivered"}
    assert all(attempts == 3 for _, attempts in deliveries(views).values())
    assert set(receiver.successes().values()) == {1} and len(receiver.successes()) == 3
    secret = derive_secret(SECRET, endpoint, 0)
    by_event: dict[str, list[Received]] = {}
    for request in receiver.received:
        by_event.setdefault(request.headers["Trafi-Event-Id"], []).append(request)
        envelope = request.envelope
        assert tuple(envelope) == ENVELOPE_FIELDS
        assert envelope["type"] == request.headers["Trafi-Event-Type"] == "trafi.stock_item.received.v1"
        assert envelope["event_id"] == request.headers["Trafi-Event-Id"]
        assert envelope["store_id"] == str(shop.ctx.store_id)
        assert request.headers["Trafi-Delivery-Id"] == str(delivery_id(endpoint, envelope["event_id"]))
        assert request.headers["Content-Type"] == "application/json"
        verify(secret, request.headers["Trafi-Signature"], request.body)
    for requests in by_event.values():
        assert len(requests) == 3
        assert len({r.body for r in requests}) == 1  # byte-identical on every attempt
        assert [r.headers["Trafi-Delivery-Attempt"] for r in requests] == ["1", "2", "3"]
    log = attempts_of(views, next(iter(deliveries(views))))
    assert [(no, code, outcome) for no, code, _, outcome, _, _ in log] == [
        (1, 500, "retry"), (2, None, "retry"), (3, 200, "delivered")]
    assert "timed out" in log[1][2] and log[2][5] == "answer 200" and log[0][2] == "HTTP 500"


def test_a_4xx_fails_at_once_and_408_and_429_are_retried(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    seen: Counter = Counter()

    def by_path(path, envelope):
        seen[path] += 1
        if path == "/gone":
            return 410, 0.0
        return (429 if path == "/busy" else 408, 0.0) if seen[path] == 1 else (204, 0.0)

    receiver = receiver_factory(by_path)
    gone = create_endpoint(bus, shop.ctx, receiver.url("/gone"))
    busy = create_endpoint(bus, shop.ctx, receiver.url("/busy"))
    slow = create_endpoint(bus, shop.ctx, receiver.url("/slow"))
    receive(bus, shop)
    project(app, views)
    deliverer = WebhookDeliverer(views, options())
    try:
        deliver_until(deliverer, lambda: settled(views))
        time.sleep(0.05)
        assert deliverer.run_once() == 0  # nothing left to retry
    finally:
        deliverer.close()
    assert list(deliveries(views, gone).values()) == [("failed", 1)]
    assert list(deliveries(views, busy).values()) == [("delivered", 2)]
    assert list(deliveries(views, slow).values()) == [("delivered", 2)]
    assert seen == {"/gone": 1, "/busy": 2, "/slow": 2}
    [(_, code, error, outcome, _, excerpt)] = attempts_of(views, next(iter(deliveries(views, gone))))
    assert (code, error, outcome, excerpt) == (410, "HTTP 410", "failed", "answer 410")


def test_retries_are_bounded_then_the_delivery_fails(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    receiver = receiver_factory(always(500))
    endpoint = create_endpoint(bus, shop.ctx, receiver.url())
    receive(bus, shop)
    project(app, views)
    deliverer = WebhookDeliverer(views, options(backoff_scale=0.00001))
    try:
        deliver_until(deliverer, lambda: settled(views))
    finally:
        deliverer.close()
    [(status, attempts)] = deliveries(views, endpoint).values()
    assert (status, attempts) == ("failed", 1 + schedule.MAX_RETRIES) and len(receiver.received) == 6
    outcomes = [row[3] for row in attempts_of(views, next(iter(deliveries(views))))]
    assert outcomes == ["retry"] * 5 + ["failed"]


def test_the_retry_schedule_spreads_five_retries_over_less_than_a_day():
    import random

    rng = random.Random(1)
    for _ in range(200):
        delays = [schedule.retry_delay_s(n, rng=rng) for n in range(schedule.MAX_RETRIES)]
        assert delays[0] >= 54 and sum(delays) <= 24 * 3600
    assert schedule.retry_delay_s(schedule.MAX_RETRIES) is None
    assert [schedule.outcome_of_status(c) for c in (200, 204, 301, 400, 404, 408, 410, 429, 500, 503)] == [
        "delivered", "delivered", "retry", "failed", "failed", "retry", "failed", "retry", "retry", "retry"]


# --- what is delivered, and to whom -------------------------------------------------------------
def test_only_subscribed_types_of_the_endpoints_own_store_are_delivered(app, bus, views, receiver_factory):
    shop, other = seed_small_store(bus), seed_small_store(bus)
    receiver = receiver_factory(always(200))
    create_endpoint(bus, shop.ctx, receiver.url(), event_types=("trafi.stock_item.received.v1",))
    create_endpoint(bus, other.ctx, receiver.url("/other"), event_types=("trafi.product.*",))
    receive(bus, shop, times=2)
    bus.execute(AdjustStock(sku="MUG-1", on_hand=5), shop.ctx)  # not subscribed
    receive(bus, other)  # the other store's: never to our endpoint
    project(app, views)
    deliverer = WebhookDeliverer(views, options())
    try:
        deliver_until(deliverer, lambda: settled(views))
    finally:
        deliverer.close()
    ours = [r for r in receiver.received if r.path == "/hooks"]
    assert len(ours) == 2
    assert {r.envelope["type"] for r in ours} == {"trafi.stock_item.received.v1"}
    assert {r.envelope["store_id"] for r in ours} == {str(shop.ctx.store_id)}
    assert [r for r in receiver.received if r.path == "/other"] == []  # no product event happened after it


def test_events_before_the_endpoint_existed_are_not_sent_and_credentials_never_leave(app, bus, views, receiver_factory):
    from commands.customers import RegisterCustomer

    shop = seed_small_store(bus)
    receive(bus, shop)  # before the endpoint: not for it
    receiver = receiver_factory(always(200))
    create_endpoint(bus, shop.ctx, receiver.url(), event_types=("trafi.customer.*", "trafi.stock_item.*"))
    bus.execute(RegisterCustomer(email="ada@example.com", password="a long passphrase"), shop.ctx)
    project(app, views)
    deliverer = WebhookDeliverer(views, options())
    try:
        deliver_until(deliverer, lambda: settled(views))
    finally:
        deliverer.close()
    [request] = receiver.received
    assert request.envelope["type"] == "trafi.customer.registered.v1"
    assert request.envelope["data"]["password_hash"] == "[redacted]"
    assert request.envelope["data"]["email"] == "ada@example.com"


def test_disabling_holds_new_events_back_and_deleting_cancels_what_waits(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    receiver = receiver_factory(always(200))
    endpoint = create_endpoint(bus, shop.ctx, receiver.url())
    receive(bus, shop)  # queued, then held while disabled
    bus.execute(DisableWebhookEndpoint(endpoint_id=endpoint), shop.ctx)
    receive(bus, shop)  # not queued: the endpoint is disabled
    project(app, views)
    deliverer = WebhookDeliverer(views, options())
    try:
        assert deliverer.run_once() == 0 and list(deliveries(views).values()) == [("pending", 0)]
        bus.execute(EnableWebhookEndpoint(endpoint_id=endpoint), shop.ctx)
        receive(bus, shop)
        project(app, views)
        deliver_until(deliverer, lambda: settled(views))
        assert len(receiver.received) == 2
        bus.execute(DisableWebhookEndpoint(endpoint_id=endpoint), shop.ctx)
        bus.execute(EnableWebhookEndpoint(endpoint_id=endpoint), shop.ctx)
        receive(bus, shop)
        bus.execute(DeleteWebhookEndpoint(endpoint_id=endpoint), shop.ctx)
        project(app, views)
        assert deliverer.run_once() == 0
    finally:
        deliverer.close()
    assert Counter(status for status, _ in deliveries(views).values()) == {"delivered": 2, "cancelled": 1}


def test_a_rotated_secret_signs_the_next_attempt(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    receiver = receiver_factory(always(200))
    endpoint = create_endpoint(bus, shop.ctx, receiver.url())
    bus.execute(RotateWebhookSecret(endpoint_id=endpoint), shop.ctx)
    receive(bus, shop)
    project(app, views)
    deliverer = WebhookDeliverer(views, options())
    try:
        deliver_until(deliverer, lambda: settled(views))
    finally:
        deliverer.close()
    [request] = receiver.received
    verify(derive_secret(SECRET, endpoint, 1), request.headers["Trafi-Signature"], request.body)
    with pytest.raises(Exception):
        verify(derive_secret(SECRET, endpoint, 0), request.headers["Trafi-Signature"], request.body)


# --- replay ---------------------------------------------------------------------------------------
def test_a_failed_delivery_is_delivered_when_replayed(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    answer = {"status": 410}
    receiver = receiver_factory(lambda path, envelope: (answer["status"], 0.0))
    endpoint = create_endpoint(bus, shop.ctx, receiver.url())
    receive(bus, shop)
    project(app, views)
    deliverer = WebhookDeliverer(views, options())
    try:
        deliver_until(deliverer, lambda: settled(views))
        [(failed, (status, _))] = deliveries(views).items()
        assert status == "failed"
        answer["status"] = 200  # the receiver is fixed
        bus.execute(ReplayWebhookDelivery(endpoint_id=endpoint, delivery_id=UUID(failed), delivery_status="failed"),
                    shop.ctx)
        project(app, views)
        assert deliveries(views)[failed] == ("pending", 1)
        deliver_until(deliverer, lambda: settled(views))
    finally:
        deliverer.close()
    assert deliveries(views)[failed] == ("delivered", 2)  # the attempt count continues
    assert [row[:2] for row in attempts_of(views, failed)] == [(1, 410), (2, 200)]
    assert len({r.body for r in receiver.received}) == 1
    with pytest.raises(DeliveryNotReplayable):
        bus.execute(ReplayWebhookDelivery(endpoint_id=endpoint, delivery_id=UUID(failed),
                                          delivery_status="delivered"), shop.ctx)


# --- restarts and concurrency -----------------------------------------------------------------------
def test_a_restart_in_the_middle_loses_nothing_and_repeats_no_success(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    receiver = receiver_factory(always(200))
    create_endpoint(bus, shop.ctx, receiver.url())
    receive(bus, shop, times=4)
    project(app, views)  # the first four are queued …
    receive(bus, shop, times=3)  # … these three are not yet when everything stops
    first = WebhookDeliverer(views, options(concurrency=2))
    # A deliverer dies with two deliveries claimed and never answered: the lease is all that is left of it.
    now = time.time()
    abandoned = claim_due(views, due_by=utc_text_at(now), now=utc_text_at(now), lease_until=utc_text_at(now + 0.5),
                          limit=2)
    assert len(abandoned) == 2
    assert first.run_once() == 2  # the other two
    first.close()
    delivered_before = receiver.successes()

    # New instances on the same databases: application, view store, projection, deliverer.
    app2 = TrafiApplication(app.config)
    views2 = ViewStore(app.config)
    try:
        project(app2, views2)
        assert len(deliveries(views2)) == 7  # three new; none of the four queued twice
        second = WebhookDeliverer(views2, options())
        try:
            deliver_until(second, lambda: settled(views2))
        finally:
            second.close()
    finally:
        views2.close()
        app2.close()
    successes = receiver.successes()
    assert len(successes) == 7 and set(successes.values()) == {1}
    assert set(delivered_before) <= set(successes)
    for claim in abandoned:  # taken over after the lease, as attempt 2
        assert deliveries(views)[claim.delivery_id] == ("delivered", 2)


def test_the_projection_refuses_a_rebuild_and_queues_nothing_twice(app, bus, views, receiver_factory):
    from projections.rebuild import rebuild

    shop = seed_small_store(bus)
    receiver = receiver_factory(always(200))
    create_endpoint(bus, shop.ctx, receiver.url())
    receive(bus, shop, times=3)
    project(app, views)
    projection = OutboundWebhooks()
    assert "re-send" in projection.rebuild_refusal(app, views)
    before = deliveries(views)
    rebuild(app, views, projection)  # what `--force` does: the queue keeps its rows, none is added twice
    assert deliveries(views) == before and len(before) == 3


@pytest.mark.postgres
@pytest.mark.parametrize("store_kind", ["postgres"])
def test_two_deliverers_on_postgres_never_send_the_same_delivery_twice(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    receiver = receiver_factory(always(200, delay=0.005))
    create_endpoint(bus, shop.ctx, receiver.url())
    for sku in ("MUG-1", "BOOK-1", "TEE-M"):
        receive(bus, shop, sku, times=25)
    project(app, views)
    assert len(deliveries(views)) == 75
    other_views = ViewStore(app.config)
    # A generous timeout: a request timed out under load would be retried (at least once, legitimately).
    deliverers = [WebhookDeliverer(views, options(concurrency=6, timeout_s=10)),
                  WebhookDeliverer(other_views, options(concurrency=6, timeout_s=10))]
    attempted = [0, 0]
    start = threading.Barrier(2)

    def work(index: int) -> None:
        start.wait()
        deadline = time.monotonic() + 30
        while not settled(views) and time.monotonic() < deadline:
            attempted[index] += deliverers[index].run_once()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for deliverer in deliverers:
            deliverer.close()
        other_views.close()
    assert sum(attempted) == 75
    assert len(receiver.received) == 75
    assert Counter(r.headers["Trafi-Delivery-Id"] for r in receiver.received).most_common(1)[0][1] == 1
    assert set(deliveries(views).values()) == {("delivered", 1)}
    assert all(attempted), "both deliverers took a share"


# --- the SSRF guard ----------------------------------------------------------------------------------
def test_private_addresses_are_refused_unless_the_deployment_allows_them(app, bus, views, receiver_factory):
    shop = seed_small_store(bus)
    receiver = receiver_factory(always(200))
    endpoint = create_endpoint(bus, shop.ctx, receiver.url())
    receive(bus, shop)
    project(app, views)
    guarded = WebhookDeliverer(views, options(allow_private=False))
    try:
        deliver_until(guarded, lambda: settled(views))
    finally:
        guarded.close()
    [(delivery, (status, _))] = deliveries(views, endpoint).items()
    assert status == "failed" and receiver.received == []
    [(_, code, error, outcome, _, _)] = attempts_of(views, delivery)
    assert code is None and outcome == "failed" and "127.0.0.1" in error and "TRAFI_WEBHOOKS_ALLOW_PRIVATE" in error


@pytest.mark.parametrize("address, public", [
    ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False), ("127.0.0.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True),
])
def test_which_addresses_count_as_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_the_guard_pins_the_checked_address_and_keeps_the_name_for_host_and_tls():
    def fake_dns(host, port, type=None):
        return [(2, 1, 6, "", ("93.184.215.14", port))]

    target = resolve("https://erp.example.com:8443/hooks?x=1", allow_private=False, resolver=fake_dns)
    assert str(target.url) == "https://93.184.215.14:8443/hooks?x=1"
    assert target.headers == {"Host": "erp.example.com:8443"}
    assert target.extensions == {"sni_hostname": "erp.example.com"}

    def rebinding_dns(host, port, type=None):
        return [(2, 1, 6, "", ("93.184.215.14", port)), (2, 1, 6, "", ("10.0.0.7", port))]

    with pytest.raises(UnsafeAddress):  # one private answer among public ones is enough to refuse
        resolve("http://erp.example.com/hooks", allow_private=False, resolver=rebinding_dns)
    with pytest.raises(UnsafeAddress):
        resolve("http://[::1]:8080/hooks", allow_private=False)
    assert str(resolve("http://[::1]:8080/h", allow_private=True).url) == "http://[::1]:8080/h"


# --- the worker command --------------------------------------------------------------------------
def test_trafi_webhooks_deliver_once_sends_what_is_due(app, bus, views, receiver_factory, monkeypatch, tmp_path):
    shop = seed_small_store(bus)
    receiver = receiver_factory(always(200))
    create_endpoint(bus, shop.ctx, receiver.url())
    receive(bus, shop, times=2)
    project(app, views)
    config = app.config
    env = {"TRAFI_EVENT_STORE": config.kind, "TRAFI_SECRET_KEY": SECRET.decode(), "TRAFI_WEBHOOKS_ALLOW_PRIVATE": "1",
           "TRAFI_DATA_DIR": str(tmp_path)}
    env.update({"TRAFI_SQLITE_PATH": config.sqlite_path} if config.kind == "sqlite"
               else {"TRAFI_POSTGRES_DSN": config.postgres_dsn})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["webhooks", "deliver", "--once"]) == 0
    assert len(receiver.successes()) == 2 and {s for s, _ in deliveries(views).values()} == {"delivered"}
    assert {r.headers["Trafi-Event-Id"] for r in receiver.received} == {
        str(event_id(UUID(r.envelope["aggregate_id"]), r.envelope["version"])) for r in receiver.received}
