"""WebhookDeliverer: claims due deliveries, signs them, POSTs them, records what happened.

This is the only module of outbound webhooks that does network I/O. It runs
embedded in the API process (a daemon thread started by api/services.py) or as a
worker (`trafi webhooks deliver`); any number of deliverers may run against one
PostgreSQL database — claims are leases taken with SKIP LOCKED (queue.py), so no
two of them send the same delivery at the same time.

    deliverer = WebhookDeliverer(views, DeliveryOptions(secret_key=b"…", concurrency=8))
    attempted = deliverer.run_once()   # one pass over what is due now; returns deliveries attempted
    deliverer.start() … deliverer.stop()  # or run() in the foreground until stop()

A pass keeps up to `concurrency` requests in flight (a thread pool sharing one
HTTP connection pool). Every attempt of a delivery sends the same body — the
envelope stored when it was enqueued — signed at send time with the current
timestamp and the endpoint's current secret (domain/webhook_signature.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from uuid import UUID

import httpx

from domain.webhook_endpoint import derive_secret
from domain.webhook_signature import HEADER as SIGNATURE_HEADER, signature_header
from projections.read_models.timestamps import utc_text
from projections.views import ViewStore
from projections.webhooks import schedule
from projections.webhooks.address import UnsafeAddress, resolve
from projections.webhooks.projection import OutboundWebhooks
from projections.webhooks.queue import AttemptRecord, Claimed, claim_due, record_attempt

log = logging.getLogger("trafi.webhooks")

USER_AGENT = "Trafi-Webhooks/1.0"
EXCERPT_CHARS = 500
_EXCERPT_BYTES = 4 * EXCERPT_CHARS  # enough for 500 characters of UTF-8; nothing more is read


@dataclass(frozen=True)
class DeliveryOptions:
    secret_key: bytes = field(repr=False)  # the deployment's TRAFI_SECRET_KEY: endpoint secrets derive from it
    allow_private: bool = False  # TRAFI_WEBHOOKS_ALLOW_PRIVATE
    timeout_s: float = 10.0  # TRAFI_WEBHOOKS_TIMEOUT_S: connect, write and read, each
    concurrency: int = 8  # TRAFI_WEBHOOKS_CONCURRENCY: requests in flight per deliverer
    backoff_scale: float = 1.0  # TRAFI_WEBHOOKS_BACKOFF_SCALE: multiplies the retry delays
    poll_interval_s: float = 0.5  # how often an idle deliverer looks for due deliveries

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery is not offered to other deliverers: well past any request."""
        return 3 * self.timeout_s + 60


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _clean(text: str | None, limit: int = EXCERPT_CHARS) -> str | None:
    # Database text cannot hold NUL (PostgreSQL refuses it); a receiver may send anything.
    return None if text is None else text.replace("\x00", "\ufffd")[:limit]


class WebhookDeliverer:
    def __init__(self, views: ViewStore, options: DeliveryOptions):
        if options.concurrency < 1 or options.timeout_s <= 0 or options.backoff_scale < 0:
            raise ValueError("concurrency ≥ 1, timeout_s > 0 and backoff_scale ≥ 0, please")
        self.views = views
        self.options = options
        with views.schema_transaction() as tx:  # the queue may be served before the projection first ran
            OutboundWebhooks().setup(tx)
        self._client = httpx.Client(
            timeout=options.timeout_s, follow_redirects=False, headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=options.concurrency * 2, max_keepalive_connections=options.concurrency),
        )
        self._pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="trafi-webhook")
        self._rng = random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ------------------------------------------------------------------------------
    def start(self) -> WebhookDeliverer:
        self._thread = threading.Thread(target=self.run, name="trafi-webhooks", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Deliver until stop(): a pass, then (if it found nothing) a pause of poll_interval_s."""
        while not self._stop.is_set():
            try:
                attempted = self.run_once()
            except Exception:  # the view database is away: try again after a pause
                log.exception("webhook delivery pass failed")
                attempted = 0
            if not attempted:
                self._stop.wait(self.options.poll_interval_s)

    def request_stop(self) -> None:
        """Stop claiming: run() returns once the requests in flight are done. Safe in a signal handler."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread start() began, waiting (up to `timeout`, default one request timeout)
        for requests in flight; then close()."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.options.timeout_s + 1 if timeout is None else timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def run_once(self) -> int:
        """Attempt every delivery due at the start of this pass; return how many were attempted.

        Retries scheduled during the pass are due later, so a pass always ends.
        """
        due_by = utc_text(_now())
        in_flight: set[Future] = set()
        attempted = 0
        exhausted = False
        while True:
            free = self.options.concurrency - len(in_flight)
            if not exhausted and free > 0 and not self._stop.is_set():
                claimed = self._claim(due_by, free)
                exhausted = len(claimed) < free
                attempted += len(claimed)
                in_flight |= {self._pool.submit(self.deliver, c) for c in claimed}
            if not in_flight:
                return attempted
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                if future.exception() is not None:  # recording failed (the view database is away):
                    # the delivery stays leased and is attempted again once the lease ends.
                    log.error("webhook delivery could not be recorded: %r", future.exception())

    def _claim(self, due_by: str, limit: int) -> list[Claimed]:
        now = _now()
        return claim_due(self.views, due_by=due_by, now=utc_text(now),
                         lease_until=utc_text(now + timedelta(seconds=self.options.lease_s)), limit=limit)

    # -- one attempt --------------------------------------------------------------------------
    def deliver(self, claimed: Claimed) -> AttemptRecord:
        """Send one claimed delivery and record the attempt (never raises for the receiver's sake)."""
        started = _now()
        clock = time.monotonic()
        try:
            outcome, status_code, error, excerpt = self._send(claimed)
        except Exception as unexpected:  # a bug here must not lose the delivery: it is retried
            log.exception("webhook delivery %s: unexpected error", claimed.delivery_id)
            outcome, status_code, error, excerpt = schedule.RETRY, None, f"internal error: {unexpected!r}", None
        latency_ms = int((time.monotonic() - clock) * 1000)
        next_attempt_at = None
        if outcome == schedule.RETRY:
            delay = schedule.retry_delay_s(claimed.retries_so_far, scale=self.options.backoff_scale, rng=self._rng)
            if delay is None:
                outcome = schedule.FAILED  # the retries are used up
            else:
                next_attempt_at = utc_text(_now() + timedelta(seconds=delay))
        record = AttemptRecord(
            started_at=utc_text(started), outcome=outcome, status_code=status_code, error=_clean(error),
            latency_ms=latency_ms, response_excerpt=_clean(excerpt),
        )
        record_attempt(self.views, claimed, record, now=utc_text(_now()), next_attempt_at=next_attempt_at)
        if outcome != schedule.DELIVERED:
            log.info("webhook delivery %s attempt %d to endpoint %s: %s (%s)", claimed.delivery_id,
                     claimed.attempt_no, claimed.endpoint_id, outcome, status_code or error)
        return record

    def _send(self, claimed: Claimed) -> tuple[str, int | None, str | None, str | None]:
        """(outcome, status code, error, response excerpt) of one POST."""
        try:
            target = resolve(claimed.url, allow_private=self.options.allow_private)
        except UnsafeAddress as refused:
            return schedule.FAILED, None, f"refused: {refused}", None
        except (OSError, UnicodeError, httpx.InvalidURL) as error:  # DNS failure: may be temporary
            return schedule.RETRY, None, f"could not resolve the host: {error}", None
        body = claimed.payload.encode("utf-8")
        secret = derive_secret(self.options.secret_key, UUID(claimed.endpoint_id), claimed.generation)
        headers = {
            **target.headers,
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
            "Trafi-Event-Id": claimed.event_id,
            "Trafi-Event-Type": claimed.event_type,
            "Trafi-Delivery-Id": claimed.delivery_id,
            "Trafi-Delivery-Attempt": str(claimed.attempt_no),
        }
        try:
            with self._client.stream("POST", target.url, content=body, headers=headers,
                                     extensions=target.extensions) as response:
                excerpt = self._excerpt(response)
                status_code = response.status_code
        except httpx.TimeoutException:
            return schedule.RETRY, None, f"timed out after {self.options.timeout_s:g} s", None
        except httpx.HTTPError as error:
            return schedule.RETRY, None, f"{type(error).__name__}: {error}", None
        outcome = schedule.outcome_of_status(status_code)
        error = None if outcome == schedule.DELIVERED else f"HTTP {status_code}"
        return outcome, status_code, error, excerpt

    @staticmethod
    def _excerpt(response: httpx.Response) -> str:
        received = b""
        for chunk in response.iter_bytes():
            received += chunk
            if len(received) >= _EXCERPT_BYTES:
                break
        return received[:_EXCERPT_BYTES].decode("utf-8", "replace")[:EXCERPT_CHARS]
