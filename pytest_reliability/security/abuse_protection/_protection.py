"""The entry point: :class:`AbuseProtection`, one ``decide(signal)`` per request or event."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, final

from pytest_reliability.clock import system_clock
from pytest_reliability.errors import (
    AllowListedSubject,
    InvalidSignal,
    StoreUnavailable,
)
from pytest_reliability.protocols import AuditSink, Clock
from pytest_reliability.security.abuse_protection._auditing import AuditOutbox, needs_record
from pytest_reliability.security.abuse_protection._detectors import Check
from pytest_reliability.security.abuse_protection._memory_store import MemoryAbuseStore
from pytest_reliability.security.abuse_protection._model import (
    _RESPONSE,
    Decision,
    Signal,
    Tier,
    _check_text,
    member_hash,
    subject_label,
)
from pytest_reliability.security.abuse_protection._policy import AbusePolicy
from pytest_reliability.security.abuse_protection._store import AbuseStore, RowKey, store_from_url
from pytest_reliability.security.abuse_protection._transition import Outcome, transition
from pytest_reliability.tenancy import current_tenant, tenant_scope

__all__ = ["AbuseProtection", "SubjectStatus"]

_log = logging.getLogger("pytest_reliability.security.abuse")

_ALLOWED = Decision(True, Tier.NORMAL, 200)
_TIERS = tuple(Tier)
# The common answers, made once: most decisions allow a subject whose tier did not change.
_QUIET = tuple(Decision(True, t, 200) for t in Tier)
_STATUS = {Tier.BLOCK: 403, Tier.THROTTLE: 429, Tier.WARN: 429, Tier.NORMAL: 429}
_BLOCK = Tier.BLOCK
_new = tuple.__new__


@final
@dataclass(frozen=True, slots=True)
class SubjectStatus:
    """What the store holds about one subject, as of ``now`` (read by the ops API)."""

    subject: str
    tier: Tier
    until: datetime | None
    offenses: int
    allow_listed: bool


@final
class AbuseProtection:
    """Detects abuse per (tenant, subject) and answers each signal with a :class:`Decision`.

    Build it with :meth:`from_url` (``memory://``, ``sqlite:///...``, ``postgresql://...``,
    ``redis://...``) or around a store. The tenant of every call is the tenant context's
    (:func:`~pytest_reliability.tenancy.tenant_scope`); none set raises ``TenantRequired``.

    When the store fails, :meth:`decide` never allows by default: a subject known blocked stays
    blocked (from a bounded local cache), anyone else gets the "store unavailable" decision (503
    with ``Retry-After``); ``on_store_failure="local"`` decides from local memory instead.
    """

    __slots__ = (
        "_blocked",
        "_blocked_lock",
        "_fallback",
        "_fast",
        "_params",
        "_plans",
        "audit",
        "clock",
        "policy",
        "store",
    )

    def __init__(
        self,
        store: AbuseStore,
        policy: AbusePolicy | None = None,
        *,
        clock: Clock | None = None,
        audit: AuditSink | None = None,
        actor: str = "abuse-protection",
    ) -> None:
        self.store = store
        self.policy = policy if policy is not None else AbusePolicy()
        self.clock = clock if clock is not None else system_clock
        self.audit = AuditOutbox(audit, actor, store)
        self._params = self.policy.params()
        self._blocked: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._blocked_lock = threading.Lock()
        self._fallback: MemoryAbuseStore | None = None
        # The in-process store answers a blocked subject's signals without the full step (see
        # decide); network stores run the whole step in their one round trip anyway.
        self._fast = store if type(store) is MemoryAbuseStore else None
        if self.policy.on_store_failure == "local":
            self._fallback = MemoryAbuseStore(max_rows=self.policy.local_fallback_subjects)
        # Deliver what an earlier instance (maybe one that died) left in the store's outbox.
        self.audit.flush()

    @classmethod
    def from_url(
        cls,
        url: str,
        policy: AbusePolicy | None = None,
        *,
        clock: Clock | None = None,
        audit: AuditSink | None = None,
        actor: str = "abuse-protection",
        **store_options: Any,
    ) -> AbuseProtection:
        """Build the store ``url`` names (options go to it) and protection around it."""
        return cls(
            store_from_url(url, **store_options), policy, clock=clock, audit=audit, actor=actor
        )

    # -- the hot path ---------------------------------------------------------------------

    def _plan(self, signal: Signal) -> tuple[list[RowKey], Sequence[Check]]:
        detectors = self.policy.detectors
        checks: Sequence[Check]
        if len(detectors) == 1:
            found = detectors[0].checks(signal)
            checks = found if isinstance(found, list | tuple) else list(found)
        else:
            checks = []
            for detector in detectors:
                checks.extend(detector.checks(signal))
        keys: list[RowKey] = [("s", signal.subject)]
        if signal.account is not None and any(c.row == 1 for c in checks):
            keys.append(("a", member_hash(signal.account)))
        return keys, checks

    def _now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    def decide(self, signal: Signal) -> Decision:
        """Record ``signal`` and decide what to do with it (see :class:`Decision`)."""
        if type(signal) is not Signal:
            raise InvalidSignal(f"decide needs a Signal, not {type(signal).__name__}")
        tenant = current_tenant()
        subject = signal.subject
        policy = self.policy
        if subject in policy.allow_subjects or (
            policy.allow_networks and policy.allow_listed(subject)
        ):
            return _ALLOWED
        now = int(self.clock.time() * 1000)
        fast = self._fast
        if fast is not None and self._blocked and signal.account is None:
            # A subject known blocked (the local cache is the hint; the store decides): a block
            # counts nothing, so its detectors' checks would be ignored and the store only
            # denies and counts the suppressed repeat. Under an attack most signals end here.
            # A step to audit (a new audit window, the block's end) goes the full way below.
            key = (tenant, subject)
            known = self._blocked.get(key)
            if known is not None:
                hit = fast.deny_blocked(tenant, subject, now, self._params)
                if hit is not None:
                    until, retry = hit
                    if known != until:
                        self._remember_block(key, until)
                    # What _decision makes of the same outcome, field for field.
                    return _new(
                        Decision,
                        (False, _BLOCK, 403, retry / 1000, None, "blocked", _BLOCK, False),
                    )
        keys, checks = self._plan(signal)
        consume = signal.kind is not _RESPONSE
        record = None if self.audit.sink is None else (self.audit.actor, "decision")
        try:
            out = self.store.apply(
                tenant, keys, now, checks, self._params, consume=consume, record=record
            )
        except StoreUnavailable as exc:
            return self._unavailable(tenant, signal, keys, checks, now, consume, exc)
        if out.allowed and out.tier == out.from_tier and not out.detector and not out.expired_until:
            # The common answer: nothing happened. No audit, no cache change, a shared object.
            if self._blocked and (tenant, subject) in self._blocked:
                with self._blocked_lock:
                    self._blocked.pop((tenant, subject), None)
            return _QUIET[out.tier]
        return self._conclude(tenant, subject, out, None)

    async def adecide(self, signal: Signal) -> Decision:
        """:meth:`decide` for asyncio code: a network store runs in a worker thread."""
        if isinstance(self.store, MemoryAbuseStore):
            return self.decide(signal)
        return await asyncio.to_thread(self.decide, signal)

    def _unavailable(
        self,
        tenant: str,
        signal: Signal,
        keys: Sequence[RowKey],
        checks: Sequence[Check],
        now: int,
        consume: bool,
        exc: Exception,
    ) -> Decision:
        _log.warning("abuse store unavailable, failing closed: %s", exc)
        with self._blocked_lock:
            until = self._blocked.get((tenant, signal.subject))
        if until is not None and now < until:
            return Decision(
                False,
                Tier.BLOCK,
                403,
                (until - now) / 1000,
                "cache",
                "blocked (known from before the store failed)",
                store_unavailable=True,
            )
        if self._fallback is not None:
            out = self._fallback.apply(tenant, keys, now, checks, self._params, consume=consume)
            decision = self._decision(out)
            return Decision(
                decision.allowed,
                decision.tier,
                decision.status,
                decision.retry_after,
                decision.detector,
                decision.reason,
                decision.escalated_from,
                store_unavailable=True,
            )
        return Decision(
            False,
            None,
            503,
            self.policy.unavailable_retry_after,
            "store",
            "abuse store unavailable: failing closed",
            store_unavailable=True,
        )

    def _decision(self, out: Outcome) -> Decision:
        tier = _TIERS[out.tier]
        if out.allowed:
            if out.tier == out.from_tier and not out.detector:
                return _QUIET[out.tier]
            fields = (
                True, tier, 200, 0.0, out.detector or None, out.reason, _TIERS[out.from_tier],
                False,
            )  # fmt: skip
        else:
            fields = (
                False,
                tier,
                _STATUS[tier],
                out.retry_ms / 1000,
                out.detector or None,
                out.reason or ("blocked" if tier is _BLOCK else "throttled"),
                _TIERS[out.from_tier],
                False,
            )
        # Every field given, so tuple.__new__ directly: the NamedTuple's own __new__ (which
        # fills in defaults) is one more Python call per denial.
        return _new(Decision, fields)

    def _conclude(
        self, tenant: str, subject: str, out: Outcome, force: tuple[Any, ...] | None
    ) -> Decision:
        key = (tenant, subject)
        if out.tier == 3:
            # Already known: a blocked subject hammering away costs no lock here.
            if self._blocked.get(key) != out.until:
                self._remember_block(key, out.until)
        elif key in self._blocked:
            with self._blocked_lock:
                self._blocked.pop(key, None)
        if self.audit.sink is not None and needs_record(out, force):
            # The store recorded the events with the step; deliver them (and any older ones).
            self.audit.flush()
        return self._decision(out)

    def _remember_block(self, key: tuple[str, str], until: int) -> None:
        with self._blocked_lock:
            self._blocked[key] = until
            self._blocked.move_to_end(key)
            while len(self._blocked) > self.policy.blocked_cache_size:
                self._blocked.popitem(last=False)

    # -- operations -----------------------------------------------------------------------

    def block(self, subject: str, duration: float, *, reason: str, actor: str) -> Decision:
        """Block ``subject`` for ``duration`` seconds by hand (an existing longer block stays).

        Allow-listed subjects are refused with :class:`AllowListedSubject`. Use it through
        the ops API (:class:`AbuseOps`), which checks the caller's permission first.
        """
        _check_text("subject", subject)
        if self.policy.allow_listed(subject):
            raise AllowListedSubject(f"subject {subject_label(subject)} is allow-listed")
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or not (1 <= duration <= 30 * 86400)
        ):
            raise InvalidSignal(f"block duration {duration!r}: need 1 s to 30 days")
        return self._force(subject, ("block", round(duration * 1000), reason[:200]), actor)

    def unblock(self, subject: str, *, reason: str, actor: str) -> Decision:
        """Return ``subject`` to NORMAL by hand and reset its counters (a false positive)."""
        _check_text("subject", subject)
        return self._force(subject, ("unblock", 0, reason[:200]), actor)

    def _force(self, subject: str, force: tuple[Any, ...], actor: str) -> Decision:
        tenant = current_tenant()
        now = self._now_ms()
        record = None if self.audit.sink is None else (actor, "ops")
        out = self.store.apply(
            tenant, [("s", subject)], now, (), self._params, force=force, record=record
        )
        return self._conclude(tenant, subject, out, force)

    def status(self, subject: str) -> SubjectStatus:
        """The subject's tier as of now (decay applied on a copy; nothing is written)."""
        _check_text("subject", subject)
        tenant = current_tenant()
        row = self.store.read(tenant, subject) or {}
        out = transition([row], self._now_ms(), (), self._params, consume=False)
        tier = Tier(out.tier)
        until = datetime.fromtimestamp(out.until / 1000, UTC) if out.until else None
        return SubjectStatus(subject, tier, until, out.offenses, self.policy.allow_listed(subject))

    def sweep(self, limit: int = 1000) -> int:
        """Record the expiry of every block that ended (up to ``limit``); return how many.

        Run it periodically so a block's expiry is audited even when its subject never comes
        back. A decision that sees the expiry first records it instead; never both. It first
        delivers the audit outbox's pending events (those of a process that died included).
        """
        self.audit.flush()
        now = self._now_ms()
        seen = 0
        record = None if self.audit.sink is None else (self.audit.actor, "sweeper")
        for tenant, subject in self.store.expired_blocks(now, limit):
            with tenant_scope(tenant):
                out = self.store.apply(
                    tenant, [("s", subject)], now, (), self._params, consume=False, record=record
                )
                self._conclude(tenant, subject, out, None)
            seen += 1 if out.expired_until else 0
        return seen

    def purge(self) -> int:
        """Delete state past its retention from the store; return how many rows."""
        return self.store.purge(self._now_ms())

    def close(self) -> None:
        """Close the store."""
        self.store.close()
