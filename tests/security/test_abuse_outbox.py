"""Abuse protection's audit events are never lost: the transactional outbox.

* a process SIGKILLed after a decision committed while its audit log was down leaves the
  events in the store; a fresh process delivers them, each exactly once (SQLite, PostgreSQL,
  Redis);
* on every store: an audited step writes its record with the step; the records wait while the
  audit log is down and are delivered in order once it is back, each once; a record whose
  second event failed does not repeat its first;
* the outbox cap: an audited step at the cap is refused whole and fails closed (a block stays
  in force, its expiry is recorded after the outbox drained), quiet steps go on;
* one flusher at a time (the lease); a decision on Redis stays one round trip;
* a damaged record is a typed error (Hypothesis), kept, and holds the later ones back;
* the duplicate window, shown: an append whose delete did not happen is repeated by a fresh
  process (same ``outbox_id``), never by the process that made it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_reliability.audit import AuditLog, InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.db import create_schema, make_engine
from pytest_reliability.errors import AbuseStoreUnavailable
from pytest_reliability.security.abuse_protection import (
    AUDIT_BLOCK_EXPIRED,
    AUDIT_ENFORCED,
    AUDIT_ESCALATED,
    AUDIT_UNBLOCKED,
    AbusePolicy,
    AbuseProtection,
    MemoryAbuseStore,
    Scraping,
    Signal,
    Tier,
    store_from_url,
)
from pytest_reliability.security.abuse_protection._auditing import events_for
from pytest_reliability.tenancy import tenant_scope
from tests.security import abuse_outbox_worker as worker

pytestmark = pytest.mark.abuse

ROOT = Path(__file__).resolve().parents[2]
POLICY = AbusePolicy(detectors=(Scraping(),), block_ladder=(60.0,))
IP, OTHER = "192.0.2.10", "192.0.2.11"


def _store(request: pytest.FixtureRequest, kind: str) -> tuple[str, dict[str, Any]]:
    if kind == "memory":
        return "memory://", {}
    if kind == "sqlite":
        return request.getfixturevalue("sqlite_url"), {}
    if kind == "postgres":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("pg_url"), {}
    request.applymarker(pytest.mark.redis)
    prefix = request.getfixturevalue("redis_prefix")
    return request.getfixturevalue("redis_url"), {"prefix": prefix, "durability": "warn"}


class Switch:
    """A real in-memory audit log behind a switch: while ``down``, every append fails."""

    def __init__(self, log: InMemoryAuditLog) -> None:
        self.log = log
        self.down = False
        self.fail_after: int | None = None  # fail once this many more appends went through

    def append(self, action: str, **kw: Any) -> Any:
        if self.fail_after is not None:
            if self.fail_after == 0:
                self.fail_after = None
                self.down = True
            else:
                self.fail_after -= 1
        if self.down:
            raise OSError("audit database unreachable")
        return self.log.append(action, **kw)


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def build(
    request: pytest.FixtureRequest, clock: ManualClock, tenant: str
) -> Iterator[Callable[..., AbuseProtection]]:
    """``build(sink, **store_options)``: a protection on this test's store of each kind."""
    url, options = _store(request, request.param)
    if url.startswith("redis"):
        store_from_url(url, initialize=True, **options).close()
    made: list[AbuseProtection] = []

    def make(sink: Any, **more: Any) -> AbuseProtection:
        p = AbuseProtection.from_url(url, POLICY, clock=clock, audit=sink, **options, **more)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def _actions(log: InMemoryAuditLog) -> list[tuple[str, str]]:
    return [(e.action, e.target) for e in log.events()]


def test_events_wait_in_the_store_and_arrive_in_order_once(
    build: Callable[..., AbuseProtection], audit: InMemoryAuditLog, clock: ManualClock
) -> None:
    sink = Switch(audit)
    p = build(sink)
    sink.down = True
    assert p.decide(Signal.request(IP, "/.env")).tier is Tier.BLOCK
    assert p.decide(Signal.request(OTHER, "/.env")).tier is Tier.BLOCK
    assert p.audit.pending == 4
    assert audit.events() == []
    clock.advance(61)
    assert p.sweep() == 2  # the expiries are recorded while the audit log is still down
    assert p.audit.pending == 6
    sink.down = False
    assert p.sweep() == 0  # flushes first
    assert p.audit.pending == 0
    assert _actions(audit) == [
        (AUDIT_ESCALATED, IP),
        (AUDIT_ENFORCED, IP),
        (AUDIT_ESCALATED, OTHER),
        (AUDIT_ENFORCED, OTHER),
        (AUDIT_BLOCK_EXPIRED, IP),
        (AUDIT_BLOCK_EXPIRED, OTHER),
    ]
    ids = [e.details["outbox_id"] for e in audit.events()]
    assert len(set(ids)) == 6
    p.sweep()
    assert len(audit.events()) == 6  # nothing delivered twice


def test_ops_block_and_unblock_are_recorded_with_their_step(
    build: Callable[..., AbuseProtection], audit: InMemoryAuditLog
) -> None:
    sink = Switch(audit)
    p = build(sink)
    sink.down = True
    p.block(IP, 600, reason="case 7", actor="alice")
    p.unblock(IP, reason="false positive", actor="bob")
    p.unblock(IP, reason="", actor="carol")  # an empty reason is still an unblock
    assert audit.events() == []
    sink.down = False
    p.audit.flush()
    events = audit.events()
    assert [(e.action, e.actor) for e in events] == [
        (AUDIT_ESCALATED, "alice"),
        (AUDIT_UNBLOCKED, "bob"),
        (AUDIT_UNBLOCKED, "carol"),
    ]
    assert events[1].details["reason"] == "false positive"
    assert events[2].details["reason"] == ""


def test_a_record_whose_later_event_failed_does_not_repeat_the_first(
    build: Callable[..., AbuseProtection], audit: InMemoryAuditLog
) -> None:
    sink = Switch(audit)
    p = build(sink)
    sink.fail_after = 1  # the escalation is appended, the enforcement fails
    p.decide(Signal.request(IP, "/.env"))
    assert _actions(audit) == [(AUDIT_ESCALATED, IP)]
    assert p.audit.pending == 1
    sink.down = False
    assert p.audit.flush() == 0
    assert _actions(audit) == [(AUDIT_ESCALATED, IP), (AUDIT_ENFORCED, IP)]


def test_at_the_cap_an_audited_step_fails_closed_and_no_expiry_is_dropped(
    build: Callable[..., AbuseProtection],
    audit: InMemoryAuditLog,
    clock: ManualClock,
    tenant: str,
) -> None:
    sink = Switch(audit)
    p = build(sink, outbox_cap=1)
    sink.down = True
    assert p.decide(Signal.request(IP, "/.env")).tier is Tier.BLOCK  # record 1 of 1
    refused = p.decide(Signal.request(OTHER, "/.env"))
    assert not refused.allowed
    assert refused.store_unavailable
    assert refused.status == 503
    assert p.status(OTHER).tier is Tier.NORMAL  # the refused step wrote nothing
    assert p.decide(Signal.request(OTHER, "/ok")).allowed  # a quiet step goes on
    clock.advance(61)
    # The expiry would need a record: refused whole, so the subject is denied and the stored
    # block stays (its expiry still to be recorded).
    late = p.decide(Signal.request(IP, "/ok"))
    assert not late.allowed
    assert late.store_unavailable
    assert (p.store.read(tenant, IP) or {}).get("tier") == 3
    sink.down = False
    assert p.sweep() == 1  # flushed first, then the expiry recorded and delivered
    assert _actions(audit) == [
        (AUDIT_ESCALATED, IP),
        (AUDIT_ENFORCED, IP),
        (AUDIT_BLOCK_EXPIRED, IP),
    ]
    assert not p.decide(Signal.request(IP, "/ok")).store_unavailable


def test_one_flusher_at_a_time(build: Callable[..., AbuseProtection]) -> None:
    store = build(None).store
    assert store.outbox_lease("a", 30_000)
    if not url_is_memory(store):
        assert not store.outbox_lease("b", 30_000)
        store.outbox_release("b")  # not the holder: nothing happens
        assert not store.outbox_lease("b", 30_000)
    assert store.outbox_lease("a", 30_000)  # the holder renews
    store.outbox_release("a")
    assert store.outbox_lease("b", 30_000)
    store.outbox_release("b")


def url_is_memory(store: object) -> bool:
    return type(store).__name__ == "MemoryAbuseStore"


def test_no_sink_records_nothing(build: Callable[..., AbuseProtection], clock: ManualClock) -> None:
    p = build(None)
    p.decide(Signal.request(IP, "/.env"))
    clock.advance(61)
    p.sweep()
    assert p.store.outbox_peek(10) == []


@pytest.mark.redis
def test_a_redis_decision_is_one_round_trip_with_its_record(
    redis_url: str, redis_prefix: str, clock: ManualClock, tenant: str
) -> None:
    store = store_from_url(redis_url, prefix=redis_prefix, durability="warn", initialize=True)
    p = AbuseProtection(store, POLICY, clock=clock)  # no sink: nothing flushes afterwards
    sent: list[Any] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(conn: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        original(conn, command, check_health)  # type: ignore[no-untyped-call]

    p.decide(Signal.request(OTHER, "/"))  # the script loaded
    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        store.apply(tenant, [("s", IP)], p._now_ms(), (), p._params,
                    force=("block", 60_000, "x"), record=("ops", "ops"))  # fmt: skip
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
    assert len(sent) == 1
    assert len(store.outbox_peek(10)) == 1  # the record came with the step
    p.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_a_killed_process_s_events_are_delivered_by_a_fresh_one_exactly_once(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    url, options = _store(request, kind)
    if kind == "redis":
        store_from_url(url, initialize=True, **options).close()
    tenant = f"kill-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.security.abuse_outbox_worker",
            url,
            json.dumps(options),
            tenant,
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            # Bounded: a worker that hangs fails the test instead of stalling it.
            ready, _, _ = select.select([child.stdout], [], [], 60)
            assert ready, "the worker did not commit its decision within 60 s"
            assert child.stdout.readline().strip() == "committed"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    create_schema(engine)
    clock = ManualClock(worker.START)
    log = AuditLog(engine, clock=clock)
    # Building the protection delivers what the dead process left.
    p = AbuseProtection.from_url(url, worker.POLICY, clock=clock, audit=log, **options)
    with tenant_scope(tenant):
        events = log.events()
        assert [(e.action, e.target) for e in events] == [
            (AUDIT_ESCALATED, worker.SUBJECT),
            (AUDIT_ENFORCED, worker.SUBJECT),
        ]
        p.sweep()
        AbuseProtection.from_url(url, worker.POLICY, clock=clock, audit=log, **options).close()
        assert len(log.events()) == 2  # exactly once: a second flush finds nothing
        assert p.audit.pending == 0
        assert log.verify().ok
    p.close()
    engine.dispose()


def _record_like() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    return st.recursive(scalars, lambda c: st.lists(c, max_size=12), max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | _record_like().map(json.dumps))
def test_an_unreadable_record_is_a_typed_error(text: str) -> None:
    try:
        events = events_for(text, "abuse-protection")
    except AbuseStoreUnavailable as exc:
        message = str(exc)
        events = []
    else:
        message = "unreadable"
    assert "unreadable" in message
    assert all(e[1].startswith("abuse.") for e in events)


def test_a_damaged_record_is_kept_and_holds_the_later_ones_back(
    audit: InMemoryAuditLog, clock: ManualClock, tenant: str
) -> None:
    store = MemoryAbuseStore()
    sink = Switch(audit)
    p = AbuseProtection(store, POLICY, clock=clock, audit=sink)
    store._outbox["damaged"] = '["damaged", "acme", 7]'
    p.decide(Signal.request(IP, "/.env"))
    assert audit.events() == []  # order first: nothing passes the damaged record
    assert p.audit.pending == 3
    del store._outbox["damaged"]  # what an operator does after reading the log
    assert p.audit.flush() == 0
    assert _actions(audit) == [(AUDIT_ESCALATED, IP), (AUDIT_ENFORCED, IP)]


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_instances_sharing_a_store_deliver_each_record_once(
    request: pytest.FixtureRequest,
    kind: str,
    audit: InMemoryAuditLog,
    clock: ManualClock,
    tenant: str,
) -> None:
    url, options = _store(request, kind)
    if kind == "redis":
        store_from_url(url, initialize=True, **options).close()
    down, up = Switch(audit), Switch(audit)
    down.down = True
    a = AbuseProtection.from_url(url, POLICY, clock=clock, audit=down, **options)
    a.decide(Signal.request(IP, "/.env"))
    assert a.store.outbox_lease("another-flusher", 30_000)  # someone else is flushing
    b = AbuseProtection.from_url(url, POLICY, clock=clock, audit=up, **options)
    assert b.audit.flush() > 0  # it does not wait, and delivers nothing meanwhile
    assert audit.events() == []
    a.store.outbox_release("another-flusher")
    assert b.audit.flush() == 0
    down.down = False
    assert a.audit.flush() == 0
    assert _actions(audit) == [(AUDIT_ESCALATED, IP), (AUDIT_ENFORCED, IP)]
    a.close()
    b.close()


def test_the_duplicate_window_is_an_append_whose_delete_did_not_happen(
    sqlite_url: str, audit: InMemoryAuditLog, clock: ManualClock, tenant: str
) -> None:
    class DeleteFails:
        """The store's delete fails once, as if the process died right after the append."""

        def __init__(self, store: Any) -> None:
            self.store = store
            self.fail = True

        def __getattr__(self, name: str) -> Any:
            return getattr(self.store, name)

        def outbox_delete(self, record_id: str) -> None:
            if self.fail:
                self.fail = False
                raise AbuseStoreUnavailable("abuse store unavailable: connection lost")
            self.store.outbox_delete(record_id)

    store = DeleteFails(store_from_url(sqlite_url))
    p = AbuseProtection(store, POLICY, clock=clock, audit=audit)
    p.decide(Signal.request(IP, "/.env"))
    assert len(audit.events()) == 2
    assert p.audit.pending == 0  # this process remembers what it delivered: no repeat
    assert p.audit.flush() == 0
    assert len(audit.events()) == 2
    store.fail = True
    p.decide(Signal.request(OTHER, "/.env"))
    # A fresh process knows nothing of the append: it delivers the record's events again,
    # under the same outbox_id, which is how a reader recognises the repeat.
    fresh = AbuseProtection.from_url(sqlite_url, POLICY, clock=clock, audit=audit)
    ids = [e.details["outbox_id"] for e in audit.events()]
    assert len(ids) == 6
    assert len(set(ids)) == 4
    assert [e.target for e in audit.events()][2:] == [OTHER] * 4
    fresh.close()
    p.close()
