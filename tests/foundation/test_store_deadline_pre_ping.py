"""A caller's engine with ``pool_pre_ping=True``: every SQL store call stays bounded on a frozen
PostgreSQL, the pool's own ping included.

With pre-ping, SQLAlchemy pings a pooled connection inside its checkout, before any statement of
the store's. A frozen server (every process SIGSTOPped) leaves its kernel answering TCP, so that
ping waits as long as the freeze lasts unless the store's deadline covers it. Each store here
gets a plain ``create_engine(url, pool_pre_ping=True)`` with a connection already pooled; the
server is frozen, the call must fail closed within its timeout plus a small margin, and once the
server is thawed the next call works (the cut connection was thrown away).

The frozen server is a private cluster (initdb in a temporary directory); the shared one is
never touched. A call that blocks runs in a thread of its own, so a regression fails the test
at the bound instead of hanging it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from harness.private_servers import PrivatePostgres
from pytest_reliability._sql_bounds import _WATCHDOG
from pytest_reliability.audit import AuditLog, InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import IdempotencyUnavailable, StoreUnavailable
from pytest_reliability.idempotency import IdempotencyEngine, SqlStore
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession
from pytest_reliability.security.abuse_protection import AbuseProtection, Decision, Signal
from pytest_reliability.security.abuse_protection._sql_store import SqlAbuseStore
from pytest_reliability.tenancy import tenant_scope

pytestmark = [pytest.mark.postgres]

TIMEOUT = 1.0  # the store timeout under test
MARGIN = 1.0  # the watchdog's tick, closing the cut connection, and a loaded 2-core box
OPERATOR = OpsContext("alice@ops")
_keys = itertools.count()


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this module's own, freezable."""
    server = PrivatePostgres().start()
    yield server
    server.stop()


class Freezer:
    """Freezes every process of the private cluster; thaws what it froze (again at teardown)."""

    def __init__(self, server: PrivatePostgres) -> None:
        self.server = server
        self.pids: list[int] = []

    def freeze(self) -> None:
        self.pids = self.server.pause()

    def thaw(self) -> None:
        self.server.resume(self.pids)
        self.pids = []


@pytest.fixture
def freezer(private_pg: PrivatePostgres) -> Iterator[Freezer]:
    """The freezer for the module's cluster, thawed after the test whatever happened."""
    f = Freezer(private_pg)
    yield f
    f.thaw()


@pytest.fixture
def engine(private_pg: PrivatePostgres) -> Iterator[Engine]:
    """A caller's own engine, as a service builds it: plain ``create_engine``, pre-ping on."""
    made = sa.create_engine(private_pg.url, pool_pre_ping=True)
    yield made
    made.dispose()


@dataclass
class Case:
    """One store: a call that must fail closed on the frozen server, and how to tell it did."""

    call: Callable[[], Any]
    failed_closed: Callable[[Any], bool]


def _raises(error: type[BaseException], said: str) -> Callable[[Any], bool]:
    """The call raised ``error`` saying ``said``: the deadline cut it, nothing else failed."""
    return lambda outcome: isinstance(outcome, error) and said in str(outcome)


def _abuse(engine: Engine) -> Case:
    protection = AbuseProtection(SqlAbuseStore(engine, timeout=TIMEOUT), clock=ManualClock())

    def decide() -> Decision:
        with tenant_scope("acme"):
            return protection.decide(Signal.request(f"203.0.113.{next(_keys) % 250}", "/"))

    def unavailable(outcome: Any) -> bool:
        return isinstance(outcome, Decision) and outcome.store_unavailable

    return Case(decide, unavailable)


def _idempotency(engine: Engine) -> Case:
    idem = IdempotencyEngine(SqlStore(engine, timeout=TIMEOUT))

    def run() -> Any:
        with tenant_scope("acme"):
            key = f"k{next(_keys)}"
            return idem.run(operation="op", key=key, payload={}, handler=lambda _a: "done")

    return Case(run, _raises(IdempotencyUnavailable, "did not answer within 1.0 s"))


def _kill_switch(engine: Engine) -> Case:
    authz = AuthorizationEngine()
    authz.grant(OPERATOR.actor, "ops_operator")
    session = OpsSession(authz, InMemoryAuditLog())
    switches = KillSwitches.from_url(
        engine, session=session, env={}, start=False, store_timeout=TIMEOUT
    )
    flips = itertools.cycle((switches.engage, switches.release))

    def flip() -> Any:
        return next(flips)("BILLING", reason="incident", actor=OPERATOR)

    return Case(flip, _raises(StoreUnavailable, "no answer within 1.0 s"))


def _audit(engine: Engine) -> Case:
    log = AuditLog(engine, timeout=TIMEOUT)

    def append() -> Any:
        with tenant_scope("acme"):
            return log.append("invoice.create", actor="a", target=f"i/{next(_keys)}", outcome="ok")

    return Case(append, _raises(StoreUnavailable, "did not answer within 1 s"))


CASES: dict[str, Callable[[Engine], Case]] = {
    "abuse": _abuse,
    "idempotency": _idempotency,
    "kill_switch": _kill_switch,
    "audit": _audit,
}


class Blocked:
    """What a call that had not returned by the bound gives back."""


def _within(bound: float, call: Callable[[], Any]) -> tuple[Any, float, threading.Thread]:
    """Run ``call`` in a thread; return its result (or exception), the seconds it took, and the
    thread, joined unless the call is still blocked at ``bound`` (then the result is Blocked)."""
    box: list[Any] = [Blocked()]

    def run() -> None:
        try:
            box[0] = call()
        except Exception as exc:  # the outcome under test, returned to the test as a value
            box[0] = exc

    worker = threading.Thread(target=run, daemon=True)
    began = time.monotonic()
    worker.start()
    worker.join(bound)
    return box[0], time.monotonic() - began, worker


@pytest.mark.parametrize("store", list(CASES))
def test_a_pre_pinged_pooled_connection_on_a_frozen_postgres_fails_closed_within_the_timeout(
    store: str, engine: Engine, freezer: Freezer
) -> None:
    case = CASES[store](engine)
    for _ in range(2):  # the second call checks out a pooled, no longer fresh connection: pinged
        assert not case.failed_closed(case.call())
    assert engine.pool.checkedin() >= 1  # type: ignore[attr-defined]

    freezer.freeze()
    outcome, took, worker = _within(TIMEOUT + MARGIN, case.call)
    freezer.thaw()
    worker.join(30)  # a blocked call ends once the server answers again
    assert not isinstance(outcome, Blocked), f"{store}: blocked past {TIMEOUT + MARGIN} s"
    assert case.failed_closed(outcome), f"{store}: {outcome!r}"
    assert took < TIMEOUT + MARGIN

    # The cut connection was discarded: the next call gets a working one, and no deadline is
    # left armed on any connection.
    assert not case.failed_closed(case.call())
    assert not _WATCHDOG._entries


@pytest.mark.parametrize("store", list(CASES))
def test_a_pre_ping_that_finds_a_dead_connection_still_reconnects_within_the_call(
    store: str, engine: Engine, private_pg: PrivatePostgres
) -> None:
    """The pool's own pre-ping handling stands: a connection that died fast (its backend
    terminated, as by a server restart) is replaced inside the checkout, and the call works."""
    case = CASES[store](engine)
    for _ in range(2):
        assert not case.failed_closed(case.call())
    with psycopg.connect(private_pg.url.replace("+psycopg", ""), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1
    assert not case.failed_closed(case.call())
    assert not _WATCHDOG._entries
