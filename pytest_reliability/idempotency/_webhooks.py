"""Webhook deliveries: Stripe-style signatures, timestamp tolerance, dedupe by event id.

The signature header is ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``; several
``v1`` entries are allowed (one per active secret while a secret is rotated). A delivery whose
timestamp is more than ``tolerance`` seconds old *or in the future* is refused, which bounds
how long a captured delivery can be replayed; within the window, the provider's event id is the
idempotency key, so a replayed delivery returns the first delivery's result without running the
handler again and is audited as ``idempotency.replay_detected``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any, Final, final

from pytest_reliability.errors import (
    InvalidInput,
    WebhookSignatureInvalid,
    WebhookTimestampOutOfTolerance,
)
from pytest_reliability.idempotency._attempt import Attempt
from pytest_reliability.idempotency._engine import AUDIT_REPLAY_DETECTED, IdempotencyEngine
from pytest_reliability.idempotency._model import Outcome
from pytest_reliability.protocols import Clock

__all__ = ["DEFAULT_TOLERANCE_SECONDS", "WebhookReceiver", "sign_webhook", "verify_webhook"]

DEFAULT_TOLERANCE_SECONDS: Final = 300
_MAX_HEADER = 4096


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _mac(secret: str | bytes, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(_secret_bytes(secret), signed, hashlib.sha256).hexdigest()


def sign_webhook(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """Return the signature header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def _parse(header: str | None) -> tuple[int, list[str]]:
    if not header or len(header) > _MAX_HEADER:
        raise WebhookSignatureInvalid("webhook signature header is missing or oversized")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureInvalid("webhook signature header is malformed")
        if name == "t":
            if not value.isdigit() or timestamp is not None:
                raise WebhookSignatureInvalid("webhook signature timestamp is malformed")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureInvalid("webhook signature header lacks t= or v1=")
    return timestamp, signatures


def verify_webhook(
    secrets: str | bytes | Sequence[str | bytes],
    body: bytes,
    header: str | None,
    *,
    clock: Clock,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Verify ``header`` against ``body``; return the signed timestamp.

    Raises :class:`WebhookSignatureInvalid` when no ``v1`` signature matches any secret and
    :class:`WebhookTimestampOutOfTolerance` when the timestamp is older or further ahead than
    ``tolerance`` seconds. The signature is checked first so an attacker learns nothing about the
    clock from a forged delivery.
    """
    keys = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    if not keys:
        raise WebhookSignatureInvalid("no webhook secret configured")
    timestamp, signatures = _parse(header)
    expected = [_mac(key, timestamp, body) for key in keys]
    if not any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        raise WebhookSignatureInvalid("webhook signature does not match the body")
    skew = clock.time() - timestamp
    if skew > tolerance:
        raise WebhookTimestampOutOfTolerance(
            f"webhook timestamp is {skew:.0f} s old; the tolerance is {tolerance:.0f} s"
        )
    if -skew > tolerance:
        raise WebhookTimestampOutOfTolerance(
            f"webhook timestamp is {-skew:.0f} s in the future; the tolerance is {tolerance:.0f} s"
        )
    return timestamp


def _stripe_event_id(event: Any) -> str:
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise InvalidInput("webhook event has no string 'id'")
    return str(event["id"])


@final
class WebhookReceiver:
    """Verify, dedupe and handle one provider's webhook deliveries, exactly once per event id.

    ``handler(event, attempt)`` runs once per event id and tenant; its return value is replayed
    to redeliveries. ``event_id(event)`` extracts the provider's id (default ``event["id"]``).
    """

    __slots__ = ("_event_id", "_secrets", "engine", "provider", "tolerance")

    def __init__(
        self,
        engine: IdempotencyEngine,
        secrets: str | bytes | Sequence[str | bytes],
        *,
        provider: str = "stripe",
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        event_id: Callable[[Any], str] = _stripe_event_id,
    ) -> None:
        self.engine = engine
        self.provider = provider
        self.tolerance = tolerance
        self._secrets = secrets
        self._event_id = event_id

    @property
    def operation(self) -> str:
        """The operation name deliveries are deduplicated under."""
        return f"webhooks.{self.provider}"

    def receive(
        self, body: bytes, signature: str | None, handler: Callable[[Any, Attempt], Any]
    ) -> Outcome:
        """Verify the delivery, then run ``handler`` once for its event id."""
        verify_webhook(
            self._secrets, body, signature, clock=self.engine.clock, tolerance=self.tolerance
        )
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise InvalidInput(f"webhook body is not JSON: {exc}") from exc
        with self.engine.attempt(
            operation=self.operation,
            key=self._event_id(event),
            payload=event,
            _replay_action=AUDIT_REPLAY_DETECTED,
        ) as attempt:
            if not attempt.replayed:
                attempt.complete(handler(event, attempt))
        return attempt.outcome()
