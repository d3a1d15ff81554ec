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
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, final

from pytest_reliability.errors import (
    ConfigurationError,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    WebhookTimestampOutOfTolerance,
)
from pytest_reliability.idempotency._attempt import Attempt
from pytest_reliability.idempotency._engine import AUDIT_REPLAY_DETECTED, IdempotencyEngine
from pytest_reliability.idempotency._model import Outcome
from pytest_reliability.protocols import Clock

__all__ = ["DEFAULT_TOLERANCE_SECONDS", "WebhookReceiver", "sign_webhook", "verify_webhook"]

DEFAULT_TOLERANCE_SECONDS: Final = 300
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""The largest webhook body verified (larger ones are refused before the HMAC is computed)."""
MAX_TOLERANCE_SECONDS: Final = 7 * 24 * 3600
_MAX_HEADER = 4096
_MAX_SIGNATURES = 16
# ``[0-9]`` and not ``\d``: ``\d`` also matches Arabic-Indic, fullwidth and other digits that
# ``int()`` accepts. Twelve digits reach past the year 30000, so the arithmetic stays small.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _mac(secret: str | bytes, timestamp: str, body: bytes) -> str:
    signed = timestamp.encode("ascii") + b"." + body
    return hmac.new(_secret_bytes(secret), signed, hashlib.sha256).hexdigest()


def sign_webhook(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """Return the signature header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, str(timestamp), body)}"


def _parse(header: object) -> tuple[str, list[str]]:
    """Return the timestamp digits and the ``v1`` signatures of a header, strictly."""
    if header is None or header == "":
        raise WebhookSignatureInvalid("webhook signature header is missing")
    if not isinstance(header, str):
        raise WebhookSignatureInvalid(
            f"webhook signature header must be a str, not {type(header).__name__}"
        )
    if len(header) > _MAX_HEADER:
        raise WebhookSignatureInvalid(
            f"webhook signature header is {len(header)} characters; the limit is {_MAX_HEADER}"
        )
    if not header.isascii():
        raise WebhookSignatureInvalid("webhook signature header has non-ASCII characters")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip(" \t").partition("=")
        if not sep:
            raise WebhookSignatureInvalid("webhook signature header is malformed")
        if name == "t":
            if timestamp is not None or _TIMESTAMP.fullmatch(value) is None:
                raise WebhookSignatureInvalid(
                    "webhook signature timestamp must be one run of 1 to 12 ASCII digits"
                )
            timestamp = value
        elif name == "v1":
            if _SIGNATURE.fullmatch(value) is None or len(signatures) == _MAX_SIGNATURES:
                raise WebhookSignatureInvalid(
                    f"webhook v1 signatures must be 64 lowercase hex digits, at most "
                    f"{_MAX_SIGNATURES} of them"
                )
            signatures.append(value)
        # Other schemes (Stripe's v0 test signatures) are ignored, as the provider documents.
    if timestamp is None or not signatures:
        raise WebhookSignatureInvalid("webhook signature header lacks t= or v1=")
    return timestamp, signatures


def _check_tolerance(tolerance: object) -> float:
    """Return ``tolerance`` if it is a finite number of seconds in 0..7 days, else raise."""
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or not 0 <= tolerance <= MAX_TOLERANCE_SECONDS
    ):
        raise ConfigurationError(
            f"webhook tolerance must be a number of seconds from 0 to {MAX_TOLERANCE_SECONDS}, "
            f"not {tolerance!r}"
        )
    return float(tolerance)


def _body_bytes(body: object, max_bytes: int) -> bytes:
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise WebhookPayloadInvalid(
            f"webhook body must be the raw bytes received, not {type(body).__name__}"
        )
    if len(body) > max_bytes:
        raise WebhookPayloadInvalid(f"webhook body is {len(body)} bytes; the limit is {max_bytes}")
    return body


def verify_webhook(
    secrets: str | bytes | Sequence[str | bytes],
    body: bytes,
    header: str | None,
    *,
    clock: Clock,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> int:
    """Verify ``header`` against ``body``; return the signed timestamp.

    Raises :class:`WebhookSignatureInvalid` when the header is missing, not a ``str``, longer
    than 4096 characters, not ASCII, has a ``t`` that is not 1 to 12 ASCII digits or a ``v1``
    that is not 64 hex digits, or when no ``v1`` signature matches any secret;
    :class:`WebhookPayloadInvalid` when ``body`` is not bytes or is over ``max_body_bytes``;
    :class:`WebhookTimestampOutOfTolerance` when the timestamp is older or further ahead than
    ``tolerance`` seconds. The signature is checked first so an attacker learns nothing about the
    clock from a forged delivery. Nothing here parses the body.
    """
    limit = _check_tolerance(tolerance)
    keys = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    if not keys:
        raise WebhookSignatureInvalid("no webhook secret configured")
    timestamp, signatures = _parse(header)
    data = _body_bytes(body, max_body_bytes)
    expected = [_mac(key, timestamp, data) for key in keys]
    if not any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        raise WebhookSignatureInvalid("webhook signature does not match the body")
    signed_at = int(timestamp)
    skew = clock.time() - signed_at
    if skew > limit:
        raise WebhookTimestampOutOfTolerance(
            f"webhook timestamp is {skew:.0f} s old; the tolerance is {limit:.0f} s"
        )
    if -skew > limit:
        raise WebhookTimestampOutOfTolerance(
            f"webhook timestamp is {-skew:.0f} s in the future; the tolerance is {limit:.0f} s"
        )
    return signed_at


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_event(body: bytes) -> Any:
    """Parse a verified webhook body as JSON, or raise :class:`WebhookPayloadInvalid`."""
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise WebhookPayloadInvalid("webhook body is nested too deeply") from None
    except ValueError as exc:  # also bad UTF-8 and integers past the digit limit
        raise WebhookPayloadInvalid(f"webhook body is not JSON: {exc}") from None


def _stripe_event_id(event: Any) -> str:
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise WebhookPayloadInvalid("webhook event has no string 'id'")
    return str(event["id"])


@final
class WebhookReceiver:
    """Verify, dedupe and handle one provider's webhook deliveries, exactly once per event id.

    ``handler(event, attempt)`` runs once per event id and tenant; its return value is replayed
    to redeliveries. ``event_id(event)`` extracts the provider's id (default ``event["id"]``).
    Every malformed delivery is refused with a ``WebhookVerificationError`` (a bad header or
    signature, a stale timestamp) or an ``InvalidInput`` (a body that is not bytes, too large,
    not JSON, nested too deeply, without an event id, or holding text canonical JSON cannot
    encode), never another exception; the handler's own errors propagate.
    """

    __slots__ = ("_event_id", "_secrets", "engine", "max_body_bytes", "provider", "tolerance")

    def __init__(
        self,
        engine: IdempotencyEngine,
        secrets: str | bytes | Sequence[str | bytes],
        *,
        provider: str = "stripe",
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        event_id: Callable[[Any], str] = _stripe_event_id,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise ConfigurationError("max_body_bytes must be an int")
        if max_body_bytes <= 0:
            raise ConfigurationError("max_body_bytes must be positive")
        self.engine = engine
        self.provider = provider
        self.tolerance = _check_tolerance(tolerance)
        self.max_body_bytes = max_body_bytes
        self._secrets = secrets
        self._event_id = event_id

    @property
    def operation(self) -> str:
        """The operation name deliveries are deduplicated under."""
        return f"webhooks.{self.provider}"

    def receive(
        self, body: bytes, signature: str | None, handler: Callable[[Any, Attempt], Any]
    ) -> Outcome:
        """Verify the delivery (before reading the body), then run ``handler`` once for its id."""
        verify_webhook(
            self._secrets,
            body,
            signature,
            clock=self.engine.clock,
            tolerance=self.tolerance,
            max_body_bytes=self.max_body_bytes,
        )
        event = _parse_event(body)
        with self.engine.attempt(
            operation=self.operation,
            key=self._event_id(event),
            payload=event,
            _replay_action=AUDIT_REPLAY_DETECTED,
        ) as attempt:
            if not attempt.replayed:
                attempt.complete(handler(event, attempt))
        return attempt.outcome()
