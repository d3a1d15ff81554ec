"""The SQL stores on any engine a service already has: every acknowledged write is stored.

Engines from plain ``sqlalchemy.create_engine`` (several pool classes and isolation settings) and
from ``make_engine``, on a SQLite file and on the real PostgreSQL. After the writes are
acknowledged, and while this process still holds its engine and pool, a separate process reads
every one of them back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, QueuePool, StaticPool

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.db import make_engine
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.idempotency import Attempt, IdempotencyEngine, SqlStore
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.idempotency

OPERATOR = OpsContext("alice@ops")

_READER = """
import json, sys
import sqlalchemy as sa
engine = sa.create_engine(sys.argv[1], poolclass=sa.pool.NullPool)
with engine.connect() as conn:
    records = conn.exec_driver_sql(
        "SELECT key_hash, state, response FROM idempotency_records").all()
    effects = conn.exec_driver_sql("SELECT k FROM t_effects").all()
    switches = conn.exec_driver_sql(
        "SELECT name, engaged, version FROM ops_kill_switches").all()
print(json.dumps({
    "records": [[r[0], r[1], r[2]] for r in records],
    "effects": sorted(r[0] for r in effects),
    "switches": {r[0]: [bool(r[1]), r[2]] for r in switches},
}))
"""

ENGINES: dict[str, Callable[[str], Engine]] = {
    "make_engine": lambda url: make_engine(url),
    "queuepool": lambda url: sa.create_engine(url, poolclass=QueuePool),
    "nullpool": lambda url: sa.create_engine(url, poolclass=NullPool),
    "staticpool": lambda url: (
        sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        if url.startswith("sqlite")
        else sa.create_engine(url, poolclass=StaticPool)
    ),
    "sqlite-driver-autocommit": lambda url: sa.create_engine(url, isolation_level="AUTOCOMMIT"),
}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A SQLite file or a fresh schema on the real PostgreSQL."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture(params=sorted(ENGINES))
def any_engine(request: pytest.FixtureRequest, db_url: str) -> Iterator[Engine]:
    """The database under test behind one kind of engine."""
    if request.param == "sqlite-driver-autocommit" and not db_url.startswith("sqlite"):
        pytest.skip("refused on PostgreSQL: see test_an_autocommit_postgres_engine_is_refused")
    engine = ENGINES[request.param](db_url)
    yield engine
    engine.dispose()


def _read_back(url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _READER, url], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_every_acknowledged_write_is_read_back_by_another_process(
    any_engine: Engine, db_url: str
) -> None:
    idem = IdempotencyEngine(SqlStore(any_engine), audit=InMemoryAuditLog())
    with any_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t_effects (k VARCHAR(64) NOT NULL)")

    def handler(attempt: Attempt) -> dict[str, int]:
        key = f"k{len(acknowledged)}"
        attempt.connection.exec_driver_sql(f"INSERT INTO t_effects (k) VALUES ('{key}')")
        return {"n": len(acknowledged)}

    acknowledged: list[str] = []
    with tenant_scope("acme"):
        for i in range(20):
            outcome = idem.run(operation="billing.charge", key=f"order-{i}", payload={},
                               handler=handler)  # fmt: skip
            assert not outcome.replayed
            acknowledged.append(f"k{i}")
    authz = AuthorizationEngine()
    authz.grant(OPERATOR.actor, "ops_operator")
    session = OpsSession(authz, InMemoryAuditLog())
    switches = KillSwitches.from_url(any_engine, session=session, env={}, start=False)
    switches.engage("BILLING", reason="incident", actor=OPERATOR)
    switches.engage("WEBHOOKS", reason="incident", actor=OPERATOR)
    switches.release("WEBHOOKS", reason="over", actor=OPERATOR)
    # Read back while this process still holds its engine (nothing disposed, pools open).
    seen = _read_back(db_url)
    assert len(seen["records"]) == 20
    assert all(state == "COMPLETED" for _, state, _ in seen["records"])
    assert sorted(json.loads(r)["n"] for _, _, r in seen["records"]) == list(range(20))
    assert seen["effects"] == sorted(acknowledged)
    assert seen["switches"] == {"BILLING": [True, 1], "WEBHOOKS": [False, 2]}
    switches.close()


@pytest.mark.postgres
def test_an_autocommit_postgres_engine_is_refused(pg_url: str) -> None:
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(ConfigurationError, match="AUTOCOMMIT"):
            SqlStore(engine)
    finally:
        engine.dispose()
