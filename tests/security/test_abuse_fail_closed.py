"""Fail closed: a store that cannot answer never lets a subject through by default.

The broken store here is the real memory store behind a switch that makes every call raise
``AbuseStoreUnavailable``, as the SQL and Redis stores do when their server is gone (those
are proven on the real servers in ``test_abuse_stores.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import AbuseStoreUnavailable
from pytest_reliability.security.abuse_protection import (
    AbusePolicy,
    AbuseProtection,
    MemoryAbuseStore,
    RequestBurst,
    Scraping,
    Signal,
    Threshold,
    Tier,
)

pytestmark = pytest.mark.abuse
IP = "203.0.113.5"


class Breakable:
    """The memory store, until ``down`` is set."""

    def __init__(self) -> None:
        self.inner = MemoryAbuseStore()
        self.down = False

    def apply(self, tenant: str, keys: Sequence[Any], now_ms: int, *a: Any, **kw: Any) -> Any:
        if self.down:
            raise AbuseStoreUnavailable("store unreachable")
        return self.inner.apply(tenant, keys, now_ms, *a, **kw)

    def read(self, tenant: str, subject: str) -> Any:
        if self.down:
            raise AbuseStoreUnavailable("store unreachable")
        return self.inner.read(tenant, subject)

    def expired_blocks(self, now_ms: int, limit: int) -> Any:
        return self.inner.expired_blocks(now_ms, limit)

    def purge(self, now_ms: int) -> int:
        return self.inner.purge(now_ms)

    def close(self) -> None:
        self.inner.close()


def policy(**kw: Any) -> AbusePolicy:
    return AbusePolicy(detectors=(Scraping(), RequestBurst((Threshold(60, 3),))), **kw)


def test_a_store_failure_is_a_503_with_retry_after_never_an_allow(
    clock: ManualClock, tenant: str
) -> None:
    store = Breakable()
    p = AbuseProtection(store, policy(unavailable_retry_after=7.0), clock=clock)
    store.down = True
    d = p.decide(Signal.request(IP, "/"))
    assert (d.allowed, d.status, d.tier, d.store_unavailable) == (False, 503, None, True)
    assert d.retry_after == 7.0
    assert d.retry_after_header() == "7"
    assert asyncio.run(p.adecide(Signal.request(IP, "/"))).status == 503


def test_a_subject_known_blocked_stays_blocked_from_the_local_cache(
    clock: ManualClock, tenant: str
) -> None:
    store = Breakable()
    p = AbuseProtection(store, policy(block_ladder=(60.0,)), clock=clock)
    assert p.decide(Signal.request(IP, "/.env")).tier is Tier.BLOCK
    store.down = True
    clock.advance(30)
    d = p.decide(Signal.request(IP, "/"))
    assert (d.status, d.tier, d.store_unavailable) == (403, Tier.BLOCK, True)
    assert d.retry_after == pytest.approx(30.0)
    clock.advance(30)  # the block is over; with the store still down: 503, not allowed
    assert p.decide(Signal.request(IP, "/")).status == 503


def test_the_local_fallback_decides_from_memory_while_the_store_is_down(
    clock: ManualClock, tenant: str
) -> None:
    store = Breakable()
    p = AbuseProtection(store, policy(on_store_failure="local"), clock=clock)
    store.down = True
    decisions = [p.decide(Signal.request(IP, "/")) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert all(d.store_unavailable for d in decisions)
    assert decisions[-1].status == 429
    assert p.decide(Signal.request("203.0.113.6", "/.env")).status == 403
    store.down = False
    assert p.decide(Signal.request(IP, "/")).allowed  # the shared store had seen nothing
