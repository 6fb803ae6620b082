"""The relay's fast paths produce exactly what the plain definitions produce."""

import json
from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.envelope import envelope_body, event_id, event_id_text, json_safe

_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_json = st.recursive(
    st.none() | st.booleans() | _ints | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.uuids(), st.integers(min_value=1, max_value=10**9))
def test_event_id_text_is_the_uuid5_event_id(aggregate_id, version):
    assert event_id_text(aggregate_id, version) == str(event_id(aggregate_id, version))


@settings(max_examples=300)
@given(_json)
def test_envelope_body_is_compact_json_in_order_with_control_characters_escaped(data):
    envelope = {"event_id": "x", "position": 1, "data": data}
    assert envelope_body(envelope) == json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_survive_the_round_trip(number):
    assert json.loads(envelope_body({"data": number}))["data"] == number


def test_json_safe_fast_paths_agree_with_the_general_rules():
    moment = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)
    uid = UUID("3c1e7d2a-9b4f-5e60-8a71-2d5c0f4b6e93")
    value = {"lines": [{"sku": "A", "qty": 2, "price": Decimal("1.10"), "at": moment}], uid: (1, "b"), "n": None}
    assert json_safe(value) == {
        "lines": [{"sku": "A", "qty": 2, "price": "1.10", "at": "2026-11-21T08:00:00.000000Z"}],
        str(uid): [1, "b"], "n": None,
    }
