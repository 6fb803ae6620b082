"""The integrators' signature helper: what it accepts and every way it refuses."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from domain.webhook_signature import (
    MalformedSignature, SignatureMismatch, TimestampOutOfTolerance, WebhookSignatureError, parse_header, sign,
    signature_header, verify,
)

SECRET = "whsec_" + "ab" * 32
BODY = b'{"event_id":"e","type":"trafi.order.paid.v1","data":{"amount":4275}}'
NOW = 1_800_000_000


def test_a_valid_signature_verifies_and_returns_its_timestamp():
    header = signature_header(SECRET, NOW, BODY)
    assert header == f"t={NOW},v1={sign(SECRET, NOW, BODY)}"
    assert verify(SECRET, header, BODY, now=NOW) == NOW
    assert verify(SECRET, header, BODY.decode(), now=NOW + 299) == NOW  # str body: its UTF-8 bytes
    assert verify(SECRET.encode(), header, BODY, now=NOW - 300) == NOW  # exactly at the tolerance


def test_the_signature_is_plain_hmac_sha256_of_timestamp_dot_body():
    """What docs/webhooks.md tells integrators to compute without the helper."""
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == expected


def test_a_tampered_body_is_refused():
    header = signature_header(SECRET, NOW, BODY)
    with pytest.raises(SignatureMismatch):
        verify(SECRET, header, BODY.replace(b"4275", b"1"), now=NOW)
    with pytest.raises(SignatureMismatch):
        verify(SECRET, header, BODY + b" ", now=NOW)


def test_a_wrong_secret_is_refused():
    header = signature_header(SECRET, NOW, BODY)
    with pytest.raises(SignatureMismatch):
        verify("whsec_" + "cd" * 32, header, BODY, now=NOW)


def test_a_tampered_timestamp_is_refused():
    signature = sign(SECRET, NOW, BODY)
    with pytest.raises(SignatureMismatch):
        verify(SECRET, f"t={NOW + 1},v1={signature}", BODY, now=NOW)


@pytest.mark.parametrize("drift", [301, -301, 3600, -86_400])
def test_more_than_five_minutes_of_drift_either_way_is_refused(drift):
    header = signature_header(SECRET, NOW, BODY)
    with pytest.raises(TimestampOutOfTolerance) as refused:
        verify(SECRET, header, BODY, now=NOW + drift)
    assert "300" in str(refused.value)


def test_the_tolerance_can_be_narrowed():
    header = signature_header(SECRET, NOW, BODY)
    with pytest.raises(TimestampOutOfTolerance):
        verify(SECRET, header, BODY, now=NOW + 31, tolerance=30)


@pytest.mark.parametrize("header", [
    "", "   ", None, "garbage", "t=,v1=00", "t=abc,v1=00", f"t={NOW}", "v1=00", f"t={NOW},t={NOW},v1=00",
    f"t={NOW},v1", "t=١٢٣,v1=00",  # non-ASCII digits are not a timestamp
])
def test_malformed_headers_are_refused_as_such(header):
    with pytest.raises(MalformedSignature):
        verify(SECRET, header, BODY, now=NOW)


def test_every_refusal_is_one_error_type_with_a_code():
    for header, now in ((None, NOW), (signature_header(SECRET, NOW, BODY), NOW + 1000),
                        (signature_header("other", NOW, BODY), NOW)):
        with pytest.raises(WebhookSignatureError) as refused:
            verify(SECRET, header, BODY, now=now)
        assert refused.value.code.startswith("webhook_signature.")
        assert isinstance(refused.value, ValueError)


def test_one_of_several_signatures_may_match_and_unknown_schemes_are_ignored():
    good = sign(SECRET, NOW, BODY)
    header = f"t={NOW},v0=legacy,v1={'0' * 64},v1={good}"
    assert parse_header(header) == (NOW, ["0" * 64, good])
    assert verify(SECRET, header, BODY, now=NOW) == NOW


def test_a_non_ascii_signature_is_a_mismatch_not_a_crash():
    with pytest.raises(SignatureMismatch):
        verify(SECRET, f"t={NOW},v1=é" + "0" * 63, BODY, now=NOW)
