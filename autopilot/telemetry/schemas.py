"""Storefront events as POST /v1/events accepts them (AUTOPILOT.md §1), and their stored rows.

A request carries `{"events": [...]}`. The batch as a whole is refused only when it is not JSON
(400) or not a batch (422: no `events` list, more than MAX_EVENTS_PER_BATCH); every other
problem belongs to one event, which is rejected with its reason while the rest are accepted.

Everything here is pure: bytes and the caller's store and clock in, rows and rejections out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from autopilot.telemetry.columns import CHECKOUT_STEPS, CLIENT_KINDS
from autopilot.telemetry.log import EVENT_COLUMNS

MAX_EVENTS_PER_BATCH = 500
MAX_PROPERTIES_BYTES = 8 * 1024  # `properties` as compact UTF-8 JSON
MAX_AHEAD = timedelta(minutes=5)  # browsers' clocks run a little fast; more than this is a broken clock
MAX_AGE = timedelta(days=7)  # older events would land in days the warehouse has already analysed

_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_AHEAD_US = MAX_AHEAD // _US
MAX_AGE_US = MAX_AGE // _US

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Minor = Annotated[int, Field(ge=0, le=10**12, description="Money in integer minor units (cents)")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    analytics: bool = Field(True, description="false: stored without identifiers, query strings or properties")


class _Event(BaseModel):
    """Fields every event has. `session_id` and `visitor_id` are required with analytics consent."""

    model_config = ConfigDict(extra="forbid")
    event_id: EventId = Field(description="Client-generated and unique per store; a retry sends the same id")
    occurred_at: AwareDatetime = Field(description="When it happened in the browser, ISO 8601 with offset")
    store_id: UUID = Field(description="Must be the store of the API key")
    session_id: Identifier | None = None
    visitor_id: Identifier | None = None
    customer_id: Identifier | None = None
    device: Literal["desktop", "mobile", "tablet"] | None = None
    country: Country | None = Field(None, description="ISO 3166-1 alpha-2")
    url: Url | None = Field(None, description="The page the event happened on")
    referrer: Url | None = None
    consent: Consent | None = Field(None, description="Absent: analytics consent is given")
    properties: dict[str, Any] | None = Field(None, description=f"Free JSON object, at most {MAX_PROPERTIES_BYTES} bytes")


class PageView(_Event):
    type: Literal["page_view"]
    url: Url
    utm_source: Label | None = None
    utm_medium: Label | None = None
    utm_campaign: Label | None = None
    utm_term: Label | None = None
    utm_content: Label | None = None


class ProductView(_Event):
    type: Literal["product_view"]
    product_id: Identifier
    variant: Identifier | None = None
    sku: Identifier | None = None


class AddToCart(_Event):
    type: Literal["add_to_cart"]
    sku: Identifier
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    price: Minor = Field(description="Unit price in minor units")
    currency: Currency
    product_id: Identifier | None = None
    variant: Identifier | None = None


class CheckoutStart(_Event):
    type: Literal["checkout_start"]


class CheckoutStep(_Event):
    type: Literal["checkout_step"]
    step: Literal[CHECKOUT_STEPS]  # type: ignore[valid-type]


class CheckoutComplete(_Event):
    type: Literal["checkout_complete"]
    order_id: Identifier
    value: Minor = Field(description="Order value in minor units")
    currency: Currency


StorefrontEvent = Annotated[
    Union[PageView, ProductView, AddToCart, CheckoutStart, CheckoutStep, CheckoutComplete],
    Field(discriminator="type"),
]
EVENT = TypeAdapter(StorefrontEvent)

EXAMPLE_STORE = "1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f"
BATCH_EXAMPLE = {"events": [
    {"type": "page_view", "event_id": "01JD3K7V1X0Q8Z6Y5W4V3U2T1S", "occurred_at": "2026-11-21T10:15:00.120Z",
     "store_id": EXAMPLE_STORE, "session_id": "s-8f2c", "visitor_id": "v-41aa", "device": "mobile", "country": "DE",
     "url": "https://shop.example/mugs?utm_source=newsletter", "referrer": "https://mail.example/",
     "utm_source": "newsletter", "utm_campaign": "november"},
    {"type": "add_to_cart", "event_id": "01JD3K7V1X0Q8Z6Y5W4V3U2T1T", "occurred_at": "2026-11-21T10:15:09.871Z",
     "store_id": EXAMPLE_STORE, "session_id": "s-8f2c", "visitor_id": "v-41aa", "sku": "MUG-STONE-BLUE",
     "quantity": 2, "price": 1890, "currency": "EUR", "consent": {"analytics": True}},
]}


class EventBatch(BaseModel):
    """The request body of POST /v1/events: its documentation, and the fast path of `check_batch`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [BATCH_EXAMPLE]})
    events: list[StorefrontEvent] = Field(max_length=MAX_EVENTS_PER_BATCH)


# --- the batch ---------------------------------------------------------------------------------------


class BatchRefused(Exception):
    """The request as a whole is not a batch of events; nothing of it is stored."""

    def __init__(self, status: int, code: str, reason: str, field: str | None = None):
        super().__init__(reason)
        self.status, self.code, self.reason, self.field = status, code, reason, field


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_batch(body: bytes) -> list[Any]:
    """The raw events of a request body, or BatchRefused (400 not JSON, 422 not a batch)."""
    try:
        document = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BatchRefused(400, "events.malformed_json", f"the body is not valid JSON: {_short(error)}", "body") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BatchRefused(422, "events.not_a_batch", 'the body must be an object {"events": [ … ]}', "events")
    unknown = sorted(set(document) - {"events"})
    if unknown:
        raise BatchRefused(422, "events.unknown_field", f"unknown field {unknown[0]!r}; the body holds only `events`",
                           unknown[0])
    events = document["events"]
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise BatchRefused(422, "events.batch_too_large",
                           f"{len(events)} events in one batch; send at most {MAX_EVENTS_PER_BATCH}", "events")
    return events


def _short(error: Exception) -> str:
    return str(error)[:200]


# --- one event ---------------------------------------------------------------------------------------


@dataclass
class CheckedBatch:
    rows: list[tuple] = field(default_factory=list)  # EVENT_COLUMNS tuples for TelemetryLog.append, input order
    rejected: list[dict[str, Any]] = field(default_factory=list)


class _Rejected(Exception):
    def __init__(self, field: str, code: str, reason: str):
        super().__init__(reason)
        self.error = {"field": field, "code": code, "reason": reason}


def check_batch(body: bytes, *, store_id: UUID, received_at_us: int) -> CheckedBatch:
    """The rows and rejections of a request body; BatchRefused when it is not a batch at all.

    Fast path: a body whose events are all well-formed is parsed and validated in one pass of
    pydantic-core. Anything else takes the thorough path, event by event, which alone decides
    what is wrong. The fast path is skipped when the body has a `\\u` escape (a string could hold
    a NUL or a lone surrogate) or NaN/Infinity (which the thorough path's parser refuses).
    """
    if b"\\u" not in body and b"NaN" not in body and b"Infinity" not in body:
        try:
            events = EventBatch.model_validate_json(body).events
        except ValidationError:
            pass
        else:
            return _checked_models(events, store_id=store_id, received_at_us=received_at_us)
    return check_events(parse_batch(body), store_id=store_id, received_at_us=received_at_us,
                        unusual_text=b"\\u" in body)


def _checked_models(events: list[_Event], *, store_id: UUID, received_at_us: int) -> CheckedBatch:
    checked = CheckedBatch()
    for index, event in enumerate(events):
        try:
            checked.rows.append(to_row(event, store_id=store_id, received_at_us=received_at_us))
        except _Rejected as rejected:
            checked.rejected.append(_rejection(index, {"event_id": event.event_id}, [rejected.error]))
    return checked


def check_events(raw_events: list[Any], *, store_id: UUID, received_at_us: int, unusual_text: bool = True) -> CheckedBatch:
    """Validate each event on its own: its row if it is fine, else why not (index, event_id, errors).

    `unusual_text=False` says the body had no `\\u` escape, so no string can hold a NUL or a lone
    surrogate (neither can be stored as text) and the walk that looks for them is skipped.
    """
    checked = CheckedBatch()
    for index, raw in enumerate(raw_events):
        try:
            if unusual_text:
                _check_text(raw)
            event = EVENT.validate_python(raw)
            checked.rows.append(to_row(event, store_id=store_id, received_at_us=received_at_us))
        except ValidationError as error:
            checked.rejected.append(_rejection(index, raw, [_field_error(e, raw) for e in error.errors()]))
        except _Rejected as rejected:
            checked.rejected.append(_rejection(index, raw, [rejected.error]))
    return checked


def to_row(event: _Event, *, store_id: UUID, received_at_us: int) -> tuple:
    """The stored row of a valid event (EVENT_COLUMNS), after the checks that need the caller's store and clock."""
    fields = event.__dict__  # (a model's missing attribute is a slow AttributeError; a dict lookup is not)
    if fields["store_id"] != store_id:
        raise _Rejected("store_id", "event.wrong_store", "the event names another store than the API key's")
    occurred_at_us = (fields["occurred_at"] - _EPOCH) // _US
    if occurred_at_us > received_at_us + MAX_AHEAD_US:
        raise _Rejected("occurred_at", "event.in_the_future",
                        f"occurred_at is more than {MAX_AHEAD} ahead of the server's clock")
    if occurred_at_us < received_at_us - MAX_AGE_US:
        raise _Rejected("occurred_at", "event.too_old", f"occurred_at is more than {MAX_AGE.days} days ago")
    consent = fields["consent"]
    consented = consent is None or consent.analytics
    if consented and (fields["session_id"] is None or fields["visitor_id"] is None):
        missing = "session_id" if fields["session_id"] is None else "visitor_id"
        raise _Rejected(missing, "event.identifier_required",
                        f"{missing} is required unless consent.analytics is false")
    get = fields.get
    return (  # EVENT_COLUMNS order
        fields["event_id"],
        fields["type"],
        occurred_at_us,
        fields["session_id"] if consented else None,
        fields["visitor_id"] if consented else None,
        fields["customer_id"] if consented else None,
        fields["device"],
        fields["country"],
        traffic_source(fields),
        fields["url"] if consented else _without_query(fields["url"]),
        fields["referrer"] if consented else _without_query(fields["referrer"]),
        get("product_id"),
        get("variant"),
        get("sku"),
        get("quantity"),
        get("price"),
        get("currency"),
        get("order_id"),
        get("value"),
        get("step"),
        _properties_text(fields) if consented else None,
    )


_ROW_LAYOUT = ("event_id", "kind", "occurred_at_us", "session_id", "visitor_id", "customer_id", "device", "country",
               "traffic_source", "url", "referrer", "product_id", "variant", "sku", "quantity", "price_minor",
               "currency", "order_id", "value_minor", "checkout_step", "properties")
assert _ROW_LAYOUT == EVENT_COLUMNS  # noqa: S101 — to_row's tuple is what TelemetryLog.append takes


UTM_DETAILS = ("utm_medium", "utm_campaign", "utm_term", "utm_content")


def _properties_text(fields: dict[str, Any]) -> str | None:
    properties = fields["properties"]
    utm = {name[4:]: fields[name] for name in UTM_DETAILS if fields.get(name) is not None}
    if utm:  # the campaign beyond its source has no column of its own; it travels with the properties
        properties = {**(properties or {}), "utm": utm}
    if properties is None:
        return None
    try:
        # pydantic-core's serialiser: several times json.dumps' speed. A number too large for a float
        # (1e400) parses as infinity: stored as null, so the text stays JSON. A lone surrogate fails.
        text = to_json(properties, inf_nan_mode="null")
    except (ValueError, RecursionError, PydanticSerializationError):
        raise _Rejected("properties", "event.invalid_properties",
                        "properties must be plain JSON, nested less than 250 levels deep") from None
    if len(text) > MAX_PROPERTIES_BYTES:
        raise _Rejected("properties", "event.properties_too_large",
                        f"properties take {len(text)} bytes as JSON; at most {MAX_PROPERTIES_BYTES}")
    return text.decode()


def traffic_source(fields: dict[str, Any]) -> str | None:
    """utm_source; else the referrer's host when it is another site; else "direct" for a page view
    without a referrer. A click inside the shop (same host) says nothing about where the visit came from."""
    source = fields.get("utm_source")
    if source:
        return source
    referrer = fields["referrer"]
    referrer_host = _host(referrer)
    if referrer_host:
        return referrer_host if referrer_host != _host(fields["url"]) else None
    if referrer is None and fields["type"] == "page_view":
        return "direct"
    return None


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def _without_query(url: str | None) -> str | None:
    # Query strings and fragments carry click ids, e-mail addresses, search terms: identifiers.
    if url is None:
        return None
    return url.split("#", 1)[0].split("?", 1)[0]


def _check_text(event: Any) -> None:
    """Reject strings no database can store as text: NUL characters and lone surrogates.
    (A loop, not recursion: JSON nests as deep as the parser allowed, which is deeper than the stack left.)"""
    todo: list[tuple[Any, str]] = [(event, "")]
    while todo:
        value, path = todo.pop()
        if isinstance(value, str):
            if "\x00" in value or not _encodable(value):
                raise _Rejected(path or "event", "event.invalid_text", "text must be valid Unicode without NUL characters")
        elif isinstance(value, dict):
            for key, item in value.items():
                todo.append((key, path))
                todo.append((item, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, list):
            todo.extend((item, f"{path}.{i}" if path else str(i)) for i, item in enumerate(value))


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


# --- rejections --------------------------------------------------------------------------------------


def _rejection(index: int, raw: Any, errors: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [{key: _printable(value) for key, value in error.items()} for error in errors]
    first = errors[0]
    return {"index": index, "event_id": _readable_id(raw), "field": first["field"], "code": first["code"],
            "reason": first["reason"], "errors": errors}


def _readable_id(raw: Any) -> str | None:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    return _printable(event_id[:128]) if isinstance(event_id, str) else None


def _printable(text: str) -> str:
    """Text echoed from the input, safe to encode: a lone surrogate becomes its escape, not a 500."""
    return text[:300].encode("utf-8", "backslashreplace").decode()


def _field_error(error: dict, raw: Any) -> dict[str, Any]:
    location = list(error.get("loc", ()))
    if location and isinstance(raw, dict) and location[0] == raw.get("type") and location[0] in CLIENT_KINDS:
        location = location[1:]  # pydantic names the union member first; the client never wrote it
    kind = error.get("type", "invalid")
    if kind in ("union_tag_not_found", "union_tag_invalid", "model_attributes_type"):
        location = location or (["type"] if kind != "model_attributes_type" else [])
    reason = error.get("msg", "invalid")
    if kind == "union_tag_invalid":
        reason = f"type must be one of {', '.join(CLIENT_KINDS)}"
    elif kind == "model_attributes_type":
        reason = "an event must be a JSON object"
    return {"field": ".".join(str(part) for part in location) or "event", "code": f"validation.{kind}", "reason": reason}
