"""The engine's values: configuration, keys, fingerprints, records, claims and outcomes.

Nothing here touches a store; the stores and the engine share these shapes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, final

from pytest_reliability._canonical_json import canonical_bytes as _canonical_bytes
from pytest_reliability.errors import (
    ConfigurationError,
    CorruptRecord,
    InvalidIdempotencyKey,
    PayloadNotSerializable,
    PayloadTooLarge,
)

KEY_MAX_LENGTH: Final = 255
"""The longest idempotency key accepted (the IETF draft leaves it open; Stripe uses 255)."""
OPERATION_MAX_LENGTH: Final = 128
DEFAULT_MAX_PAYLOAD_BYTES: Final = 1024 * 1024
DEFAULT_RETENTION_SECONDS: Final = 24 * 3600.0
DEFAULT_LEASE_SECONDS: Final = 30.0

_KEY_RE = re.compile(r"[\x20-\x7e]+")
_OPERATION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")


class State(StrEnum):
    """A record's state. A key without a record is NEW."""

    NEW = "NEW"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


def validate_key(key: object) -> str:
    """Return ``key`` if it is 1 to 255 printable ASCII characters, else raise."""
    if not isinstance(key, str):
        raise InvalidIdempotencyKey(f"idempotency key must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidIdempotencyKey("idempotency key is missing or empty (HTTP 400)")
    if len(key) > KEY_MAX_LENGTH:
        raise InvalidIdempotencyKey(
            f"idempotency key is {len(key)} characters long; the limit is {KEY_MAX_LENGTH}"
        )
    if _KEY_RE.fullmatch(key) is None:
        # The key itself is not echoed: it may be a secret-bearing value from a client.
        raise InvalidIdempotencyKey("idempotency key has characters outside printable ASCII")
    return key


def validate_operation(operation: object) -> str:
    """Return ``operation`` if it is a stable, explicit operation name, else raise."""
    if not isinstance(operation, str) or not operation:
        raise ConfigurationError("an idempotent operation needs an explicit, non-empty name")
    if len(operation) > OPERATION_MAX_LENGTH or _OPERATION_RE.fullmatch(operation) is None:
        raise ConfigurationError(
            f"operation name {operation!r} must be 1..{OPERATION_MAX_LENGTH} characters from "
            "A-Z a-z 0-9 . _ : / - starting with a letter or digit"
        )
    return operation


def key_hash(key: str) -> str:
    """Return the SHA-256 hex digest of ``key``: what stores and audit events hold."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def canonical_bytes(value: Any, *, what: str = "payload") -> bytes:
    """Encode ``value`` as canonical JSON (sorted keys, no whitespace, no NaN), UTF-8.

    Raises :class:`PayloadNotSerializable` for anything canonical JSON cannot hold, a lone
    surrogate included, before any store sees the value.
    """
    try:
        return _canonical_bytes(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadNotSerializable(f"{what} cannot be encoded as canonical JSON: {exc}") from exc


def fingerprint(payload: Any, *, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """Return the request fingerprint: SHA-256 hex of the payload's canonical JSON.

    Raises :class:`PayloadTooLarge` past ``max_bytes`` and :class:`PayloadNotSerializable` for a
    value JSON cannot hold.
    """
    data = canonical_bytes(payload)
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"payload is {len(data)} bytes encoded; the limit is {max_bytes}",
            size=len(data),
            limit=max_bytes,
        )
    return hashlib.sha256(data).hexdigest()


def _never_terminal(_exc: BaseException) -> bool:
    return False


@final
@dataclass(frozen=True, slots=True)
class IdempotencyConfig:
    """How the engine behaves. Every field has a safe default.

    * ``lease_seconds``: how long a first delivery holds the key before another worker may take
      it over (a crashed worker's lease expires after this).
    * ``retention_seconds``: how long finished records are kept and replayed (default 24 h).
    * ``max_payload_bytes``: the largest canonical payload accepted (default 1 MiB).
    * ``wait_seconds``: 0 raises :class:`IdempotencyInProgress` at once when another delivery
      holds the key; more waits up to that long for its result, polling every ``poll_seconds``.
    * ``terminal_errors`` and ``is_terminal``: a handler exception that is an instance of one of
      ``terminal_errors``, or for which ``is_terminal(exc)`` is true, is *terminal*: it is stored
      and every later delivery of the key raises :class:`ReplayedFailure`. Every other exception
      is *retryable*: the key is released, the local transaction rolled back, and the next
      delivery runs the handler again. ``BaseException``\\ s that are not ``Exception`` (task
      cancellation, interpreter exit) are always retryable.
    * ``actor``: the actor name on audit events.
    """

    lease_seconds: float = DEFAULT_LEASE_SECONDS
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    wait_seconds: float = 0.0
    poll_seconds: float = 0.05
    terminal_errors: tuple[type[Exception], ...] = ()
    is_terminal: Callable[[BaseException], bool] = field(default=_never_terminal)
    actor: str = "idempotency-engine"

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0 or self.retention_seconds <= 0:
            raise ConfigurationError("lease_seconds and retention_seconds must be positive")
        if self.retention_seconds < self.lease_seconds:
            raise ConfigurationError("retention_seconds must be at least lease_seconds")
        if self.max_payload_bytes <= 0:
            raise ConfigurationError("max_payload_bytes must be positive")
        if self.wait_seconds < 0 or self.poll_seconds <= 0:
            raise ConfigurationError("wait_seconds must be >= 0 and poll_seconds > 0")

    def terminal(self, exc: BaseException) -> bool:
        """Return whether the handler exception ``exc`` is stored and replayed."""
        if not isinstance(exc, Exception):
            return False
        return isinstance(exc, self.terminal_errors) or bool(self.is_terminal(exc))


@final
@dataclass(frozen=True, slots=True)
class Scope:
    """Where a key lives: (tenant, operation, key hash). Stores never see the raw key."""

    tenant: str
    operation: str
    key_hash: str


@final
@dataclass(frozen=True, slots=True)
class Record:
    """A stored record as a store decodes it. Times are integer milliseconds since the epoch."""

    state: State
    fingerprint: str
    token: str
    fence: int
    lease_expires_ms: int
    expires_ms: int
    response: str | None = None
    error: str | None = None

    def response_value(self) -> Any:
        """Decode the stored response; a record that does not decode is corrupt."""
        if self.response is None:
            raise CorruptRecord("a COMPLETED record holds no response")
        try:
            return json.loads(self.response)
        except ValueError as exc:
            raise CorruptRecord(f"stored response is not JSON: {exc}") from exc

    def failure(self) -> tuple[str, str]:
        """Decode the stored terminal error as (type name, message)."""
        try:
            data = json.loads(self.error or "")
            return str(data["type"]), str(data["message"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptRecord(f"stored error of a FAILED record does not decode: {exc}") from exc


def decode_record(fields: Sequence[Any]) -> Record:
    """Build a :class:`Record` from raw stored fields in :class:`Record` order, or raise."""
    try:
        state = State(fields[0] if isinstance(fields[0], str) else fields[0].decode())
        values = [f.decode() if isinstance(f, bytes) else f for f in fields]
        record = Record(
            state,
            str(values[1]),
            str(values[2]),
            int(values[3]),
            int(values[4]),
            int(values[5]),
            None if values[6] is None else str(values[6]),
            None if values[7] is None else str(values[7]),
        )
    except (ValueError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as exc:
        raise CorruptRecord(f"stored idempotency record does not decode: {exc}") from exc
    if state is State.NEW or len(record.fingerprint) != 64 or not record.token:
        raise CorruptRecord(f"stored idempotency record is malformed (state {state})")
    return record


@final
@dataclass(frozen=True, slots=True)
class Claim:
    """What a store's claim found: the key acquired (``token`` set), or an existing record."""

    acquired: bool
    token: str = ""
    fence: int = 0
    takeover: bool = False
    record: Record | None = None


@final
@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an idempotent call: the ``response``, and whether it was ``replayed``."""

    response: Any
    replayed: bool
    operation: str
    key_hash: str
    fence: int = 0
    takeover: bool = False
