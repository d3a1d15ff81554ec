"""Webhook signatures, tolerance and replay detection; the IETF Idempotency-Key HTTP mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import (
    InvalidInput,
    WebhookSignatureInvalid,
    WebhookTimestampOutOfTolerance,
)
from pytest_reliability.idempotency import (
    AUDIT_REPLAY_DETECTED,
    Attempt,
    IdempotencyEngine,
    WebhookReceiver,
    api_operation,
    billing_operation,
    http_status_for,
    key_hash,
    sign_webhook,
    verify_webhook,
)

pytestmark = [pytest.mark.idempotency, pytest.mark.usefixtures("tenant")]
SECRET = "whsec_test_secret"


def _delivery(clock: ManualClock, event: dict[str, Any], *, offset: float = 0) -> tuple[bytes, str]:
    body = json.dumps(event).encode()
    return body, sign_webhook(SECRET, body, int(clock.time() + offset))


def test_signature_round_trip_and_rotation(clock: ManualClock) -> None:
    body = b'{"id":"evt_1"}'
    header = sign_webhook(SECRET, body, int(clock.time()))
    assert verify_webhook(SECRET, body, header, clock=clock) == int(clock.time())
    # During rotation the provider signs with both secrets; either configured secret verifies.
    both = header + "," + sign_webhook("new", body, int(clock.time())).split(",")[1]
    assert verify_webhook(["old-unrelated", "new"], body, both, clock=clock)


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", "t=abc,v1=00", "v1=00", "t=1", "t=1,t=2,v1=00", "x" * 5000],
)
def test_malformed_headers_are_rejected(clock: ManualClock, header: str | None) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(SECRET, b"{}", header, clock=clock)


def test_tampered_body_and_wrong_secret_are_rejected(clock: ManualClock) -> None:
    body, header = _delivery(clock, {"id": "evt_1", "amount": 10})
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(SECRET, body.replace(b"10", b"99"), header, clock=clock)
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook("other", body, header, clock=clock)


def test_stale_and_future_timestamps_are_rejected_at_the_tolerance(clock: ManualClock) -> None:
    for offset in (-300, 300):
        body, header = _delivery(clock, {"id": "evt"}, offset=offset)
        verify_webhook(SECRET, body, header, clock=clock)
    for offset in (-301, 301):
        body, header = _delivery(clock, {"id": "evt"}, offset=offset)
        with pytest.raises(WebhookTimestampOutOfTolerance):
            verify_webhook(SECRET, body, header, clock=clock)
    body, header = _delivery(clock, {"id": "evt"}, offset=-100)
    with pytest.raises(WebhookTimestampOutOfTolerance):
        verify_webhook(SECRET, body, header, clock=clock, tolerance=60)


def test_receiver_dedupes_by_event_id_and_audits_replays(
    make_idem: Any, clock: ManualClock, audit: InMemoryAuditLog
) -> None:
    receiver = WebhookReceiver(make_idem(), SECRET)
    handled: list[str] = []

    def handler(event: Any, attempt: Attempt) -> dict[str, str]:
        handled.append(event["id"])
        return {"received": event["id"]}

    body, header = _delivery(clock, {"id": "evt_42", "type": "invoice.paid"})
    first = receiver.receive(body, header, handler)
    clock.advance(30)
    body2, header2 = _delivery(clock, {"id": "evt_42", "type": "invoice.paid"})
    second = receiver.receive(body2, header2, handler)
    assert handled == ["evt_42"]
    assert not first.replayed
    assert second.replayed
    assert second.response == {"received": "evt_42"}
    (event,) = audit.events(action=AUDIT_REPLAY_DETECTED)
    assert event.details["key_hash"] == key_hash("evt_42")
    assert event.target == "webhooks.stripe"


def test_receiver_refuses_before_touching_the_store(make_idem: Any, clock: ManualClock) -> None:
    receiver = WebhookReceiver(make_idem(), SECRET)
    body, header = _delivery(clock, {"id": "evt_1"}, offset=-3600)
    with pytest.raises(WebhookTimestampOutOfTolerance):
        receiver.receive(body, header, lambda e, a: pytest.fail("handler ran"))
    no_id = json.dumps({"type": "x"}).encode()
    with pytest.raises(InvalidInput):
        receiver.receive(no_id, sign_webhook(SECRET, no_id, int(clock.time())), lambda e, a: 1)
    not_json = b"not json"
    with pytest.raises(InvalidInput):
        receiver.receive(not_json, sign_webhook(SECRET, not_json, int(clock.time())), print)


def test_billing_operation_namespaces_the_operation(make_idem: Any) -> None:
    engine = make_idem()
    outcome = billing_operation(engine, "charge", key="b1", payload={"c": 1}, handler=lambda a: 1)
    assert outcome.operation == "billing.charge"
    assert billing_operation(engine, "charge", key="b1", payload={"c": 1}, handler=print).replayed


def test_api_operation_follows_the_idempotency_key_draft() -> None:
    engine = IdempotencyEngine.from_url("memory://")
    calls: list[int] = []

    def create(attempt: Attempt) -> tuple[int, Any]:
        calls.append(1)
        return 201, {"order": "o-1"}

    def call(headers: dict[str, str], body: Any) -> Any:
        return api_operation(
            engine, method="post", route="/orders", headers=headers, body=body, handler=create
        )

    assert call({}, {"n": 1}).status == 400
    assert call({"Idempotency-Key": ""}, {"n": 1}).status == 400
    first = call({"Idempotency-Key": "abc"}, {"n": 1})
    again = call({"idempotency-key": "abc"}, {"n": 1})
    assert (first.status, first.body, dict(first.headers)) == (201, {"order": "o-1"}, {})
    assert (again.status, again.body) == (201, {"order": "o-1"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert call({"Idempotency-Key": "abc"}, {"n": 2}).status == 422
    scope, fp = engine.prepare("api.POST:/orders", "busy", {"n": 1})
    engine.acquire(scope, fp)
    busy = call({"Idempotency-Key": "busy"}, {"n": 1})
    assert busy.status == 409
    assert busy.headers["Retry-After"] == "30"
    assert calls == [1]


def test_http_status_for_maps_engine_errors() -> None:
    from pytest_reliability.errors import IdempotencyInProgress, IdempotencyUnavailable

    assert http_status_for(IdempotencyInProgress("x", retry_after=1)) == 409
    assert http_status_for(IdempotencyUnavailable("x")) == 503
    assert http_status_for(ValueError("x")) is None
