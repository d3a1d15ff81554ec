"""The hash chain: the event value, its canonical encoding, and verification.

Each event's hash is SHA-256 over the canonical JSON encoding (see
``pytest_reliability._canonical_json``: a JSON array in a fixed field order, no whitespace,
UTF-8) of every field but the hash itself, the previous event's hash included. The first event
of a tenant links to :data:`GENESIS_HASH`. Changing, deleting, inserting or moving any event
therefore breaks a link or a hash; :func:`verify_rows` reports the first such break and says
what it looks like.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from pytest_reliability._canonical_json import canonical_array
from pytest_reliability._canonical_json import (  # re-exported: audit's public canonical_json
    canonical_json as canonical_json,
)
from pytest_reliability.errors import AuditIntegrityError

GENESIS_HASH = "0" * 64
HASH_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

BreakKind = Literal["changed", "deleted", "inserted", "reordered", "forked"]


def to_micros(when: datetime) -> int:
    """Return an aware datetime as integer microseconds since the epoch."""
    return (when - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    """Return integer microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)


class ChainRow(NamedTuple):
    """One stored event as verification reads it, in column order."""

    tenant_id: str
    seq: int
    event_id: str
    occurred_at_us: int
    action: str
    actor: str
    target: str
    outcome: str
    details: str
    correlation_id: str | None
    prev_hash: str
    hash: str


_sha256 = hashlib.sha256


def event_hash(row: ChainRow | tuple[Any, ...], seq: int | None = None) -> str:
    """Return the chain hash of ``row`` (optionally as if it stood at sequence ``seq``).

    ``row`` holds at least the first eleven :class:`ChainRow` fields; a twelfth (the stored
    hash) is ignored.
    """
    fields = [HASH_VERSION, *row[:11]] if seq is None else [HASH_VERSION, row[0], seq, *row[2:11]]
    return _sha256(canonical_array(fields)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One immutable audit event, as appended and as read back."""

    tenant_id: str
    sequence: int
    event_id: str
    occurred_at: datetime
    action: str
    actor: str
    target: str
    outcome: str
    details: Mapping[str, Any]
    correlation_id: str | None
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: ChainRow | tuple[Any, ...]) -> AuditEvent:
        """Build an event from a stored row."""
        r = ChainRow(*row)
        return cls(
            tenant_id=r.tenant_id,
            sequence=r.seq,
            event_id=r.event_id,
            occurred_at=from_micros(r.occurred_at_us),
            action=r.action,
            actor=r.actor,
            target=r.target,
            outcome=r.outcome,
            details=json.loads(r.details),
            correlation_id=r.correlation_id,
            prev_hash=r.prev_hash,
            hash=r.hash,
        )


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first break found in a tenant's chain."""

    tenant_id: str
    sequence: int
    kind: BreakKind
    reason: str

    def __str__(self) -> str:
        return f"tenant {self.tenant_id!r}: {self.kind} event at sequence {self.sequence}: " + (
            self.reason
        )


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found: ``ok`` and, when not, the first ``break_``."""

    events_checked: int
    tenants_checked: int
    break_: ChainBreak | None = None
    tenants: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Whether every chain checked is intact."""
        return self.break_ is None

    def __bool__(self) -> bool:
        return self.ok

    def raise_for_break(self) -> None:
        """Raise :class:`AuditIntegrityError` describing the first break, if there is one."""
        if self.break_ is not None:
            b = self.break_
            raise AuditIntegrityError(str(b), tenant=b.tenant_id, sequence=b.sequence, kind=b.kind)


class Head(NamedTuple):
    """A tenant's recorded last sequence number and hash."""

    last_seq: int
    last_hash: str


_BRUTE_FORCE_LIMIT = 100_000


def _classify_bad_hash(
    row: ChainRow, position: int, rows: list[ChainRow], head: Head | None
) -> ChainBreak:
    """Tell a moved event from a changed one, for the slow path only.

    A moved event still hashes correctly at the position it was written at. Try the positions
    its neighbours point to first, then (for chains of reasonable length) every position.
    """
    by_hash = {r.hash: r.seq for r in rows}
    by_prev = {r.prev_hash: r.seq for r in rows}
    candidates: list[int] = []
    if row.prev_hash in by_hash:
        candidates.append(by_hash[row.prev_hash] + 1)
    if row.hash in by_prev:
        candidates.append(by_prev[row.hash] - 1)
    if head is not None and row.hash == head.last_hash:
        candidates.append(head.last_seq)
    if len(rows) <= _BRUTE_FORCE_LIMIT:
        candidates.extend(r.seq for r in rows)
    for seq in dict.fromkeys(candidates):
        if seq != row.seq and event_hash(row, seq) == row.hash:
            return ChainBreak(
                row.tenant_id,
                position,
                "reordered",
                f"event {row.event_id} was written at sequence {seq} and now stands at {position}",
            )
    return ChainBreak(
        row.tenant_id, position, "changed", f"stored hash does not match event {row.event_id}"
    )


def verify_tenant(
    tenant_id: str,
    rows: Iterable[tuple[Any, ...]],
    head: Head | None,
    load_all: Callable[[], list[ChainRow]],
) -> tuple[int, ChainBreak | None]:
    """Verify one tenant's rows (ordered by sequence, then insertion) against its head.

    Returns the number of rows checked and the first break, if any. The pass keeps nothing but
    the previous hash; only a break calls ``load_all`` (every row of the tenant, in the same
    order) to tell what kind of break it is.
    """
    expected = 1
    prev = GENESIS_HASH
    checked = 0
    for raw in rows:
        checked += 1
        seq = raw[1]
        if seq != expected or event_hash(raw) != raw[11] or raw[10] != prev:
            row = ChainRow(*raw)
        else:
            prev = raw[11]
            expected += 1
            continue
        if seq != expected:
            if seq > expected:
                return checked, ChainBreak(
                    tenant_id, expected, "deleted", f"sequence {expected} is missing"
                )
            rivals = [r for r in load_all() if r.seq == seq and r.event_id != row.event_id]
            if any(r.prev_hash == row.prev_hash for r in rivals) and event_hash(row) == row.hash:
                return checked, ChainBreak(
                    tenant_id, seq, "forked", f"two events claim sequence {seq}"
                )
            return checked, ChainBreak(
                tenant_id, seq, "inserted", f"event {row.event_id} duplicates sequence {seq}"
            )
        if event_hash(row) != row.hash:
            return checked, _classify_bad_hash(row, seq, load_all(), head)
        if row.prev_hash != prev:
            return checked, ChainBreak(
                tenant_id,
                seq,
                "inserted",
                f"event {row.event_id} does not link to the event before it",
            )
        prev = row.hash
        expected += 1
    last = expected - 1
    if head is None:
        if last:
            return checked, ChainBreak(
                tenant_id, 1, "inserted", "events exist for a tenant with no recorded head"
            )
        return checked, None
    if head.last_seq > last:
        return checked, ChainBreak(
            tenant_id, last + 1, "deleted", f"the head records {head.last_seq} events, found {last}"
        )
    if head.last_seq < last:
        return checked, ChainBreak(
            tenant_id,
            head.last_seq + 1,
            "inserted",
            f"events past the recorded head (sequence {head.last_seq})",
        )
    if head.last_hash != prev:
        return checked, ChainBreak(
            tenant_id, last, "changed", "the last event's hash differs from the recorded head"
        )
    return checked, None
