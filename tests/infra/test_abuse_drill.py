"""Abuse protection in the outage drills: ``decide`` fails closed while its containerised store
is faulted (503 with ``Retry-After``, a known blocked subject still 403 from the local cache),
follows the store after recovery, and a fail-open decision is caught as a violation.

The quick drill (``tests/infra/test_chaos_drills.py``) runs the abuse probe on a paused
PostgreSQL; ``ci/chaos-validation.sh`` runs it against every store and fault.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.chaos_drills import MODULES, Scenario, full_scenarios, quick_scenarios, run_scenario
from harness.drills.history import AbuseDecision, Window, check_abuse_decisions
from harness.drills.probes import AbuseProbe
from pytest_reliability.chaos_infra import ContainerPool
from pytest_reliability.errors import DockerUnavailable
from pytest_reliability.security import AbuseProtection, Decision, Signal, Tier

pytestmark = [pytest.mark.chaos]

WINDOW = Window(fault_at=10.0, undo_at=12.0, undone_at=12.1)
THROUGH = "subjects let through an unreadable abuse store"


@pytest.fixture(scope="module")
def pool() -> Iterator[ContainerPool]:
    try:
        pool = ContainerPool()
    except DockerUnavailable as exc:
        pytest.skip(f"containers: {exc.reason}")
    yield pool
    pool.close()


def _d(
    start: float,
    subject: str,
    allowed: bool,
    *,
    unavailable: bool = False,
    blocked: bool = False,
    took: float = 0.05,
) -> AbuseDecision:
    return AbuseDecision(start, start + took, subject, allowed, unavailable, blocked)


def test_a_clean_abuse_history_has_no_violation() -> None:
    decisions = [
        _d(9.0, "a", True),
        _d(9.1, "blocked", False, blocked=True),
        _d(10.2, "b", False, unavailable=True),  # the 503 while the store is unreadable
        _d(10.3, "blocked", False, unavailable=True, blocked=True),  # 403 from the cache
        _d(10.5, "c", True),  # answered before the fault reached it: within the bound
        _d(11.9, "d", True, took=0.4),  # answered once the store was back
        _d(12.5, "e", True),
    ]
    verdict = check_abuse_decisions(decisions, WINDOW, bound_s=1.0)
    assert dict(verdict.violations) == {}
    assert (verdict.requests, verdict.acknowledged, verdict.refused) == (7, 4, 3)
    assert verdict.keys == 6


def test_a_local_fallback_that_allows_while_the_store_is_unreadable_is_a_violation() -> None:
    # Flagged at any time: the decision itself says the store could not be read.
    decisions = [_d(10.05, "a", True, unavailable=True), _d(12.5, "b", True, unavailable=True)]
    verdict = check_abuse_decisions(decisions, WINDOW, bound_s=1.0)
    assert verdict.violations["abuse"] == [f"{THROUGH}: 2 (a, b)"]


def test_an_allow_the_store_could_not_have_given_is_a_violation() -> None:
    # A decide that swallows the store's error and allows, without saying so; an allow that
    # reached the caller within the bound may be the store's last answer before the fault.
    decisions = [_d(10.4, "w", True, took=0.5), _d(11.2, "x", True), _d(10.9, "y", True, took=0.7)]
    verdict = check_abuse_decisions(decisions, WINDOW, bound_s=1.0)
    assert verdict.violations["abuse"] == [f"{THROUGH}: 2 (x, y)"]
    assert verdict.acknowledged == 3


def test_a_blocked_subject_let_through_is_a_violation_at_any_time() -> None:
    decisions = [_d(5.0, "blocked", True, blocked=True), _d(13.0, "blocked", True, blocked=True)]
    verdict = check_abuse_decisions(decisions, WINDOW, bound_s=1.0)
    assert verdict.violations["abuse"] == ["blocked subjects let through: 1 (blocked)"]


def test_abuse_is_drilled_on_every_store_and_in_the_quick_set() -> None:
    assert "abuse" in MODULES["postgres"]
    assert "abuse" in MODULES["redis"]
    assert all("abuse" in s.drilled() for s in full_scenarios())
    assert all("abuse" in s.drilled() for s in quick_scenarios())


@pytest.mark.docker
@pytest.mark.slow
def test_abuse_on_a_killed_redis_fails_closed_and_follows_the_reinitialised_store(
    pool: ContainerPool,
) -> None:
    # The drill's Redis keeps nothing on disk: after the restart the store lost its marker and
    # every decision fails closed until the operator re-initialises it; then it follows the store.
    (result,) = run_scenario(pool, Scenario("redis", "kill", ("abuse",), workers=1, tail_s=0.3))
    assert result.violations == (), result
    assert result.time_to_fail_closed_s is not None
    assert result.time_to_fail_closed_s <= 1.0
    assert result.time_to_recover_s is not None
    assert result.histories_checked > 0


@pytest.mark.docker
@pytest.mark.slow
def test_a_drill_catches_a_policy_that_falls_back_to_local_decisions(
    pool: ContainerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The documented, bounded local fallback: each instance counts alone and allows meanwhile.
    monkeypatch.setattr(AbuseProbe, "on_store_failure", "local")
    # Redis: every call is cut at its 0.5 s socket timeout, so several land inside the fault
    # (on PostgreSQL a call after a cut one waits libpq's 2 s connect timeout).
    # Held 3 s: several store calls time out inside the fault whatever the machine's load (with
    # the 1 s minimum, the last call could outlive the fault and be answered by the store).
    scenario = Scenario(
        "redis", "pause", ("abuse",), workers=1, tail_s=0.3, hold_s=3.0, expected_failed=("abuse",)
    )
    (result,) = run_scenario(pool, scenario)
    assert result.passed is False
    assert result.expected == "failed"
    assert any(v.startswith(f"{THROUGH}: ") for v in result.violations), result
    assert "bad: allowed while its store was unavailable (fail-open)" in result.violations
    # The known blocked subject still came from the cache, ahead of the fallback.
    assert not any(v.startswith("blocked subjects let through") for v in result.violations)


@pytest.mark.docker
@pytest.mark.slow
def test_a_drill_catches_a_decide_that_allows_on_a_store_error(
    pool: ContainerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    decide = AbuseProtection.decide

    def fail_open(self: AbuseProtection, signal: Signal) -> Decision:
        decision = decide(self, signal)
        return Decision(True, Tier.NORMAL, 200) if decision.store_unavailable else decision

    monkeypatch.setattr(AbuseProtection, "decide", fail_open)
    # Redis: every call is cut at its 0.5 s socket timeout, so allows land inside the fault.
    # Held 3 s: several store calls time out inside the fault whatever the machine's load (with
    # the 1 s minimum, the last call could outlive the fault and be answered by the store).
    scenario = Scenario(
        "redis", "pause", ("abuse",), workers=1, tail_s=0.3, hold_s=3.0, expected_failed=("abuse",)
    )
    (result,) = run_scenario(pool, scenario)
    assert result.passed is False
    assert result.expected == "failed"
    assert result.time_to_fail_closed_s is None
    assert "did not fail closed while the store was faulted" in result.violations
    assert any(v.startswith(f"{THROUGH}: ") for v in result.violations), result
    assert any(v.startswith("blocked subjects let through: 1") for v in result.violations)
