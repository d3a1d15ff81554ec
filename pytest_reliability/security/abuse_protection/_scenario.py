"""Abuse scenarios for tests: drive signals on a manual clock and assert the tier sequence.

The ``abuse`` fixture is a thin shell over :class:`AbuseScenario`; a test (or a harness) can use
the class directly. Every signal goes through a real :class:`AbuseProtection` on the store the
URL names, with a :class:`~pytest_reliability.clock.ManualClock` (``advance`` moves time, no
test sleeps) and an in-memory audit log, all in a tenant of the scenario's own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, final

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.security.abuse_protection._auditing import AUDIT_ESCALATED
from pytest_reliability.security.abuse_protection._detectors import DEFAULT_PROBE_PATHS
from pytest_reliability.security.abuse_protection._model import Decision, Signal, Tier
from pytest_reliability.security.abuse_protection._policy import AbusePolicy
from pytest_reliability.security.abuse_protection._protection import AbuseProtection
from pytest_reliability.tenancy import tenant_scope

__all__ = ["AbuseScenario"]

Recorder = Callable[[Decision], None]


@final
class AbuseScenario:
    """A protection under test, its clock, its audit log and what every subject went through.

    ``tiers(subject)`` is the sequence of tiers the subject's decisions showed (repeats
    collapsed); :meth:`assert_tiers` compares it with the expected one.
    """

    __slots__ = (
        "_history",
        "_options",
        "_recorder",
        "_url",
        "audit",
        "clock",
        "protection",
        "signals",
        "tenant",
    )

    def __init__(
        self,
        url: str = "memory://",
        policy: AbusePolicy | None = None,
        *,
        tenant: str = "abuse-scenario",
        recorder: Recorder | None = None,
        **store_options: Any,
    ) -> None:
        self.clock = ManualClock()
        self.audit = InMemoryAuditLog(clock=self.clock)
        self.tenant = tenant
        self._url, self._options = url, store_options
        self._recorder = recorder
        self._history: dict[str, list[Tier | None]] = defaultdict(list)
        self.signals = 0
        self.protection = self._build(policy)

    def _build(self, policy: AbusePolicy | None) -> AbuseProtection:
        return AbuseProtection.from_url(self._url, policy, clock=self.clock, audit=self.audit,
                                        **self._options)  # fmt: skip

    def use(self, policy: AbusePolicy) -> None:
        """Decide with ``policy`` from now on (same store, same clock)."""
        self.protection.close()
        self.protection = self._build(policy)

    # -- driving --------------------------------------------------------------------------

    def send(self, signal: Signal) -> Decision:
        """Decide one signal in the scenario's tenant and record the answer."""
        with tenant_scope(self.tenant):
            decision = self.protection.decide(signal)
        self.signals += 1
        self._history[signal.subject].append(decision.tier)
        if self._recorder is not None:
            self._recorder(decision)
        return decision

    def advance(self, seconds: float) -> None:
        """Move the scenario's clock forward."""
        self.clock.advance(seconds)

    def burst(
        self, subject: str, requests: int, *, path: str = "/", every: float = 0.0
    ) -> list[Decision]:
        """``requests`` requests from ``subject``, ``every`` seconds apart."""
        out = []
        for _ in range(requests):
            out.append(self.send(Signal.request(subject, path)))
            if every:
                self.advance(every)
        return out

    def stuffing(self, subject: str, accounts: int) -> list[Decision]:
        """Credential stuffing: one failed login each for ``accounts`` accounts."""
        return [self.send(Signal.auth_failure(subject, f"user{i}@stuffing.test"))
                for i in range(accounts)]  # fmt: skip

    def spraying(self, account: str, subjects: Iterable[str]) -> list[Decision]:
        """Password spraying: one failed login on ``account`` from each subject."""
        return [self.send(Signal.auth_failure(s, account)) for s in subjects]

    def probe(self, subject: str, paths: Sequence[str] = DEFAULT_PROBE_PATHS[:3]) -> list[Decision]:
        """Requests for probe paths (``/.env``, ``/.git/config``...)."""
        return [self.send(Signal.request(subject, p)) for p in paths]

    # -- asserting ------------------------------------------------------------------------

    def tiers(self, subject: str) -> list[Tier | None]:
        """The tiers ``subject``'s decisions showed, in order, repeats collapsed."""
        out: list[Tier | None] = []
        for tier in self._history.get(subject, ()):
            if not out or out[-1] is not tier:
                out.append(tier)
        return out

    def assert_tiers(self, subject: str, expected: Sequence[Tier | str]) -> None:
        """Fail unless ``subject`` went through exactly ``expected`` (``"NORMAL"``, ...)."""
        want = [Tier.parse(t) for t in expected]
        got = self.tiers(subject)
        if got != want:

            def names(tiers: Sequence[Tier | None]) -> str:
                return " -> ".join(t.name if t is not None else "UNKNOWN" for t in tiers)

            raise AssertionError(f"{subject}: tiers {names(got)}, expected {names(want)}")

    def status(self, subject: str) -> Tier:
        """The subject's tier now."""
        with tenant_scope(self.tenant):
            return self.protection.status(subject).tier

    def escalations(self) -> int:
        """Escalation events in the audit log so far."""
        with tenant_scope(self.tenant):
            return len(self.audit.events(action=AUDIT_ESCALATED))

    def decisions_by_tier(self) -> dict[str, int]:
        """How many decisions showed each tier (``UNKNOWN``: the store could not say)."""
        counts: Counter[str] = Counter()
        for history in self._history.values():
            counts.update(t.name if t is not None else "UNKNOWN" for t in history)
        return dict(counts)

    def close(self) -> None:
        """Close the protection's store."""
        self.protection.close()
