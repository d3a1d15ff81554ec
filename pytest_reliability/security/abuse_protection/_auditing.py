"""Abuse protection's audit events: what they are called, what they carry, how none is lost.

Subjects appear as :func:`~pytest_reliability.security.abuse_protection._model.subject_label`
(an IP as itself, anything else as a digest), accounts never.

No event is lost (a transactional outbox): a step that must be audited (an escalation, the
first denial of an audit window, a block seen to expire, an ops unblock) writes one *outbox
record* to the abuse store in the same atomic step as the state change (the memory store's
lock, the SQL transaction, the Redis Lua script). The record holds the step's outcome; the
events are derived from it by :func:`events_for`, the same way in every process. A flush
(:meth:`AuditOutbox.flush`, run after every audited step, from ``sweep()`` and when a
protection is built) appends the pending records' events to the audit log in order and deletes
each record only after all its events were appended: at-least-once. The audit log assigns its
own event ids, so an append cannot be made idempotent; the duplicate window is exactly "an
append committed, then the process died (or the store failed) before the record's delete": the
next flush appends those events again. Every event carries ``outbox_id`` (the record's id and
the event's index) in its details, so a reader can recognise such a repeat.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, final

from pytest_reliability.errors import AbuseStoreUnavailable, StoreUnavailable
from pytest_reliability.protocols import AuditSink
from pytest_reliability.security.abuse_protection._model import Tier, subject_label
from pytest_reliability.security.abuse_protection._transition import Outcome
from pytest_reliability.tenancy import tenant_scope

if TYPE_CHECKING:
    from pytest_reliability.security.abuse_protection._store import AbuseStore

__all__ = [
    "AUDIT_BLOCK_EXPIRED",
    "AUDIT_ENFORCED",
    "AUDIT_ESCALATED",
    "AUDIT_UNBLOCKED",
    "OUTBOX_CAP",
    "AuditOutbox",
    "events_for",
    "needs_record",
    "outbox_record",
]

AUDIT_ESCALATED: Final = "abuse.escalated"
"""A subject's tier went up (a detector, the throttle strikes, or an ops block)."""
AUDIT_ENFORCED: Final = "abuse.enforced"
"""The first denial of a subject in an audit window; ``suppressed_before`` counts the denials
since the previous enforcement event that were not logged one by one."""
AUDIT_BLOCK_EXPIRED: Final = "abuse.block_expired"
"""A block ended (seen by a decision or by the sweeper); exactly one per block."""
AUDIT_UNBLOCKED: Final = "abuse.unblocked"
"""An operator lifted a subject's tier by hand."""

OUTBOX_CAP: Final = 100_000
"""Outbox records a store holds at most. At the cap, a step that would need a new record is
refused with :class:`~pytest_reliability.errors.AbuseStoreUnavailable` and changes nothing, so
it fails closed (a block stays in force, its expiry is recorded once the outbox drains); steps
that audit nothing go on as usual."""

_STATUS = {3: 403, 2: 429, 1: 429, 0: 429}
_LEASE_MS: Final = 30_000
_BATCH: Final = 100

_log = logging.getLogger("pytest_reliability.security.abuse")


def needs_record(out: Outcome, force: tuple[Any, ...] | None) -> bool:
    """Whether the step ``out`` is audited (so its store must write an outbox record)."""
    return bool(
        out.expired_until
        or out.tier > out.from_tier
        or out.enforce
        or (force is not None and force[0] == "unblock")
    )


def outbox_record(
    record_id: str,
    tenant: str,
    subject: str,
    now_ms: int,
    context: tuple[str, str],
    force: tuple[Any, ...] | None,
    out: Outcome,
) -> str:
    """The outbox record of one audited step, as the JSON text a store keeps.

    ``context`` is (actor, observer). The Redis script writes the same shape.
    """
    # "u:" marks an unblock (its reason may be empty); "" is every other step.
    reason = f"u:{force[2]}" if force is not None and force[0] == "unblock" else ""
    outcome = [
        out.tier,
        int(out.allowed),
        out.retry_ms,
        out.detector,
        out.reason,
        out.from_tier,
        out.expired_until,
        int(out.enforce),
        out.suppressed,
        out.offenses,
        out.until,
    ]
    return json.dumps(
        [record_id, tenant, subject, now_ms, context[0], context[1], reason, outcome],
        separators=(",", ":"),
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def events_for(
    text: str, default_actor: str
) -> list[tuple[str, str, str, str, str, dict[str, Any], str]]:
    """The events of one outbox record: (tenant, action, target, outcome, id, details, actor).

    The order is the order they happened in: expiry, escalation, enforcement, unblock. An
    unreadable record (a damaged store) raises
    :class:`~pytest_reliability.errors.AbuseStoreUnavailable`; the flush then keeps it, logs it,
    and delivers nothing after it (order first).
    """
    try:
        return _events(text, default_actor)
    except (
        ArithmeticError,
        AttributeError,
        LookupError,
        OSError,
        RecursionError,
        TypeError,
        ValueError,
    ) as exc:
        raise AbuseStoreUnavailable(
            f"abuse audit outbox record is unreadable: {type(exc).__name__}"
        ) from None


def _events(
    text: str, default_actor: str
) -> list[tuple[str, str, str, str, str, dict[str, Any], str]]:
    record = json.loads(text)
    if not isinstance(record, list) or not isinstance(record[7], list):
        raise TypeError("not a record")
    record_id, tenant, subject, _now, actor, seen_by, unblock_reason, o = record
    tier, _allowed, retry, detector, reason, from_tier, expired, enforce, suppressed = o[:9]
    offenses, until = o[9], o[10]
    actor = str(actor) or default_actor
    label = subject_label(str(subject))
    tier, from_tier = int(tier), int(from_tier)
    found: list[tuple[str, str, str, dict[str, Any], str]] = []
    if expired:
        found.append(
            (
                AUDIT_BLOCK_EXPIRED,
                "expired",
                label,
                {"blocked_until": _iso(int(expired)), "observed_by": seen_by},
                default_actor,
            )
        )
    if tier > from_tier:
        details: dict[str, Any] = {
            "from": Tier(from_tier).name,
            "to": Tier(tier).name,
            "detector": detector,
            "reason": reason,
            "offenses": offenses,
        }
        if tier == 3:
            details["until"] = _iso(int(until))
        found.append((AUDIT_ESCALATED, Tier(tier).name.lower(), label, details, actor))
    if enforce:
        found.append(
            (
                AUDIT_ENFORCED,
                "deny",
                label,
                {
                    "tier": Tier(tier).name,
                    "status": _STATUS[int(tier)],
                    "detector": detector,
                    "reason": reason,
                    "suppressed_before": suppressed,
                    "retry_after_ms": retry,
                },
                default_actor,
            )
        )
    if isinstance(unblock_reason, str) and unblock_reason.startswith("u:"):
        found.append(
            (
                AUDIT_UNBLOCKED,
                "normal",
                label,
                {"from": Tier(from_tier).name, "reason": unblock_reason[2:]},
                actor,
            )
        )
    return [
        (str(tenant), action, target, outcome, f"{record_id}/{i}", details, str(who))
        for i, (action, outcome, target, details, who) in enumerate(found)
    ]


@final
class AuditOutbox:
    """Moves the store's outbox records to the audit sink, in order, at least once."""

    __slots__ = ("_done", "_lock", "_owner", "actor", "sink", "store")

    def __init__(self, sink: AuditSink | None, actor: str, store: AbuseStore) -> None:
        self.sink = sink
        self.actor = actor
        self.store = store
        self._lock = threading.Lock()
        self._owner = secrets.token_hex(8)
        # Events of a record already appended while a later one of it failed: skipped on the
        # next try by this process (another process would append them again, see the module).
        self._done: dict[str, int] = {}

    @property
    def pending(self) -> int:
        """Events the store holds that the audit log does not have yet (reads the store)."""
        total = 0
        for record_id, text in self.store.outbox_peek(OUTBOX_CAP):
            try:
                total += len(events_for(text, self.actor)) - self._done.get(record_id, 0)
            except AbuseStoreUnavailable:
                total += 1
        return total

    def flush(self) -> int:
        """Append the store's pending records to the sink in order.

        Return 0 when the outbox was emptied, a positive number when events are left (not an
        exact count: :attr:`pending` reads that). Never raises for a sink or store failure, and
        never waits for another flusher: one already at work (a thread here, or another
        process holding the lease) delivers the records, this one's included.
        """
        if self.sink is None:
            return 0
        if not self._lock.acquire(blocking=False):
            return 1
        try:
            try:
                if not self.store.outbox_lease(self._owner, _LEASE_MS):
                    return 1
            except StoreUnavailable as exc:
                _log.warning("abuse audit outbox unreadable (%s); retried on the next flush", exc)
                return 1
            try:
                return self._drain()
            finally:
                # A release that fails is harmless: the lease runs out by itself.
                with contextlib.suppress(StoreUnavailable):
                    self.store.outbox_release(self._owner)
        finally:
            self._lock.release()

    def _drain(self) -> int:
        first = True
        while True:
            try:
                # Renewed each batch: a long flush keeps the lease, a lost one stops here.
                if not first and not self.store.outbox_lease(self._owner, _LEASE_MS):
                    return 1
                first = False
                batch = self.store.outbox_peek(_BATCH)
            except StoreUnavailable as exc:
                _log.warning("abuse audit outbox unreadable (%s); retried on the next flush", exc)
                return 1
            if not batch:
                self._done.clear()
                return 0
            for record_id, text in batch:
                try:
                    events = events_for(text, self.actor)
                except AbuseStoreUnavailable as exc:
                    # Kept, not deleted: an operator can read it; later records still wait.
                    _log.error("abuse audit outbox record %s is unreadable: %s", record_id, exc)
                    return 1
                start = self._done.get(record_id, 0)
                for i in range(start, len(events)):
                    tenant, action, target, outcome, event_id, details, actor = events[i]
                    details = {**details, "outbox_id": event_id}
                    if not self._send(tenant, action, target, outcome, details, actor):
                        if i:
                            self._done[record_id] = i
                        return len(events) - i
                try:
                    self.store.outbox_delete(record_id)
                except StoreUnavailable as exc:
                    self._done[record_id] = len(events)
                    _log.warning("abuse audit outbox delete failed (%s)", exc)
                    return 1
                self._done.pop(record_id, None)

    def _send(
        self,
        tenant: str,
        action: str,
        target: str,
        outcome: str,
        details: dict[str, Any],
        actor: str,
    ) -> bool:
        assert self.sink is not None
        try:
            with tenant_scope(tenant):
                self.sink.append(
                    action, actor=actor, target=target, outcome=outcome, details=details
                )
        except Exception as exc:
            _log.warning("abuse audit append failed (%s); the event stays in the outbox", exc)
            return False
        return True
