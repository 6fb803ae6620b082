"""A local HTTP server that answers the Stripe SDK like Stripe does, and records every request.

Stripe's servers cannot run here, so the real `stripe` SDK is pointed at this one
(`base_addresses={"api": server.url}`); tests assert on what the SDK sent — amounts,
currencies, metadata, idempotency keys — and get Stripe-shaped answers back. Like
Stripe, a repeated Idempotency-Key returns the first answer.

Test payment methods behave as Stripe's do: `pm_card_visa` succeeds,
`pm_card_chargeDeclined` is declined (402 card_error carrying the intent),
`pm_card_threeDSecure2Required` needs 3-D Secure; `authenticate(intent_id)` plays the
buyer completing the challenge. `refunds_down = True` makes refunds answer 503.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    params: dict
    idempotency_key: str | None


def _nest(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (`metadata[k]=v`, `automatic_payment_methods[enabled]=true`) → nested dict."""
    out: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


@dataclass
class FakeStripe:
    requests: list[Recorded] = field(default_factory=list)
    intents: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    refunds_down: bool = False
    _answers: dict[str, tuple[int, dict]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    # --- what a test can do ---------------------------------------------------------------
    def calls(self, method: str, prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def authenticate(self, intent_id: str, *, passed: bool = True) -> None:
        intent = self.intents[intent_id]
        if passed:
            intent.update(status="succeeded", amount_received=intent["amount"], next_action=None)
        else:
            intent.update(status="requires_payment_method", next_action=None,
                          last_payment_error={"message": "authentication failed", "code": "authentication_required"})

    # --- Stripe's behaviour ---------------------------------------------------------------
    def handle(self, method: str, path: str, params: dict, key: str | None) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(Recorded(method, path, params, key))
            if key and method == "POST" and key in self._answers:
                return self._answers[key]
            answer = self._route(method, path, params)
            if key and method == "POST" and answer[0] < 500:
                self._answers[key] = answer
            return answer

    def _route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2:
                return self._create_intent(params)
            intent = self.intents.get(parts[2])
            if intent is None:
                return 404, _error("invalid_request_error", "No such payment_intent", "intent")
            if method == "GET" and len(parts) == 3:
                return 200, intent
            if parts[3:] == ["confirm"]:
                return self._confirm(intent, params.get("payment_method"))
            if parts[3:] == ["cancel"]:
                intent.update(status="canceled")
                return 200, intent
        if parts[:2] == ["v1", "refunds"] and method == "POST":
            return self._refund(params)
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path})")

    def _create_intent(self, params: dict) -> tuple[int, dict]:
        intent_id = f"pi_fake{next(self._ids):06d}"
        intent = {
            "id": intent_id, "object": "payment_intent", "amount": int(params["amount"]),
            "currency": params["currency"], "metadata": params.get("metadata", {}), "status": "requires_payment_method",
            "amount_received": 0, "client_secret": f"{intent_id}_secret_fake", "next_action": None,
            "last_payment_error": None, "created": 1_763_700_000,
        }
        self.intents[intent_id] = intent
        if params.get("confirm") == "true" and params.get("payment_method"):
            return self._confirm(intent, params["payment_method"])
        return 200, intent

    def _confirm(self, intent: dict, payment_method: str | None) -> tuple[int, dict]:
        if payment_method == "pm_card_visa":
            intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
        elif payment_method == "pm_card_chargeDeclined":
            error = {"message": "Your card was declined.", "code": "card_declined"}
            intent.update(status="requires_payment_method", last_payment_error=error)
            return 402, {"error": {"type": "card_error", **error, "payment_intent": intent}}
        elif payment_method == "pm_card_threeDSecure2Required":
            intent.update(status="requires_action", next_action={
                "type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.stripe.com/3ds/fake"}})
        return 200, intent

    def _refund(self, params: dict) -> tuple[int, dict]:
        if self.refunds_down:
            return 503, _error("api_error", "Stripe is having a moment")
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None:
            return 404, _error("invalid_request_error", "No such payment_intent", "payment_intent")
        amount = int(params.get("amount", intent["amount_received"]))
        already = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"])
        if amount > intent["amount_received"] - already:
            return 400, _error("invalid_request_error", "Refund amount is greater than unrefunded amount", "amount")
        refund_id = f"re_fake{next(self._ids):06d}"
        self.refunds[refund_id] = {"id": refund_id, "object": "refund", "amount": amount, "status": "succeeded",
                                   "payment_intent": intent["id"], "metadata": params.get("metadata", {})}
        return 200, self.refunds[refund_id]


def _error(kind: str, message: str, param: str | None = None) -> dict:
    return {"error": {"type": kind, "message": message, "param": param}}


def start_fake_stripe() -> tuple[FakeStripe, ThreadingHTTPServer]:
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = _nest(parse_qsl(body or url.query, keep_blank_values=True))
            status, answer = fake.handle(self.command, url.path, params, self.headers.get("Idempotency-Key"))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
