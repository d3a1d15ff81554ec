"""Hostile webhook deliveries: strict header parsing, typed rejections only, fuzzed.

Anyone on the internet can send a delivery, so every malformed one must end in a
``WebhookVerificationError`` or an ``InvalidInput``, never a raw ``ValueError``,
``OverflowError``, ``RecursionError`` or ``TypeError``, and the handler must not run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import (
    ConfigurationError,
    InvalidInput,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    WebhookVerificationError,
)
from pytest_reliability.idempotency import (
    IdempotencyEngine,
    Outcome,
    WebhookReceiver,
    sign_webhook,
    verify_webhook,
)
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.idempotency
SECRET = "whsec_hostile"
CLOCK = ManualClock()
NOW = int(CLOCK.time())
TYPED = (WebhookVerificationError, InvalidInput)


def _mac(t_text: str, body: bytes, secret: str = SECRET) -> str:
    """An HMAC over exactly the text sent as ``t``, as a sender holding the secret makes it."""
    signed = t_text.encode("utf-8") + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _never(event: Any, attempt: Any) -> Any:
    raise AssertionError("the handler must not run for a refused delivery")


def _receiver(**options: Any) -> WebhookReceiver:
    return WebhookReceiver(IdempotencyEngine.from_url("memory://", clock=CLOCK), SECRET, **options)


def test_non_ascii_digit_in_an_unsigned_timestamp_is_a_signature_error() -> None:
    with pytest.raises(WebhookSignatureInvalid, match="non-ASCII"):
        verify_webhook(SECRET, b"{}", "t=\u00b2,v1=" + "0" * 64, clock=CLOCK)


@pytest.mark.parametrize(
    "digits",
    [
        "".join(chr(0x0660 + int(d)) for d in str(NOW)),  # Arabic-Indic
        "".join(chr(0xFF10 + int(d)) for d in str(NOW)),  # fullwidth
        "".join(chr(0x0966 + int(d)) for d in str(NOW)),  # Devanagari
    ],
    ids=["arabic-indic", "fullwidth", "devanagari"],
)
def test_timestamps_in_other_scripts_are_refused_even_when_signed(digits: str) -> None:
    body = b'{"id":"evt_1"}'
    for signed_text in (str(NOW), digits):
        header = f"t={digits},v1={_mac(signed_text, body)}"
        with pytest.raises(WebhookSignatureInvalid, match="non-ASCII"):
            verify_webhook(SECRET, body, header, clock=CLOCK)


def test_huge_signed_timestamp_is_refused_before_any_arithmetic() -> None:
    body = b'{"id":"evt_1"}'
    t = "9" * 400
    with pytest.raises(WebhookSignatureInvalid, match="1 to 12"):
        verify_webhook(SECRET, body, f"t={t},v1={_mac(t, body)}", clock=CLOCK)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"t=1,v1=00", "must be a str, not bytes"),
        (42, "must be a str, not int"),
        ("t=1,v1=" + "\u00e9" * 64, "non-ASCII"),
        ("t=1,v1=" + "0" * 63, "64 lowercase hex"),
        ("t=1," + ",".join(["v1=" + "0" * 64] * 17), "at most 16"),
        ("t=-5,v1=" + "0" * 64, "ASCII digits"),
        ("t= 5,v1=" + "0" * 64, "ASCII digits"),
    ],
)
def test_malformed_headers_name_the_problem(header: Any, match: str) -> None:
    with pytest.raises(WebhookSignatureInvalid, match=match):
        verify_webhook(SECRET, b"{}", header, clock=CLOCK)


@pytest.mark.parametrize(
    "body", ['{"id":"evt"}', None, 12, ["x"]], ids=["str", "none", "int", "list"]
)
def test_a_body_that_is_not_bytes_is_a_payload_error(body: Any) -> None:
    header = sign_webhook(SECRET, b'{"id":"evt"}', NOW)
    with pytest.raises(WebhookPayloadInvalid, match="must be the raw bytes"):
        verify_webhook(SECRET, body, header, clock=CLOCK)
    with pytest.raises(WebhookPayloadInvalid):
        _receiver().receive(body, header, _never)


def _signed(body: bytes) -> str:
    return sign_webhook(SECRET, body, NOW)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"id":"e","n":' + b"9" * 5000 + b"}", "not JSON"),
        (b'{"id":"e","x":NaN}', "not JSON"),
        (b'{"id":"e","x":-Infinity}', "not JSON"),
        (b'{"id":"\xff\xfe"}', "not JSON"),
        (b'{"type":"no id"}', "no string 'id'"),
    ],
    ids=["deep", "huge-int", "nan", "infinity", "bad-utf8", "no-id"],
)
def test_signed_but_malformed_bodies_are_payload_errors(body: bytes, match: str) -> None:
    with tenant_scope("acme"), pytest.raises(WebhookPayloadInvalid, match=match):
        _receiver().receive(body, _signed(body), _never)


def test_oversized_body_is_refused_before_the_hmac() -> None:
    body = b'{"id":"e","pad":"' + b"x" * 2000 + b'"}'
    with tenant_scope("acme"), pytest.raises(WebhookPayloadInvalid, match="limit is 1000"):
        _receiver(max_body_bytes=1000).receive(body, _signed(body), _never)


def test_signed_body_with_a_lone_surrogate_is_bad_input_and_nothing_runs() -> None:
    body = b'{"id":"evt_s","name":"\\ud800"}'
    with tenant_scope("acme"), pytest.raises(InvalidInput, match="surrogate"):
        _receiver().receive(body, _signed(body), _never)


def test_signature_is_checked_before_the_body_is_parsed() -> None:
    deep = b"[" * 100_000
    with tenant_scope("acme"), pytest.raises(WebhookSignatureInvalid, match="does not match"):
        _receiver().receive(deep, sign_webhook("wrong", deep, NOW), _never)


@pytest.mark.parametrize("tolerance", [float("inf"), float("nan"), -1, 10**30, True, "300"])
def test_unbounded_tolerances_are_a_configuration_error(tolerance: Any) -> None:
    with pytest.raises(ConfigurationError, match="tolerance"):
        _receiver(tolerance=tolerance)
    with pytest.raises(ConfigurationError, match="tolerance"):
        verify_webhook(SECRET, b"{}", _signed(b"{}"), clock=CLOCK, tolerance=tolerance)


def test_leading_zeros_are_signed_as_sent() -> None:
    body = b'{"id":"evt_z"}'
    t = f"00{NOW}"
    assert verify_webhook(SECRET, body, f"t={t},v1={_mac(t, body)}", clock=CLOCK) == NOW


# -- fuzzing ---------------------------------------------------------------------------------

digits_any_script = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=20)
near_valid_headers = st.builds(
    lambda t, sigs, extra: ",".join([f"t={t}", *(f"v1={s}" for s in sigs), *extra]),
    st.one_of(digits_any_script, st.text(max_size=20), st.just(str(NOW))),
    st.lists(st.one_of(st.text(max_size=70), st.from_regex(r"[0-9a-f]{64}", fullmatch=True))),
    st.lists(st.text(max_size=10), max_size=3),
)
headers = st.one_of(
    st.none(), st.text(), st.binary(), st.integers(), near_valid_headers, st.text(min_size=4000)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(),
    st.text(),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda i, v: json.dumps({"id": i, "data": v}).encode(), st.text(), json_values),
    st.integers(1, 3000).map(lambda n: b'{"id":"e","x":' + b"[" * n + b"]" * n + b"}"),
)


@settings(max_examples=300, deadline=None)
@given(secrets=st.one_of(st.text(min_size=1), st.binary(min_size=1)), header=headers, body=bodies)
def test_fuzzed_verify_raises_only_typed_rejections(secrets: Any, header: Any, body: Any) -> None:
    try:
        verify_webhook(secrets, body, header, clock=CLOCK)
    except TYPED:
        return


@settings(max_examples=300, deadline=None)
@given(
    t=st.one_of(st.just(str(NOW)), digits_any_script, st.integers(0, 10**30).map(str)),
    body=bodies,
    forged=st.booleans(),
)
def test_fuzzed_signed_deliveries_succeed_or_are_refused_with_a_typed_error(
    t: str, body: Any, forged: bool
) -> None:
    """Deliveries signed with the real secret over whatever ``t`` says reach the body parser."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    header = f"t={t},v1={_mac(t, raw, 'forged' if forged else SECRET)}"
    with tenant_scope("acme"):
        try:
            outcome = _receiver().receive(body, header, lambda event, attempt: {"ok": True})
        except TYPED:
            return
    assert isinstance(outcome, Outcome)
    assert outcome.response == {"ok": True}
    assert not forged
    assert t == str(NOW)
