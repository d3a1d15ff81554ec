"""Every abuse store passes one conformance suite, and the shared ones hold under concurrency.

* the same random signal sequence gives the same decisions on memory, SQLite, PostgreSQL and
  Redis (so the Lua script and the SQL transaction run the same algorithm as the memory store);
* sweeping, purging, reading, tenants, ops blocks behave the same everywhere;
* no lost increments with concurrent writers (threads on SQLite and PostgreSQL);
* N processes x M requests for one subject never get more than the limit through (PostgreSQL,
  Redis);
* a store whose server is gone, or whose Redis lost its data, fails closed;
* the state machine of ``abuse_machine.py``, bounded, on SQLite, PostgreSQL and Redis.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import StoreDataLost
from pytest_reliability.security.abuse_protection import (
    AUDIT_BLOCK_EXPIRED,
    AUDIT_ESCALATED,
    AbusePolicy,
    AbuseProtection,
    AbuseStore,
    RequestBurst,
    Signal,
    Threshold,
    Tier,
    store_from_url,
)
from pytest_reliability.tenancy import tenant_scope
from tests.security import abuse_proof_worker
from tests.security.abuse_machine import POLICY, AbuseMachine

pytestmark = pytest.mark.abuse

STORES = ["memory", "sqlite", "postgres", "redis"]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(URL, store options) of each backend, isolated for this test."""
    kind = request.param
    if kind == "memory":
        return "memory://", {}
    if kind == "sqlite":
        return request.getfixturevalue("sqlite_url"), {}
    if kind == "postgres":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("pg_url"), {}
    request.applymarker(pytest.mark.redis)
    prefix = request.getfixturevalue("redis_prefix")
    url = request.getfixturevalue("redis_url")
    return url, {"prefix": prefix, "durability": "warn", "initialize": True}


@pytest.fixture
def make(
    store_url: tuple[str, dict[str, Any]], clock: ManualClock, audit: InMemoryAuditLog
) -> Iterator[Callable[[AbusePolicy], AbuseProtection]]:
    made: list[AbuseProtection] = []

    def build(policy: AbusePolicy = POLICY) -> AbuseProtection:
        url, options = store_url
        p = AbuseProtection.from_url(url, policy, clock=clock, audit=audit, **options)
        made.append(p)
        return p

    yield build
    for p in made:
        p.close()


def _script(seed: int, steps: int) -> list[tuple[str, Any]]:
    rng = random.Random(seed)
    subjects = ["192.0.2.1", "192.0.2.2", "key-1", "trusted-key"]
    out: list[tuple[str, Any]] = []
    for _ in range(steps):
        roll = rng.random()
        s = rng.choice(subjects)
        if roll < 0.45:
            out.append(("signal", Signal.request(s, rng.choice(["/a", "/b", "/c", "/d", "/e",
                                                                "/f", "/.env"]))))  # fmt: skip
        elif roll < 0.65:
            out.append(("signal", Signal.auth_failure(s, rng.choice(["al", "bo", "cy", "di"]))))
        elif roll < 0.8:
            out.append(("signal", Signal.response(s, rng.choice([200, 404, 401]))))
        elif roll < 0.9:
            out.append(("advance", rng.uniform(0.01, 25.0)))
        elif roll < 0.95:
            out.append(("back", rng.uniform(0.01, 20.0)))
        else:
            out.append(("sweep", None))
    return out


def _run(p: AbuseProtection, clock: ManualClock, script: list[tuple[str, Any]]) -> list[Any]:
    from datetime import timedelta

    answers: list[Any] = []
    for op, arg in script:
        if op == "signal":
            d = p.decide(arg)
            answers.append((d.allowed, d.tier, d.status, round(d.retry_after, 3), d.detector))
        elif op == "advance":
            clock.advance(arg)
        elif op == "back":
            clock.set(clock.now() - timedelta(seconds=arg))
        else:
            answers.append(("swept", p.sweep()))
    return answers


def test_every_store_gives_the_memory_stores_answers(
    make: Callable[[AbusePolicy], AbuseProtection], clock: ManualClock, tenant: str
) -> None:
    script = _script(1011, 400)
    got = _run(make(POLICY), clock, script)
    reference_clock = ManualClock()
    reference = AbuseProtection.from_url("memory://", POLICY, clock=reference_clock)
    expected = _run(reference, reference_clock, script)
    assert got == expected
    assert {a[1] for a in got if a[0] != "swept"} >= {Tier.NORMAL, Tier.THROTTLE, Tier.BLOCK}


def test_sweep_status_block_unblock_and_tenants_agree_on_every_store(
    make: Callable[[AbusePolicy], AbuseProtection],
    clock: ManualClock,
    audit: InMemoryAuditLog,
    tenant: str,
) -> None:
    p = make(POLICY)
    assert p.decide(Signal.request("192.0.2.9", "/.env")).tier is Tier.BLOCK
    status = p.status("192.0.2.9")
    assert (status.tier, status.offenses) == (Tier.BLOCK, 1)
    assert status.until is not None
    with tenant_scope("other-tenant"):
        assert p.status("192.0.2.9").tier is Tier.NORMAL
        assert p.decide(Signal.request("192.0.2.9", "/a")).allowed
    assert p.sweep() == 0
    clock.advance(5)
    assert p.sweep() == 1
    assert p.sweep() == 0
    assert len(audit.events(action=AUDIT_BLOCK_EXPIRED)) == 1
    assert p.block("key-9", 120, reason="abuse report #12", actor="ops:alice").status == 403
    assert p.decide(Signal.request("key-9", "/a")).tier is Tier.BLOCK
    assert p.unblock("key-9", reason="false positive", actor="ops:alice").allowed
    assert p.decide(Signal.request("key-9", "/a")).allowed
    assert [e.details["detector"] for e in audit.events(action=AUDIT_ESCALATED)] == [
        "scraping", "manual"
    ]  # fmt: skip


def test_purge_deletes_only_state_past_its_retention(
    store_url: tuple[str, dict[str, Any]], clock: ManualClock, tenant: str
) -> None:
    url, options = store_url
    store = store_from_url(url, **options)
    p = AbuseProtection(store, POLICY, clock=clock)
    try:
        p.decide(Signal.request("192.0.2.1", "/a"))
        p.decide(Signal.request("192.0.2.2", "/.env"))
        retention = POLICY.params().retention / 1000
        clock.advance(retention - 1)
        assert p.purge() == 0
        assert store.read(tenant, "192.0.2.1") is not None
        clock.advance(2)
        purged = p.purge()
        assert store.read(tenant, "192.0.2.2") is not None  # blocked: kept past its block
        if url.startswith(("sqlite", "postgresql", "memory")):
            assert purged == 1
            assert store.read(tenant, "192.0.2.1") is None
        else:
            assert purged == 0  # Redis: rows carry their own TTL (real time, not this clock)
    finally:
        p.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_no_increment_is_lost_with_concurrent_sql_writers(
    request: pytest.FixtureRequest, backend: str, tenant: str
) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    policy = AbusePolicy(
        detectors=(RequestBurst((Threshold(3600.0, 10**6, Tier.BLOCK),)),),
    )
    clock = ManualClock()
    store = store_from_url(url)
    p = AbuseProtection(store, policy, clock=clock)
    threads, per = 6, 40

    def send() -> None:
        with tenant_scope(tenant):
            for _ in range(per):
                assert p.decide(Signal.request("192.0.2.1", "/")).allowed

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    row = store.read(tenant, "192.0.2.1")
    p.close()
    assert row is not None
    assert row["c"]["rb0"][1] == threads * per


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_n_processes_never_get_more_than_the_limit_through(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    if backend == "postgres":
        url, prefix = request.getfixturevalue("pg_url"), ""
        store_from_url(url).close()  # the table, created once before the race
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        store_from_url(url, prefix=prefix, durability="warn", initialize=True).close()
    processes, per = 6, 30
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.security.abuse_proof_worker"])
    tenant = f"proof-{uuid.uuid4().hex[:8]}"
    outs = [tmp_path / f"allowed-{i}" for i in range(processes)]
    procs = [
        ctx.Process(target=abuse_proof_worker.work, args=(url, prefix, tenant, per, str(out)))
        for out in outs
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    allowed = sum(int(out.read_text()) for out in outs)
    # Exactly the limit: never more (the proof), and not fewer (nothing lost or double-counted).
    assert allowed == abuse_proof_worker.LIMIT


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_server_that_is_gone_fails_closed_with_503(kind: str, tenant: str) -> None:
    url = (
        "postgresql://postgres@127.0.0.1:1/test" if kind == "postgres" else "redis://127.0.0.1:1/0"
    )
    options: dict[str, Any] = (
        {"ensure_schema": False, "timeout": 2}
        if kind == "postgres"
        else {"durability": "warn", "socket_timeout": 0.5}
    )
    p = AbuseProtection.from_url(url, POLICY, clock=ManualClock(), **options)
    d = p.decide(Signal.request("192.0.2.1", "/"))
    p.close()
    assert (d.allowed, d.status, d.store_unavailable) == (False, 503, True)


@pytest.mark.redis
def test_a_redis_that_lost_its_data_fails_closed_until_reinitialised(
    redis_url: str, redis_prefix: str, tenant: str
) -> None:
    import redis

    options = {"prefix": redis_prefix, "durability": "warn"}
    with pytest.raises(StoreDataLost):
        AbuseProtection.from_url(redis_url, POLICY, **options).store.apply(  # type: ignore[call-arg]
            tenant, [("s", "x")], 0, (), POLICY.params()
        )
    p = AbuseProtection.from_url(redis_url, POLICY, initialize=True, **options)
    assert p.decide(Signal.request("192.0.2.1", "/.env")).tier is Tier.BLOCK
    client = redis.Redis.from_url(redis_url)
    client.delete(*client.keys(f"{redis_prefix}*"))  # FLUSHALL, for this store only
    client.close()
    d = p.decide(Signal.request("192.0.2.1", "/"))
    assert (d.status, d.tier, d.store_unavailable) == (403, Tier.BLOCK, True)  # the cache
    assert p.decide(Signal.request("192.0.2.2", "/")).status == 503
    p.close()


# -- the state machine, bounded, on the shared stores --------------------------------------


def _machine(store: AbuseStore) -> type[AbuseMachine]:
    class SharedStoreMachine(AbuseMachine):
        make_store = staticmethod(lambda: store)

        def __init__(self) -> None:
            super().__init__()
            self.tenant = f"m-{uuid.uuid4().hex[:10]}"  # each example its own tenant

        def teardown(self) -> None:
            pass  # the store outlives the examples

    return SharedStoreMachine


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_the_state_machine_holds_on_a_shared_store(
    request: pytest.FixtureRequest, kind: str
) -> None:
    if kind == "sqlite":
        store = store_from_url(request.getfixturevalue("sqlite_url"))
    elif kind == "postgres":
        request.applymarker(pytest.mark.postgres)
        store = store_from_url(request.getfixturevalue("pg_url"))
    else:
        request.applymarker(pytest.mark.redis)
        store = store_from_url(
            request.getfixturevalue("redis_url"),
            prefix=request.getfixturevalue("redis_prefix"),
            durability="warn",
            initialize=True,
        )
    try:
        machine = _machine(store)
        machine.TestCase.settings = settings(
            max_examples=12, stateful_step_count=25, deadline=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        machine.TestCase().runTest()
    finally:
        store.close()


@pytest.mark.redis
def test_a_blocked_row_gone_by_ttl_leaves_no_entry_for_the_sweeper(
    redis_url: str, redis_prefix: str, clock: ManualClock, tenant: str
) -> None:
    store = store_from_url(redis_url, prefix=redis_prefix, durability="warn", initialize=True)
    p = AbuseProtection(store, POLICY, clock=clock)
    assert p.decide(Signal.request("192.0.2.9", "/.env")).tier is Tier.BLOCK
    client = store.client  # type: ignore[attr-defined]
    client.delete(*list(client.scan_iter(match=f"{redis_prefix}abuse:*")))  # the TTL
    clock.advance(10)
    assert store.expired_blocks(int(clock.time() * 1000), 10) == [(tenant, "192.0.2.9")]
    assert p.sweep() == 0  # nothing to record: the row is gone, and so is its index entry
    assert store.expired_blocks(int(clock.time() * 1000), 10) == []
    p.close()
