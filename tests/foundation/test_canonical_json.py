"""One canonical JSON, its bytes pinned: old audit logs verify, old idempotency keys still match.

The digests below were computed with the encoders that shipped before the encoding moved into
``pytest_reliability._canonical_json``. If one of these tests fails, the change makes every
stored audit chain fail verification and every stored idempotency fingerprint mismatch its
retries: do not update the digests, fix the change.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_reliability import _canonical_json as cj
from pytest_reliability.audit import canonical_json as audit_canonical_json
from pytest_reliability.audit._chain import event_hash
from pytest_reliability.errors import PayloadNotSerializable
from pytest_reliability.idempotency import fingerprint
from pytest_reliability.idempotency._model import canonical_bytes

DETAILS: dict[str, Any] = {
    "zeta": [1, 2.5, -0.0, 1e100, True, None],
    "alpha": {"nested": "caf\u00e9 \u2603 \U0001f600", "quote": '"\\/\n\t\u2028\x01'},
    "count": 12345678901234567890,
    "\u00c9moji": "\u65e5\u672c",
}
DETAILS_JSON = (
    '{"alpha":{"nested":"caf\u00e9 \u2603 \U0001f600","quote":"\\"\\\\/\\n\\t\u2028\\u0001"},'
    '"count":12345678901234567890,"zeta":[1,2.5,-0.0,1e+100,true,null],'
    '"\u00c9moji":"\u65e5\u672c"}'
)
EVENT_ROW = (
    "tenant-a",
    7,
    "audit-event-0001",
    1767225600123456,
    "kill_switch.engaged",
    "ops:alice",
    "GLOBAL_WRITE",
    "allowed",
    DETAILS_JSON,
    "corr-42",
    "ab" * 32,
)
EVENT_HASH = "a0004e79f4a7c2aecfc4cb16e919a324ba6d0dfb041927c893221ebf13ecdfae"
EVENT_HASH_NO_CORRELATION = "e4545aeef3f47f3121fda7152170c51a3e5c56160f229ad8b06e84e77e3103b9"

PAYLOAD: dict[str, Any] = {
    "amount": 1999,
    "currency": "eur",
    "items": [
        {"sku": "A-1", "qty": 2, "price": 9.995},
        {"sku": "B\u00e9", "qty": 1, "price": 0.01},
    ],
    "meta": {"note": 'caf\u00e9 \u2603 \U0001f600 "q" \\ \n', "flags": [True, False, None]},
    "big": -12345678901234567890,
    "exp": 1e-07,
}
PAYLOAD_FINGERPRINT = "9f1816283099f345222bb8261b5d019b2172dbc5e46fdf91322a5a7d40f9abdb"
RESPONSE_DIGEST = "bcc1c428d614ffb87e9da3f2d7d24c30d6aaa62d4e2664fd7223677e9ce94c3a"


def test_audit_details_encoding_is_pinned() -> None:
    assert audit_canonical_json(DETAILS) == DETAILS_JSON
    assert cj.canonical_json(DETAILS) == DETAILS_JSON


def test_audit_event_hash_is_pinned() -> None:
    assert event_hash(EVENT_ROW) == EVENT_HASH
    no_correlation = (*EVENT_ROW[:9], None, EVENT_ROW[10])
    assert event_hash(no_correlation) == EVENT_HASH_NO_CORRELATION


def test_idempotency_fingerprint_is_pinned() -> None:
    assert fingerprint(PAYLOAD) == PAYLOAD_FINGERPRINT
    assert hashlib.sha256(cj.canonical_bytes(PAYLOAD)).hexdigest() == PAYLOAD_FINGERPRINT
    response = {"status": 201, "body": {"id": "ch_1", "ok": True}}
    assert hashlib.sha256(canonical_bytes(response)).hexdigest() == RESPONSE_DIGEST


def test_both_floors_use_the_one_module() -> None:
    assert audit_canonical_json is cj.canonical_json
    assert canonical_bytes.__module__ == "pytest_reliability.idempotency._model"
    assert canonical_bytes(PAYLOAD) == cj.canonical_bytes(PAYLOAD)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)


@given(st.lists(json_scalars, max_size=12))
def test_fast_array_path_equals_the_general_encoding(values: list[Any]) -> None:
    try:
        expected: bytes | None = cj.canonical_bytes(values)
    except ValueError:
        expected = None  # a lone surrogate drawn by st.text()
    if expected is None:
        with pytest.raises(ValueError, match="surrogate"):
            cj.canonical_array(values)
    else:
        assert cj.canonical_array(values) == expected
        assert json.loads(expected) == values


@given(st.recursive(json_scalars, lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
def test_canonical_bytes_is_utf8_of_sorted_compact_json_or_a_value_error(value: Any) -> None:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        expected = text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(ValueError, match="lone surrogate"):
            cj.canonical_bytes(value)
        return
    assert cj.canonical_bytes(value) == expected


@pytest.mark.parametrize("value", ["\ud800", {"k": "a\udfffb"}, ["\udc00"], {"\ud83d": 1}])
def test_lone_surrogates_are_a_value_error_naming_the_position(value: Any) -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        cj.canonical_json(value)
    with pytest.raises(ValueError, match="lone surrogate"):
        cj.canonical_bytes(value)
    with pytest.raises(PayloadNotSerializable, match="surrogate"):
        fingerprint(value)


def test_a_surrogate_pair_written_as_one_character_is_fine() -> None:
    assert cj.canonical_bytes("\U0001f600") == '"\U0001f600"'.encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: 2, "a": 3}, {1, 2}, b"x"])
def test_values_json_cannot_hold_are_refused(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        cj.canonical_bytes(value)


def test_audit_details_with_a_lone_surrogate_are_a_typed_error_and_nothing_is_written() -> None:
    from pytest_reliability.audit import InMemoryAuditLog
    from pytest_reliability.errors import InvalidAuditField
    from pytest_reliability.tenancy import tenant_scope

    log = InMemoryAuditLog()
    with tenant_scope("acme"):
        with pytest.raises(InvalidAuditField, match="surrogate"):
            log.append("a", actor="x", target="y", outcome="ok", details={"n": "\ud800"})
        assert log.events() == []
