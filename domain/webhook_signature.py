"""Signing and verifying outbound webhooks: the helper integrators use on their side.

Every webhook request carries

    Trafi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

where `secret` is the endpoint's signing secret (`whsec_…`, shown once when the
endpoint is created or its secret rotated) and `body` the exact bytes received.
Putting the timestamp under the MAC stops a captured request from being replayed
later: `verify` refuses a timestamp more than `tolerance` seconds (default 300)
away from now, in either direction. The comparison is constant-time.

Pure functions, standard library only: copy this file into a receiver if you like.

    from domain.webhook_signature import verify, WebhookSignatureError
    try:
        verify(secret, request.headers["Trafi-Signature"], raw_body)
    except WebhookSignatureError as error:
        return 400, str(error)
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Trafi-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300  # seconds of clock drift accepted, either way


class WebhookSignatureError(ValueError):
    """The request is not a genuine, fresh Trafi webhook. `code` says why."""

    code = "webhook_signature.invalid"


class MalformedSignature(WebhookSignatureError):
    code = "webhook_signature.malformed"


class TimestampOutOfTolerance(WebhookSignatureError):
    code = "webhook_signature.timestamp_out_of_tolerance"


class SignatureMismatch(WebhookSignatureError):
    code = "webhook_signature.mismatch"


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def sign(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    message = f"{int(timestamp)}.".encode() + _bytes(body)
    return hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The value of the Trafi-Signature header for this body, signed at `timestamp`."""
    return f"t={int(timestamp)},{SCHEME}={sign(secret, timestamp, body)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header value; MalformedSignature if it is not one."""
    if not isinstance(header, str) or not header.strip():
        raise MalformedSignature("the Trafi-Signature header is missing or empty")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise MalformedSignature(f"the Trafi-Signature header has a part without '=': {part.strip()[:40]!r}")
        if key == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                raise MalformedSignature("the Trafi-Signature header needs exactly one numeric t=")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
        # Other schemes are ignored: a later version may add one beside v1.
    if timestamp is None:
        raise MalformedSignature("the Trafi-Signature header has no t= timestamp")
    if not signatures:
        raise MalformedSignature(f"the Trafi-Signature header has no {SCHEME}= signature")
    return timestamp, signatures


def verify(
    secret: str | bytes, header: str, body: str | bytes, *, now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> int:
    """Check a received webhook; return its timestamp. Raises a WebhookSignatureError subclass.

    `body` must be the raw bytes as received (parsing and re-serialising JSON changes them).
    """
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise TimestampOutOfTolerance(
            f"the signature's timestamp is {int(current - timestamp)} s away from now (at most {tolerance} s allowed)"
        )
    expected = sign(secret, timestamp, body).encode()
    # Every candidate is compared (no early exit) and in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    if not matched:
        raise SignatureMismatch("no signature matches this body and secret")
    return timestamp
