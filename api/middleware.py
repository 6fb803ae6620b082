"""The edge every request passes: request id, body limit, security headers, access log, latency.

One plain ASGI middleware rather than a stack of BaseHTTPMiddleware layers: each of
those costs a task and a queue per request, and this sits on the hot path.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from api.metrics import ApiMetrics
from api.problems import PROBLEM_JSON, problem_body

access_log = logging.getLogger("trafi.api.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"interest-cohort=()"),
]
# JSON only: nothing may load, run or frame. The interactive docs pages need their own policy.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOCS_CSP = (b"content-security-policy", b"default-src 'self' 'unsafe-inline' https:; img-src 'self' data: https:")
NO_STORE = (b"cache-control", b"no-store")
DOCS_PATHS = ("/docs", "/redoc")


class BodyTooLarge(Exception):
    pass


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _too_large(request_id: str, limit: int) -> tuple[dict, dict]:
    return _problem(request_id, 413, "request.too_large", f"the request body is larger than {limit} bytes", "body")


def _problem(request_id: str, status: int, code: str, reason: str, field: str) -> tuple[dict, dict]:
    """A problem answered before the application runs (so without its exception handlers)."""
    body = json.dumps(problem_body(status, code, reason, field=field, request_id=request_id)).encode()
    start = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()), *SECURITY_HEADERS, API_CSP, NO_STORE,
    ]}
    return start, {"type": "http.response.body", "body": body}


class EdgeMiddleware:
    def __init__(self, app, *, max_body_bytes: int, metrics: ApiMetrics):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given.decode("latin-1") if given and _REQUEST_ID.match(given.decode("latin-1")) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        limit = self.max_body_bytes

        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
            # No id, handle or filter contains a NUL; PostgreSQL text cannot even hold one.
            start, body = _problem(request_id, 422, "request.nul_character", "the URL must not contain NUL characters",
                                   "path")
            await send(start)
            await send(body)
            return self._log(scope, request_id, 422, started)

        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            start, body = _too_large(request_id, limit)
            await send(start)
            await send(body)
            return self._log(scope, request_id, 413, started)

        received = 0
        exceeded = False

        async def limited_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        docs = scope["path"].startswith(DOCS_PATHS)
        extra = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS, DOCS_CSP if docs else API_CSP]
        started_response = False

        async def send_with_headers(message):
            nonlocal status, started_response
            if exceeded:
                # The framework turned the cut-off into an error of its own (400); the truth is 413.
                if message["type"] == "http.response.start":
                    start, body = _too_large(request_id, limit)
                    status, started_response = 413, True
                    await send(start)
                    await send(body)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                headers = list(message.get("headers", ()))
                if not any(k == b"cache-control" for k, _ in headers):
                    headers.append(NO_STORE)
                message["headers"] = headers + extra
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            if not started_response:
                start, body = _too_large(request_id, limit)
                await send(start)
                await send(body)
            status = 413
        finally:
            self._log(scope, request_id, status, started)

    def _log(self, scope, request_id: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe_request(scope["method"], template, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            state = scope.get("state", {})
            access_log.info("request", extra={
                "request_id": request_id, "method": scope["method"], "route": template, "path": scope["path"],
                "status": status, "duration_ms": round(elapsed * 1000, 2),
                "store_id": state.get("store_id"), "actor": state.get("actor"),
            })
