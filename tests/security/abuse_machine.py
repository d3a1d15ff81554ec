"""The Hypothesis state machine over abuse protection, shared by every store's run.

Random requests, failed logins, responses and probe paths from a handful of subjects, clock
jumps forward and backward, sweeps, against a small policy where everything happens within a
few dozen steps. After every step the model checks the invariants of ``docs/abuse.md``:

* a subject over the burst limit is never allowed (per window bucket, in the store's time);
* a BLOCK lasts at least its duration, whatever the clock does;
* tiers step down only after their quiet periods, one tier per period;
* allow-listed subjects are never escalated;
* every escalation has exactly one ``abuse.escalated`` audit event: in the audit log, or while
  the audit log is down (a rule takes it down and brings it back), waiting in the store's outbox,
  never both, never lost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.protocols import AuditSink
from pytest_reliability.security.abuse_protection import (
    AUDIT_ESCALATED,
    AbusePolicy,
    AbuseProtection,
    AbuseStore,
    AuthSpam,
    Decision,
    ErrorShare,
    RequestBurst,
    Scraping,
    Signal,
    Threshold,
    Tier,
    subject_label,
)
from pytest_reliability.security.abuse_protection._auditing import events_for
from pytest_reliability.tenancy import tenant_scope

BURST = Threshold(10.0, 4, Tier.THROTTLE)
HOLD = {Tier.WARN: 15_000, Tier.THROTTLE: 20_000}
LADDER = (5.0, 10.0, 20.0)

POLICY = AbusePolicy(
    detectors=(
        RequestBurst((BURST,)),
        AuthSpam(
            per_subject=Threshold(30.0, 3, Tier.THROTTLE),
            per_account=None,
            stuffing=Threshold(60.0, 3, Tier.BLOCK),
            spraying=Threshold(60.0, 3, Tier.BLOCK),
        ),
        Scraping(
            distinct_paths=Threshold(20.0, 4, Tier.WARN),
            error_share=ErrorShare(20.0, 0.5, 4, Tier.WARN),
            probe_tier=Tier.BLOCK,
        ),
    ),
    warn_hold=15.0,
    throttle_hold=20.0,
    throttle_rate=2,
    throttle_window=10.0,
    throttle_strikes=3,
    block_ladder=LADDER,
    offense_memory=100.0,
    allow_subjects=frozenset({"trusted-key"}),
    allow_networks=("10.0.0.0/8",),
)
SUBJECTS = ("192.0.2.1", "192.0.2.2", "api-key-7", "trusted-key", "10.1.2.3")
ALLOWED = {"trusted-key", "10.1.2.3"}
ACCOUNTS = ("alice", "bob", "carol", "dave")
PATHS = ("/a", "/b", "/c", "/d", "/e", "/f", "/.env", "/wp-login.php")


def _ms(clock: ManualClock) -> int:
    return int(clock.time() * 1000)


class _Switch:
    """The machine's audit log behind a switch: while ``down``, every append fails."""

    def __init__(self, sink: AuditSink) -> None:
        self.sink = sink
        self.down = False

    def append(self, action: str, **kw: Any) -> Any:
        if self.down:
            raise OSError("audit database unreachable")
        return self.sink.append(action, **kw)


class AbuseMachine(RuleBasedStateMachine):
    """Set ``make_store`` (and optionally ``make_audit``) on a subclass per store."""

    make_store: Callable[[], AbuseStore]
    make_audit: Callable[[ManualClock], AuditSink] = staticmethod(
        lambda clock: InMemoryAuditLog(clock=clock)
    )
    tenant = "machine"

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.audit = self.make_audit(self.clock)
        self.store = self.make_store()
        self.switch = _Switch(self.audit)
        self.protection = AbuseProtection(
            self.store,
            POLICY,
            clock=self.clock,
            audit=self.switch,
        )
        self.row_t: dict[str, int] = defaultdict(int)  # the newest time each row has seen
        self.allowed_in_bucket: Counter[tuple[str, int]] = Counter()
        self.block_until: dict[str, int] = {}
        self.last: dict[str, tuple[Tier, int]] = {}  # tier and until after the last step
        self.escalations: Counter[str] = Counter()

    def teardown(self) -> None:
        self.protection.close()

    # -- the rules ------------------------------------------------------------------------

    def _decide(self, signal: Signal, rows: list[str]) -> Decision:
        with tenant_scope(self.tenant):
            now = max([_ms(self.clock)] + [self.row_t[r] for r in rows])
            decision = self.protection.decide(signal)
            status = self.protection.status(signal.subject)
        for r in rows:
            self.row_t[r] = now
        subject = signal.subject
        if subject in ALLOWED:
            assert decision.allowed, decision
            assert decision.tier is Tier.NORMAL, decision
            assert status.tier is Tier.NORMAL
            return decision
        until = self.block_until.get(subject)
        if until is not None and now < until:
            assert not decision.allowed, (now, until, decision)
            assert decision.tier is Tier.BLOCK, (now, until, decision)
        if decision.escalated:
            self.escalations[subject] += 1
        assert decision.tier is not None
        self._check_step_down(subject, decision.tier, now)
        if decision.tier is Tier.BLOCK and status.until is not None:
            self.block_until[subject] = int(status.until.timestamp() * 1000)
        if signal.kind == "request" and decision.allowed:
            bucket = (subject, now // BURST.window_ms)
            self.allowed_in_bucket[bucket] += 1
            assert self.allowed_in_bucket[bucket] <= BURST.limit, "over the limit yet allowed"
        new_until = int(status.until.timestamp() * 1000) if status.until else 0
        self.last[subject] = (decision.tier, new_until)
        return decision

    def _check_step_down(self, subject: str, tier: Tier, now: int) -> None:
        before = self.last.get(subject)
        if before is None or tier >= before[0]:
            return
        old, until = before
        # Stepping from `old` down to `tier` needs the old tier's end, then a full quiet
        # period for every tier passed on the way.
        needed = until + sum(HOLD[Tier(t)] for t in range(tier + 1, old) if t in (1, 2))
        assert now >= needed, f"{subject} stepped {old.name}->{tier.name} at {now} < {needed}"

    @rule(subject=st.sampled_from(SUBJECTS), path=st.sampled_from(PATHS))
    def request(self, subject: str, path: str) -> None:
        self._decide(Signal.request(subject, path), [f"s:{subject}"])

    @rule(subject=st.sampled_from(SUBJECTS), n=st.integers(1, 8))
    def burst(self, subject: str, n: int) -> None:
        for _ in range(n):
            self._decide(Signal.request(subject, "/a"), [f"s:{subject}"])

    @rule(subject=st.sampled_from(SUBJECTS), account=st.sampled_from(ACCOUNTS))
    def failed_login(self, subject: str, account: str) -> None:
        self._decide(Signal.auth_failure(subject, account), [f"s:{subject}", f"a:{account}"])

    @rule(subject=st.sampled_from(SUBJECTS), status=st.sampled_from((200, 404, 403, 500)))
    def response(self, subject: str, status: int) -> None:
        self._decide(Signal.response(subject, status), [f"s:{subject}"])

    @rule(seconds=st.floats(0.001, 40.0))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(offset_ms=st.integers(-3, 1))
    def to_a_block_end(self, offset_ms: int) -> None:
        """Move the clock next to the end of a known block, where an off-by-one would show."""
        ends = [u for u in self.block_until.values() if u + offset_ms > _ms(self.clock)]
        if ends:
            self.clock.advance((min(ends) + offset_ms - _ms(self.clock)) / 1000)

    @rule(seconds=st.floats(0.001, 30.0))
    def clock_goes_back(self, seconds: float) -> None:
        self.clock.set(self.clock.now() - timedelta(seconds=seconds))

    @rule()
    def sweep(self) -> None:
        now = _ms(self.clock)
        self.protection.sweep()
        # The sweeper moves every expired block's subject to the sweep's time, as a decision.
        for subject, until in self.block_until.items():
            row = f"s:{subject}"
            if max(now, self.row_t[row]) >= until and self.last[subject][0] is Tier.BLOCK:
                self.row_t[row] = max(now, self.row_t[row])

    @rule()
    def audit_log_goes_down(self) -> None:
        self.switch.down = True

    @rule()
    def audit_log_comes_back(self) -> None:
        self.switch.down = False
        assert self.protection.audit.flush() == 0

    # -- the audit invariant --------------------------------------------------------------

    @invariant()
    def every_escalation_has_one_audit_event(self) -> None:
        events: Any = getattr(self.audit, "events", None)
        if events is None:
            return
        with tenant_scope(self.tenant):
            found = Counter(e.target for e in events(action=AUDIT_ESCALATED))
        waiting = Counter(
            e[2]
            for _, text in self.store.outbox_peek(10_000)
            for e in events_for(text, "machine")
            if e[1] == AUDIT_ESCALATED
        )
        if not self.switch.down:
            assert not waiting  # a working audit log took every event at its step
        expected = Counter({subject_label(s): n for s, n in self.escalations.items() if n})
        assert found + waiting == expected
