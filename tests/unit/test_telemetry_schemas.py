"""Storefront event schemas: what a batch may hold, what each event becomes, and why one is refused."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopilot.telemetry.log import EVENT_COLUMNS
from autopilot.telemetry.schemas import (
    MAX_EVENTS_PER_BATCH, MAX_PROPERTIES_BYTES, BatchRefused, check_batch, check_events, parse_batch,
)

STORE = uuid.UUID("1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f")
NOW = datetime(2026, 11, 21, 10, 15, tzinfo=timezone.utc)
NOW_US = int(NOW.timestamp() * 1_000_000)


def event(kind: str = "page_view", **fields) -> dict:
    base = {"type": kind, "event_id": f"e-{uuid.uuid4().hex[:8]}", "occurred_at": NOW.isoformat(),
            "store_id": str(STORE), "session_id": "s-1", "visitor_id": "v-1"}
    extra = {
        "page_view": {"url": "https://shop.example/mugs"},
        "product_view": {"product_id": "p-1", "variant": "blue"},
        "add_to_cart": {"sku": "MUG-1", "quantity": 2, "price": 1890, "currency": "EUR"},
        "checkout_start": {},
        "checkout_step": {"step": "shipping"},
        "checkout_complete": {"order_id": "o-1", "value": 4275, "currency": "EUR"},
    }[kind]
    return {**base, **extra, **fields}


def body(*events) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def check(*events):
    return check_batch(body(*events), store_id=STORE, received_at_us=NOW_US)


def row(checked, i: int = 0) -> dict:
    return dict(zip(EVENT_COLUMNS, checked.rows[i]))


# --- what each kind becomes ----------------------------------------------------------------------


def test_every_kind_becomes_a_row_with_its_own_columns():
    checked = check(*(event(k) for k in ("page_view", "product_view", "add_to_cart", "checkout_start",
                                          "checkout_step", "checkout_complete")))
    assert not checked.rejected
    rows = [row(checked, i) for i in range(6)]
    assert [r["kind"] for r in rows] == ["page_view", "product_view", "add_to_cart", "checkout_start",
                                         "checkout_step", "checkout_complete"]
    assert rows[0]["url"] == "https://shop.example/mugs" and rows[0]["traffic_source"] == "direct"
    assert (rows[1]["product_id"], rows[1]["variant"]) == ("p-1", "blue")
    assert (rows[2]["sku"], rows[2]["quantity"], rows[2]["price_minor"], rows[2]["currency"]) == ("MUG-1", 2, 1890, "EUR")
    assert rows[4]["checkout_step"] == "shipping"
    assert (rows[5]["order_id"], rows[5]["value_minor"], rows[5]["currency"]) == ("o-1", 4275, "EUR")
    assert all(r["occurred_at_us"] == NOW_US for r in rows)
    assert all((r["session_id"], r["visitor_id"]) == ("s-1", "v-1") for r in rows)


def test_timestamps_with_an_offset_are_stored_in_utc_microseconds():
    local = (NOW - timedelta(seconds=3.5)).astimezone(timezone(timedelta(hours=-5)))
    assert row(check(event(occurred_at=local.isoformat())))["occurred_at_us"] == NOW_US - 3_500_000


@pytest.mark.parametrize("fields, source", [
    ({"utm_source": "newsletter", "referrer": "https://www.google.com/search"}, "newsletter"),
    ({"referrer": "https://www.google.com/search?q=mugs"}, "google.com"),
    ({"referrer": "https://shop.example/cart"}, None),  # a click inside the shop says nothing of the source
    ({}, "direct"),
])
def test_traffic_source_is_utm_source_else_the_referring_site_else_direct(fields, source):
    assert row(check(event(**fields)))["traffic_source"] == source


def test_campaign_details_travel_with_the_properties():
    checked = check(event(utm_source="nl", utm_campaign="november", utm_medium="email", properties={"ab": 1}))
    assert json.loads(row(checked)["properties"]) == {"ab": 1, "utm": {"campaign": "november", "medium": "email"}}


def test_without_analytics_consent_identifiers_query_strings_and_properties_are_dropped():
    checked = check(
        event(consent={"analytics": False}, customer_id="c-9", url="https://shop.example/mugs?email=a@b.c#top",
              referrer="https://mail.example/open?uid=42", properties={"email": "a@b.c"}, utm_campaign="nov"),
        event("checkout_complete", consent={"analytics": False}, session_id=None, visitor_id=None),
    )
    assert not checked.rejected
    first, second = row(checked, 0), row(checked, 1)
    assert (first["session_id"], first["visitor_id"], first["customer_id"], first["properties"]) == (None,) * 4
    assert first["url"] == "https://shop.example/mugs" and first["referrer"] == "https://mail.example/open"
    assert first["traffic_source"] == "mail.example"
    assert (second["order_id"], second["value_minor"]) == ("o-1", 4275)  # the sale itself is no identifier


def test_with_consent_identifiers_are_required():
    checked = check(event(visitor_id=None), event(consent={"analytics": True}, session_id=None))
    assert [(r["field"], r["code"]) for r in checked.rejected] == [
        ("visitor_id", "event.identifier_required"), ("session_id", "event.identifier_required")]


# --- per-event errors ----------------------------------------------------------------------------


def test_invalid_events_are_rejected_one_by_one_and_the_valid_ones_kept():
    good = [event(), event("add_to_cart")]
    bad = [
        event(store_id=str(uuid.uuid4())),
        event(occurred_at=(NOW + timedelta(minutes=6)).isoformat()),
        event(occurred_at=(NOW - timedelta(days=7, seconds=1)).isoformat()),
        event(properties={"blob": "x" * MAX_PROPERTIES_BYTES}),
        event("add_to_cart", quantity="two"),
        {"type": "page_view"},
        {"type": "refund", "event_id": "r-1"},
        "not an event",
        event(device="fridge"),
        event(colour="blue"),
        event("checkout_step", step="review"),
        event("add_to_cart", currency="eur"),
    ]
    checked = check(good[0], *bad, good[1])
    assert [r[0] for r in checked.rows] == [good[0]["event_id"], good[1]["event_id"]]
    found = [(r["index"], r["field"], r["code"]) for r in checked.rejected]
    assert found == [
        (1, "store_id", "event.wrong_store"),
        (2, "occurred_at", "event.in_the_future"),
        (3, "occurred_at", "event.too_old"),
        (4, "properties", "event.properties_too_large"),
        (5, "quantity", "validation.int_parsing"),
        (6, "event_id", "validation.missing"),
        (7, "type", "validation.union_tag_invalid"),
        (8, "event", "validation.model_attributes_type"),
        (9, "device", "validation.literal_error"),
        (10, "colour", "validation.extra_forbidden"),
        (11, "step", "validation.literal_error"),
        (12, "currency", "validation.string_pattern_mismatch"),
    ]
    assert [r["event_id"] for r in checked.rejected][:4] == [e["event_id"] for e in bad[:4]]
    assert checked.rejected[6]["event_id"] == "r-1" and checked.rejected[7]["event_id"] is None
    missing = {e["field"] for e in checked.rejected[5]["errors"]}
    assert {"event_id", "occurred_at", "store_id", "url"} <= missing  # every error, not just the first


def test_properties_at_the_limit_are_kept():
    # {"b":"…"} is 8 bytes of syntax around the string
    assert not check(event(properties={"b": "x" * (MAX_PROPERTIES_BYTES - 8)})).rejected
    assert check(event(properties={"b": "x" * (MAX_PROPERTIES_BYTES - 7)})).rejected


@pytest.mark.parametrize("text", ["nul\x00here", "lone \ud800 surrogate"])
def test_text_no_database_can_store_is_rejected_with_a_printable_reason(text):
    raw = json.dumps({"events": [event(url=f"https://x/{text}"), event(properties={text: 1}), event()]}).encode()
    checked = check_batch(raw, store_id=STORE, received_at_us=NOW_US)
    assert len(checked.rows) == 1
    assert [r["code"] for r in checked.rejected] == ["event.invalid_text", "event.invalid_text"]
    json.dumps(checked.rejected, ensure_ascii=False).encode()  # answerable: no lone surrogate echoed back


# --- the batch -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, status, code", [
    (b"{not json", 400, "events.malformed_json"),
    (b'{"events": [NaN]}', 400, "events.malformed_json"),
    (b"\xff\xfe", 400, "events.malformed_json"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "events.malformed_json"),
    (b"[]", 422, "events.not_a_batch"),
    (b'{"events": {}}', 422, "events.not_a_batch"),
    (b'{"events": [], "sent_at": 1}', 422, "events.unknown_field"),
    (json.dumps({"events": [{}] * (MAX_EVENTS_PER_BATCH + 1)}).encode(), 422, "events.batch_too_large"),
])
def test_a_body_that_is_no_batch_is_refused_whole(raw, status, code):
    with pytest.raises(BatchRefused) as refused:
        check_batch(raw, store_id=STORE, received_at_us=NOW_US)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_an_empty_batch_is_fine():
    checked = check()
    assert checked.rows == [] and checked.rejected == []


# --- properties: random input --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
junk_events = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(["type", "event_id", "occurred_at", "store_id", "session_id", "visitor_id",
                                     "url", "sku", "quantity", "price", "currency", "step", "consent", "properties",
                                     "order_id", "value", "device", "country", "referrer", "utm_source"]),
                    json_values, max_size=12),
    st.builds(lambda kind, changes: {**event(kind), **changes},
              st.sampled_from(["page_view", "product_view", "add_to_cart", "checkout_start", "checkout_step",
                               "checkout_complete"]),
              st.dictionaries(st.sampled_from(["occurred_at", "quantity", "price", "url", "consent", "properties",
                                               "session_id", "step", "currency"]), json_values, max_size=3)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(junk_events, max_size=8))
def test_any_batch_gives_each_event_a_row_or_a_reason_and_never_an_error(events):
    raw = json.dumps({"events": events}).encode()
    checked = check_batch(raw, store_id=STORE, received_at_us=NOW_US)
    assert len(checked.rows) + len(checked.rejected) == len(events)
    assert sorted(r["index"] for r in checked.rejected) == [r["index"] for r in checked.rejected]
    for stored in checked.rows:
        assert len(stored) == len(EVENT_COLUMNS)
        for value in stored:
            if isinstance(value, str):
                assert "\x00" not in value
                value.encode()
    json.dumps(checked.rejected, ensure_ascii=False).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(junk_events, max_size=6))
def test_the_fast_path_and_the_thorough_one_agree(events):
    raw = json.dumps({"events": events}).encode()
    fast = check_batch(raw, store_id=STORE, received_at_us=NOW_US)
    thorough = check_events(parse_batch(raw), store_id=STORE, received_at_us=NOW_US)
    assert fast.rows == thorough.rows
    assert [(r["index"], r["code"]) for r in fast.rejected] == [(r["index"], r["code"]) for r in thorough.rejected]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_a_refused_batch_or_a_checked_one(raw):
    try:
        checked = check_batch(raw, store_id=STORE, received_at_us=NOW_US)
    except BatchRefused as refused:
        assert refused.status in (400, 422)
    else:
        assert len(checked.rows) + len(checked.rejected) == len(json.loads(raw)["events"])


def test_the_schema_knows_exactly_the_contract_kinds():
    from autopilot.telemetry.columns import CLIENT_KINDS, KINDS, SERVER_KINDS
    from autopilot.telemetry.schemas import EventBatch

    branches = EventBatch.model_json_schema()["$defs"]
    assert {b["properties"]["type"]["const"] for b in branches.values() if "type" in b.get("properties", {})} \
        == set(CLIENT_KINDS) == set(KINDS) - set(SERVER_KINDS)


@pytest.mark.parametrize("escape", ["", "\\u00e9"])
def test_deeply_nested_properties_get_an_answer_not_an_error(escape):
    deep = '{"a":' * 950 + "1" + "}" * 950
    raw = body(event(url=f"https://shop.example/{escape}"))[:-3] + f',"properties":{deep}}}]}}'.encode()
    try:
        checked = check_batch(raw, store_id=STORE, received_at_us=NOW_US)
    except BatchRefused as refused:  # deeper than the parser goes: not JSON we can read
        assert refused.status == 400
    else:
        assert [r["code"] for r in checked.rejected] == ["event.invalid_properties"] and not checked.rows
