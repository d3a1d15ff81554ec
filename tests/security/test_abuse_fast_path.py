"""The blocked subject's short step in memory decides and stores exactly what the full step does.

A protection on the memory store answers a signal of a subject it knows blocked with
``MemoryAbuseStore.deny_blocked`` instead of the whole transition. These tests run the same
random signal sequences and clock moves through two protections, one with that short step and
one without it (its private ``_fast`` switched off), and require equal decisions, equal stored
rows, equal local caches and equal audit trails after every step.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.security.abuse_protection import (
    AUDIT_BLOCK_EXPIRED,
    AUDIT_ENFORCED,
    AbusePolicy,
    AbuseProtection,
    AuthSpam,
    ErrorShare,
    MemoryAbuseStore,
    RequestBurst,
    Scraping,
    Signal,
    Threshold,
    Tier,
)
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.abuse

POLICY = AbusePolicy(
    detectors=(
        RequestBurst((Threshold(10.0, 4, Tier.THROTTLE), Threshold(30.0, 9, Tier.BLOCK))),
        AuthSpam(
            per_subject=Threshold(30.0, 3, Tier.THROTTLE),
            per_account=Threshold(30.0, 4, Tier.THROTTLE),
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
    block_ladder=(8.0, 30.0),
    # Shorter than the second block, so that the offense memory runs out while a subject is
    # still blocked; the audit window turns over during a block. Both are steps the short
    # one must get right.
    offense_memory=10.0,
    audit_window=4.0,
    # Two: a subject evicted from the local cache takes the full step, one still in it whose
    # block an operator lengthened has a stale end there.
    blocked_cache_size=2,
    allow_subjects=frozenset({"trusted-key"}),
)
SUBJECTS = ("192.0.2.1", "192.0.2.2", "api-key-7", "trusted-key")
PATHS = ("/a", "/b", "/c", "/d", "/e", "/.env")
ACCOUNTS = ("alice", "bob", "carol")

subjects = st.sampled_from(SUBJECTS)
# Bursts (with time passing between their requests) and probe paths come often, so that most
# examples see subjects blocked for a while.
steps = st.one_of(
    st.tuples(st.just("request"), subjects, st.sampled_from(PATHS)),
    st.tuples(st.just("burst"), subjects, st.integers(1, 20), st.integers(0, 1_500)),
    st.tuples(st.just("burst"), subjects, st.integers(1, 20), st.integers(0, 1_500)),
    st.tuples(st.just("request"), subjects, st.just("/.env")),
    st.tuples(st.just("response"), subjects, st.sampled_from((200, 404, 403))),
    st.tuples(st.just("login"), subjects, st.sampled_from(ACCOUNTS)),
    st.tuples(st.just("advance"), st.integers(1, 20_000)),
    st.tuples(st.just("advance"), st.integers(1, 1_500)),
    st.tuples(st.just("back"), st.integers(1, 8_000)),
    st.tuples(st.just("to_block_end"), st.integers(-3, 1)),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("sweep_elsewhere")),
    st.tuples(st.just("block"), subjects, st.integers(1, 90)),
    st.tuples(st.just("unblock"), subjects),
)


class Counting:
    """The memory store's short step, counting how often it answered (it still does the work)."""

    def __init__(self, store: MemoryAbuseStore) -> None:
        self.store = store
        self.hits = 0

    def deny_blocked(self, *args: Any) -> tuple[int, int] | None:
        found = self.store.deny_blocked(*args)
        self.hits += found is not None
        return found


class Side:
    """One side of the comparison: a store, the protection that decides, and a second one on
    the same store for the operators and a sweeper (its blocks, unblocks and sweeps leave the
    first one's local cache stale, as an ops API or a sweeper beside the middleware does)."""

    def __init__(self, clock: ManualClock, short: bool) -> None:
        store = MemoryAbuseStore()
        audit = InMemoryAuditLog(clock=clock)
        self.store = store
        self.protection = AbuseProtection(store, POLICY, clock=clock, audit=audit)
        self.ops = AbuseProtection(store, POLICY, clock=clock, audit=audit)
        self.counting = Counting(store)
        # The private switch: the short step counted on one side, never taken on the other.
        self.protection._fast = self.counting if short else None  # type: ignore[assignment]
        self.ops._fast = self.counting if short else None  # type: ignore[assignment]


def _trail(protection: AbuseProtection) -> list[tuple[Any, ...]]:
    # Outbox ids are random per store; everything else must match.
    audit = protection.audit.sink
    assert isinstance(audit, InMemoryAuditLog)
    return [
        (
            e.action,
            e.actor,
            e.target,
            e.outcome,
            {k: v for k, v in e.details.items() if k != "outbox_id"},
        )
        for e in audit.events()
    ]


def _step(side: Side, step: tuple[Any, ...]) -> Any:
    kind = step[0]
    protection = side.protection
    if kind == "request":
        return protection.decide(Signal.request(step[1], step[2]))
    if kind == "response":
        return protection.decide(Signal.response(step[1], step[2]))
    if kind == "login":
        return protection.decide(Signal.auth_failure(step[1], step[2]))
    if kind == "sweep":
        return protection.sweep()
    if kind == "sweep_elsewhere":
        # A sweeper of its own: the blocks it sees end stay in the deciding one's local cache.
        return side.ops.sweep()
    if kind == "block":
        if step[1] == "trusted-key":
            return None
        return side.ops.block(step[1], step[2], reason="test", actor="ops")
    if kind == "unblock":
        return side.ops.unblock(step[1], reason="test", actor="ops")
    raise AssertionError(kind)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(steps, min_size=1, max_size=60))
# The offense memory runs out during a block an operator lengthened, between two denials of
# one audit window (the second is a short step that must forget the offense).
@example(
    [
        ("request", "192.0.2.1", "/.env"),
        ("block", "192.0.2.1", 90),
        ("advance", 5000),
        ("burst", "192.0.2.1", 20, 1000),
    ]
)
# The clock goes back during a block: the short step runs at the row's newest time.
@example(
    [
        ("request", "192.0.2.1", "/.env"),
        ("advance", 2000),
        ("request", "192.0.2.1", "/a"),
        ("back", 1500),
        ("request", "192.0.2.1", "/a"),
    ]
)
# A sweeper elsewhere sees a block end; the deciding protection still has it in its cache, and
# its last denial was in the same audit window.
@example(
    [
        ("advance", 500),
        ("request", "192.0.2.1", "/.env"),
        ("advance", 7700),
        ("request", "192.0.2.1", "/a"),
        ("to_block_end", 0),
        ("sweep_elsewhere",),
        ("request", "192.0.2.1", "/a"),
    ]
)
# The last millisecond of a block, then its end, within one audit window.
@example(
    [
        ("request", "192.0.2.1", "/.env"),
        ("advance", 7000),
        ("burst", "192.0.2.1", 3, 999),
        ("to_block_end", 0),
        ("request", "192.0.2.1", "/a"),
    ]
)
def test_the_short_step_decides_and_stores_what_the_full_step_does(
    plan: list[tuple[Any, ...]],
) -> None:
    clock = ManualClock()
    fast, full = Side(clock, short=True), Side(clock, short=False)
    # A burst is its requests and the time between them, each compared on its own: a later
    # full step could otherwise hide what a short one got wrong.
    flat: list[tuple[Any, ...]] = []
    for step in plan:
        if step[0] == "burst":
            for _ in range(step[2]):
                flat += [("request", step[1], "/a"), ("advance", step[3])]
        else:
            flat.append(step)
    with tenant_scope("acme"):
        for step in flat:
            if step[0] == "advance":
                clock.advance(step[1] / 1000)
                continue
            if step[0] == "back":
                clock.set(clock.now() - timedelta(milliseconds=step[1]))
                continue
            if step[0] == "to_block_end":
                # Next to the end of a block, where the short step must give way to the full one.
                now = round(clock.time() * 1000)
                ends = [u + step[1] for u in full.store._blocked.values() if u + step[1] > now]
                if ends:
                    clock.advance((min(ends) - now) / 1000)
                continue
            assert _step(fast, step) == _step(full, step), step
            assert fast.store._rows == full.store._rows, step
            assert fast.store._blocked == full.store._blocked, step
            assert fast.protection._blocked == full.protection._blocked, step
            assert _trail(fast.protection) == _trail(full.protection), step
        for subject in SUBJECTS:
            assert fast.protection.status(subject) == full.protection.status(subject)
    event(f"short steps taken: {'some' if fast.counting.hits else 'none'}")


def test_a_blocked_subject_is_denied_by_the_short_step_and_its_repeats_still_count() -> None:
    clock = ManualClock()
    audit = InMemoryAuditLog(clock=clock)
    policy = AbusePolicy(
        detectors=(RequestBurst((Threshold(10.0, 3, Tier.BLOCK),)),),
        block_ladder=(600.0,),
        audit_window=60.0,
    )
    protection = AbuseProtection(MemoryAbuseStore(), policy, clock=clock, audit=audit)
    assert isinstance(protection.store, MemoryAbuseStore)
    counting = Counting(protection.store)
    protection._fast = counting  # type: ignore[assignment]
    ip = "203.0.113.9"
    with tenant_scope("acme"):
        first = [protection.decide(Signal.request(ip, "/")) for _ in range(4)]
        assert [d.allowed for d in first] == [True, True, True, False]
        assert first[-1].escalated
        # The clock's start is 2025-01-01T00:00:00Z: the audit window turns at each minute.
        denials = []
        for _ in range(50):
            clock.advance(0.1)
            denials.append(protection.decide(Signal.request(ip, "/")))
        assert counting.hits == 50
        assert all(
            (d.allowed, d.tier, d.status, d.detector, d.reason, d.escalated_from)
            == (False, Tier.BLOCK, 403, None, "blocked", Tier.BLOCK)
            for d in denials
        )
        assert denials[-1].retry_after == pytest.approx(600 - 5.0)
        assert denials[0].retry_after_header() == "600"
        # The next audit window's first denial is recorded, by the full step, with the count of
        # the repeats the short step suppressed.
        clock.advance(60)
        protection.decide(Signal.request(ip, "/"))
        assert counting.hits == 50
        enforced = audit.events(action=AUDIT_ENFORCED)
        assert [e.details["suppressed_before"] for e in enforced] == [0, 50]
        # The block's end is seen once, by the full step: the short step never answers it.
        clock.advance(600)
        after = protection.decide(Signal.request(ip, "/"))
        assert counting.hits == 50
        assert after.tier is Tier.THROTTLE
        assert len(audit.events(action=AUDIT_BLOCK_EXPIRED)) == 1
