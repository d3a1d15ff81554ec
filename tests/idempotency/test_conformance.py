"""One conformance suite, run against every store: memory, SQLite file, PostgreSQL, Redis."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock, SystemClock
from pytest_reliability.errors import (
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    LeaseLost,
    TenantRequired,
)
from pytest_reliability.idempotency import (
    AUDIT_CONCURRENT_CONFLICT,
    AUDIT_DUPLICATE_SUPPRESSED,
    AUDIT_FINGERPRINT_MISMATCH,
    AUDIT_LEASE_TAKEOVER,
    Attempt,
    ReplayedFailure,
    State,
    crash_point,
    key_hash,
)
from pytest_reliability.tenancy import tenant_scope

pytestmark = [pytest.mark.idempotency, pytest.mark.usefixtures("tenant")]
OP = "billing.charge"


class Counter:
    """A handler that counts its runs and answers with the run number."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, attempt: Attempt) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
            return {"charge": self.calls, "fence": attempt.fence}


def test_first_delivery_runs_and_duplicates_replay_the_stored_response(
    make_idem: Any, audit: InMemoryAuditLog
) -> None:
    engine, handler = make_idem(), Counter()
    first = engine.run(operation=OP, key="k-1", payload={"amount": 5}, handler=handler)
    second = engine.run(operation=OP, key="k-1", payload={"amount": 5}, handler=handler)
    third = engine.run(operation=OP, key="k-1", payload={"amount": 5}, handler=handler)
    assert handler.calls == 1
    assert (first.replayed, second.replayed, third.replayed) == (False, True, True)
    assert first.response == second.response == third.response == {"charge": 1, "fence": 1}
    assert engine.state(operation=OP, key="k-1") is State.COMPLETED
    events = audit.events(action=AUDIT_DUPLICATE_SUPPRESSED)
    assert len(events) == 2
    assert events[0].details["key_hash"] == key_hash("k-1")


def test_same_key_with_another_payload_is_rejected_422(
    make_idem: Any, audit: InMemoryAuditLog
) -> None:
    engine, handler = make_idem(), Counter()
    engine.run(operation=OP, key="k-2", payload={"amount": 5}, handler=handler)
    with pytest.raises(IdempotencyKeyMismatch) as info:
        engine.run(operation=OP, key="k-2", payload={"amount": 6}, handler=handler)
    assert info.value.http_status == 422
    assert handler.calls == 1
    (event,) = audit.events(action=AUDIT_FINGERPRINT_MISMATCH)
    assert event.details["key_hash"] == key_hash("k-2")
    assert "k-2" not in repr(event.details)


def test_fresh_and_replayed_responses_are_the_same_stored_json(make_idem: Any) -> None:
    engine = make_idem()
    first = engine.run(operation=OP, key="j", payload={}, handler=lambda a: (1, "two"))
    again = engine.run(operation=OP, key="j", payload={}, handler=lambda a: (1, "two"))
    assert first.response == again.response == [1, "two"]


def test_fingerprint_of_selects_the_part_that_must_match(make_idem: Any) -> None:
    engine, handler = make_idem(), Counter()

    def body(p: Any) -> Any:
        return p["body"]

    engine.run(
        operation=OP, key="k", payload={"body": 1, "trace": "a"}, handler=handler,
        fingerprint_of=body,
    )  # fmt: skip
    again = engine.run(
        operation=OP, key="k", payload={"body": 1, "trace": "b"}, handler=handler,
        fingerprint_of=body,
    )  # fmt: skip
    assert again.replayed
    assert handler.calls == 1


def test_duplicate_while_first_is_in_progress_gets_409_with_retry_after(
    make_idem: Any, audit: InMemoryAuditLog
) -> None:
    engine = make_idem(lease_seconds=10)
    scope, fp = engine.prepare(OP, "k-3", {"a": 1})
    engine.acquire(scope, fp)  # a first worker holds the key
    with pytest.raises(IdempotencyInProgress) as info:
        engine.run(operation=OP, key="k-3", payload={"a": 1}, handler=Counter())
    assert info.value.http_status == 409
    assert info.value.retry_after == pytest.approx(10.0)
    (event,) = audit.events(action=AUDIT_CONCURRENT_CONFLICT)
    assert event.details["key_hash"] == key_hash("k-3")


def test_crashed_workers_lease_expires_one_worker_takes_over_and_the_stale_one_is_fenced(
    make_idem: Any, clock: ManualClock, audit: InMemoryAuditLog
) -> None:
    engine = make_idem(lease_seconds=5)
    scope, fp = engine.prepare(OP, "k-4", {"a": 1})
    crashed = engine.acquire(scope, fp)
    assert crashed.fence == 1
    clock.advance(5.001)
    handler = Counter()
    outcome = engine.run(operation=OP, key="k-4", payload={"a": 1}, handler=handler)
    assert outcome.takeover
    assert outcome.fence == 2
    assert not outcome.replayed
    assert handler.calls == 1
    (event,) = audit.events(action=AUDIT_LEASE_TAKEOVER)
    assert event.details == {"operation": OP, "key_hash": key_hash("k-4"), "fence": 2}
    # The crashed worker wakes up and tries to finish: fenced off, its result never stored.
    stale = Attempt(scope, replayed=False, fence=1)
    stale.complete({"stale": True})
    with pytest.raises(LeaseLost):
        engine.complete_deferred(scope, crashed.token, stale)
    replay = engine.run(operation=OP, key="k-4", payload={"a": 1}, handler=handler)
    assert replay.response == {"charge": 1, "fence": 2}


def test_only_one_of_two_racing_workers_takes_an_expired_lease_over(
    make_idem: Any, clock: ManualClock
) -> None:
    engine = make_idem(lease_seconds=5)
    scope, fp = engine.prepare(OP, "k-5", {"a": 1})
    engine.acquire(scope, fp)
    clock.advance(6)
    winner = engine.acquire(scope, fp)
    assert winner.acquired
    assert winner.takeover
    assert winner.fence == 2
    with pytest.raises(IdempotencyInProgress):
        engine.acquire(scope, fp)


def test_retryable_failure_releases_the_key(make_idem: Any) -> None:
    engine, handler = make_idem(), Counter()

    def flaky(attempt: Attempt) -> Any:
        raise ConnectionResetError("upstream went away")

    with pytest.raises(ConnectionResetError):
        engine.run(operation=OP, key="k-6", payload={}, handler=flaky)
    assert engine.state(operation=OP, key="k-6") is State.NEW
    assert not engine.run(operation=OP, key="k-6", payload={}, handler=handler).replayed
    assert handler.calls == 1


def test_terminal_failure_is_stored_and_replayed(make_idem: Any) -> None:
    engine, handler = make_idem(terminal_errors=(PermissionError,)), Counter()

    def declined(attempt: Attempt) -> Any:
        raise PermissionError("card declined")

    with pytest.raises(PermissionError):
        engine.run(operation=OP, key="k-7", payload={}, handler=declined)
    assert engine.state(operation=OP, key="k-7") is State.FAILED
    with pytest.raises(ReplayedFailure) as info:
        engine.run(operation=OP, key="k-7", payload={}, handler=handler)
    assert info.value.error_type == "builtins.PermissionError"
    assert info.value.error_message == "card declined"
    assert handler.calls == 0


def test_records_are_kept_for_the_retention_period_then_purged(
    make_idem: Any, clock: ManualClock
) -> None:
    engine, handler = make_idem(retention_seconds=3600), Counter()
    engine.run(operation=OP, key="k-8", payload={}, handler=handler)
    clock.advance(3599)
    assert engine.purge() == 0
    assert engine.run(operation=OP, key="k-8", payload={}, handler=handler).replayed
    clock.advance(2)
    assert engine.state(operation=OP, key="k-8") is State.NEW
    assert engine.purge() == 1
    assert not engine.run(operation=OP, key="k-8", payload={}, handler=handler).replayed
    assert handler.calls == 2


def test_expired_record_is_fresh_again_without_a_purge(make_idem: Any, clock: ManualClock) -> None:
    engine, handler = make_idem(retention_seconds=60), Counter()
    engine.run(operation=OP, key="k-9", payload={"a": 1}, handler=handler)
    clock.advance(61)
    # Even another payload is fine: the old record is gone as far as anyone can tell.
    assert not engine.run(operation=OP, key="k-9", payload={"a": 2}, handler=handler).replayed


def test_tenants_and_operations_scope_keys(make_idem: Any) -> None:
    engine, handler = make_idem(), Counter()
    engine.run(operation=OP, key="shared", payload={}, handler=handler)
    engine.run(operation="billing.refund", key="shared", payload={}, handler=handler)
    with tenant_scope("globex"):
        engine.run(operation=OP, key="shared", payload={}, handler=handler)
    assert handler.calls == 3


def test_no_tenant_fails_closed(make_idem: Any) -> None:
    engine, handler = make_idem(), Counter()
    token_free = __import__("contextvars").Context()
    with pytest.raises(TenantRequired):
        token_free.run(engine.run, operation=OP, key="k", payload={}, handler=handler)
    assert handler.calls == 0


def test_deferred_effects_happen_exactly_when_the_record_completes(make_idem: Any) -> None:
    engine = make_idem()
    applied: list[str] = []

    def handler(attempt: Attempt) -> str:
        attempt.defer(lambda handle: applied.append(attempt.key_hash))
        return "done"

    engine.run(operation=OP, key="k-10", payload={}, handler=handler)
    engine.run(operation=OP, key="k-10", payload={}, handler=handler)
    assert applied == [key_hash("k-10")]


def test_wait_mode_returns_the_first_deliverys_result(make_idem: Any) -> None:
    engine = make_idem(use_clock=SystemClock(), wait_seconds=10, poll_seconds=0.02)
    started, release = threading.Event(), threading.Event()
    results: list[Any] = []

    def slow(attempt: Attempt) -> str:
        started.set()
        release.wait(5)
        return "slow result"

    def first() -> None:
        with tenant_scope("acme"):
            results.append(engine.run(operation=OP, key="k-11", payload={}, handler=slow))

    worker = threading.Thread(target=first)
    worker.start()
    assert started.wait(5)
    threading.Timer(0.2, release.set).start()
    second = engine.run(operation=OP, key="k-11", payload={}, handler=Counter())
    worker.join(10)
    assert second.replayed
    assert second.response == "slow result"
    assert results[0].response == "slow result"
    assert not results[0].replayed


def test_concurrent_deliveries_in_threads_run_the_handler_once(make_idem: Any) -> None:
    engine, handler = (
        make_idem(use_clock=SystemClock(), wait_seconds=20, poll_seconds=0.01),
        Counter(),
    )
    barrier = threading.Barrier(8)
    outcomes: list[Any] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        with tenant_scope("acme"):
            barrier.wait()
            try:
                outcomes.append(engine.run(operation=OP, key="k-12", payload={}, handler=handler))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert handler.calls == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert {repr(o.response) for o in outcomes} == {repr({"charge": 1, "fence": 1})}


def test_audit_events_never_carry_the_raw_key(make_idem: Any, audit: InMemoryAuditLog) -> None:
    engine, handler = make_idem(), Counter()
    secret_key = "raw-key-that-must-not-leak"
    engine.run(operation=OP, key=secret_key, payload={}, handler=handler)
    engine.run(operation=OP, key=secret_key, payload={}, handler=handler)
    with pytest.raises(IdempotencyKeyMismatch):
        engine.run(operation=OP, key=secret_key, payload={"x": 1}, handler=handler)
    events = audit.events()
    assert len(events) == 2
    assert all(secret_key not in repr(e) for e in events)


def test_bounded_wait_gives_up_with_409_when_the_first_delivery_never_finishes(
    make_idem: Any, clock: ManualClock
) -> None:
    engine = make_idem(lease_seconds=30, wait_seconds=2, poll_seconds=0.5)
    scope, fp = engine.prepare(OP, "k-13", {})
    engine.acquire(scope, fp)
    started = clock.monotonic()
    with pytest.raises(IdempotencyInProgress) as info:
        engine.run(operation=OP, key="k-13", payload={}, handler=Counter())
    assert clock.monotonic() - started == pytest.approx(2.0)
    assert info.value.retry_after == pytest.approx(28.0)


def test_exactly_once_property_holds_on_every_store(
    idempotency_check: Any, make_idem: Any, store_kind: str, request: pytest.FixtureRequest
) -> None:
    engine = make_idem(use_clock=SystemClock())
    memory: dict[str, int] = {}
    lock = threading.Lock()

    def effect(key: str) -> Any:
        def apply(handle: Any) -> None:
            if store_kind == "redis":
                handle.hincrby(f"{request.getfixturevalue('redis_prefix')}effects", key, 1)
            elif store_kind in ("sqlite", "postgres"):
                handle.exec_driver_sql(f"INSERT INTO t_effects (k) VALUES ('{key}')")
            else:
                with lock:
                    memory[key] = memory.get(key, 0) + 1

        return apply

    def count(key: str) -> int:
        if store_kind == "redis":
            client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
            value = client.hget(f"{request.getfixturevalue('redis_prefix')}effects", key)
            client.close()
            return int(value or 0)
        if store_kind in ("sqlite", "postgres"):
            with engine.store.engine.connect() as conn:
                sql = f"SELECT count(*) FROM t_effects WHERE k = '{key}'"
                return int(conn.exec_driver_sql(sql).scalar_one())
        return memory.get(key, 0)

    if store_kind in ("sqlite", "postgres"):
        with engine.store.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t_effects (k VARCHAR(255) NOT NULL)")

    def handler(req: Any) -> Any:
        def work(attempt: Attempt) -> Any:
            attempt.defer(effect(req["key"]))
            crash_point()
            return {"body": req["body"]}

        with tenant_scope("acme"):
            return engine.run(
                operation=OP, key=req["key"], payload=req["body"], handler=work
            ).response

    stats = idempotency_check(handler, effects=count, max_examples=20)
    assert stats.examples >= 20
    assert stats.effects > 0
    assert stats.replays > 0
    assert stats.duplicates_suppressed > 0
