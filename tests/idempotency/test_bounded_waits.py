"""Every store call has a bounded wait: a frozen PostgreSQL (every process SIGSTOPped) fails a
call closed within the bound, and on SQLite a handler running past its lease does not make a
duplicate or another key queue for SQLite's busy timeout.

The frozen server is a private cluster (initdb in a temporary directory); the shared one is
never touched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from harness.private_servers import PrivatePostgres
from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import (
    IdempotencyInProgress,
    IdempotencyUnavailable,
    StoreUnavailable,
)
from pytest_reliability.idempotency import IdempotencyConfig, IdempotencyEngine, SqlStore
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.idempotency

BOUND = 3.0  # seconds; the store timeout below is 1 s, the rest is slack for a loaded 2-core box
OPERATOR = OpsContext("alice@ops")


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own, freezable."""
    server = PrivatePostgres().start()
    yield server
    server.stop()


@pytest.fixture
def frozen(private_pg: PrivatePostgres) -> Iterator[Any]:
    """Call it to freeze every process of the private cluster; thawed after the test."""
    pids: list[int] = []

    def freeze() -> None:
        pids.extend(private_pg.pause())

    yield freeze
    private_pg.resume(pids)


@pytest.mark.parametrize("engine_kind", ["make_engine", "create_engine"])
def test_run_on_a_frozen_postgres_fails_closed_within_the_bound(
    private_pg: PrivatePostgres, frozen: Any, engine_kind: str
) -> None:
    if engine_kind == "make_engine":
        idem = IdempotencyEngine.from_url(private_pg.url, timeout=1.0)
    else:
        plain = sa.create_engine(private_pg.url)
        idem = IdempotencyEngine(SqlStore(plain, timeout=1.0))
    calls = []
    try:
        with tenant_scope("acme"):
            idem.run(operation="op", key=f"warm-{engine_kind}", payload={}, handler=calls.append)
            frozen()
            for attempt in range(2):  # a pooled connection, then (after invalidation) a new one
                began = time.monotonic()
                with pytest.raises(IdempotencyUnavailable):
                    idem.run(operation="op", key=f"k{attempt}", payload={}, handler=calls.append)
                took = time.monotonic() - began
                assert took < BOUND, f"run blocked {took:.1f} s on a frozen PostgreSQL"
        assert len(calls) == 1
    finally:
        idem.close()


@pytest.mark.kill_switch
def test_engage_on_a_frozen_postgres_fails_within_the_bound(
    private_pg: PrivatePostgres, frozen: Any
) -> None:
    authz = AuthorizationEngine()
    authz.grant(OPERATOR.actor, "ops_operator")
    session = OpsSession(authz, InMemoryAuditLog())
    with KillSwitches.from_url(
        private_pg.url, session=session, env={}, start=False, store_timeout=1.0
    ) as switches:
        switches.engage("BILLING", reason="warm", actor=OPERATOR)
        frozen()
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            switches.engage("WEBHOOKS", reason="incident", actor=OPERATOR)
        assert not switches.refresh()
        took = time.monotonic() - began
        assert took < 2 * BOUND, f"engage and a read blocked {took:.1f} s on a frozen PostgreSQL"


def test_on_sqlite_a_handler_past_its_lease_does_not_make_others_wait(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'idem.db'}"
    clock = ManualClock()
    config = IdempotencyConfig(lease_seconds=5)
    first = IdempotencyEngine.from_url(url, clock=clock, config=config)
    other = IdempotencyEngine.from_url(url, clock=clock, config=config)
    running, finish = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def slow(attempt: Any) -> dict[str, bool]:
        # A handler that writes its own row first, then waits on something slow.
        attempt.connection.exec_driver_sql("INSERT INTO t_rows (k) VALUES ('first')")
        running.set()
        assert finish.wait(60)
        return {"charged": True}

    with first.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("CREATE TABLE t_rows (k VARCHAR(16))")

    def deliver() -> None:
        with tenant_scope("acme"):
            try:
                results["first"] = first.run(operation="op", key="k", payload={}, handler=slow)
            except Exception as exc:
                results["first"] = exc

    worker = threading.Thread(target=deliver)
    worker.start()
    try:
        assert running.wait(10)
        clock.advance(6)  # the handler is now past its lease
        began = time.monotonic()
        with tenant_scope("acme"), pytest.raises(IdempotencyInProgress) as info:
            other.run(operation="op", key="k", payload={}, handler=slow)
        took = time.monotonic() - began
        assert took < 2.0, f"the duplicate waited {took:.1f} s for the write lock"
        assert info.value.retry_after > 0
    finally:
        finish.set()
        worker.join(60)
    assert results["first"].response == {"charged": True}


def test_on_sqlite_a_handler_that_has_not_written_holds_no_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'idem.db'}"
    first = IdempotencyEngine.from_url(url)
    other = IdempotencyEngine.from_url(url)
    running, finish = threading.Event(), threading.Event()

    def slow(_attempt: Any) -> str:
        running.set()
        assert finish.wait(60)
        return "done"

    def deliver() -> None:
        with tenant_scope("acme"):
            first.run(operation="op", key="slow", payload={}, handler=slow)

    worker = threading.Thread(target=deliver)
    worker.start()
    try:
        assert running.wait(10)
        began = time.monotonic()
        with tenant_scope("acme"):
            outcome = other.run(operation="op", key="another", payload={}, handler=lambda a: 1)
        took = time.monotonic() - began
        assert outcome.response == 1
        assert took < 2.0, f"another key waited {took:.1f} s behind a running handler"
    finally:
        finish.set()
        worker.join(60)
