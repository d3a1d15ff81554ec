"""Any engine a service has: every acknowledged event is stored, or the engine is refused.

A plain ``sqlalchemy.create_engine`` on SQLite used to return events from ``append`` that were
rolled back when the connection went back to the pool. Here each kind of engine appends from
several threads, and a separate process reads every acknowledged event back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from contextvars import copy_context

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, QueuePool, SingletonThreadPool, StaticPool

from pytest_reliability.audit import AuditEvent, AuditLog
from pytest_reliability.db import check_engine, create_schema, make_engine
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.tenancy import tenant_scope
from tests.audit.conftest import plain_url

pytestmark = pytest.mark.audit

_READER = r"""
import json, sys
import sqlalchemy as sa
from sqlalchemy.pool import NullPool
url = sys.argv[1]
engine = sa.create_engine(url, poolclass=NullPool)
with engine.connect() as conn:
    rows = conn.exec_driver_sql(
        "SELECT tenant_id, seq, event_id, hash FROM audit_events ORDER BY tenant_id, seq"
    ).all()
from pytest_reliability.audit import AuditLog
result = AuditLog(engine).verify()
print(json.dumps({"rows": [list(r) for r in rows], "ok": result.ok,
                  "checked": result.events_checked}))
"""


def _read_back_elsewhere(url: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _READER, plain_url(url)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _append_from_threads(log: AuditLog, threads: int, each: int) -> list[AuditEvent]:
    acknowledged: list[AuditEvent] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        with tenant_scope(f"tenant-{n % 2}"):
            for i in range(each):
                event = log.append("a", actor=f"thread-{n}", target=f"t{i}", outcome="ok")
                with lock:
                    acknowledged.append(event)

    workers = [threading.Thread(target=copy_context().run, args=(work, n)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    return acknowledged


def test_every_acknowledged_event_is_read_back_by_another_process(audit_engine: Engine) -> None:
    create_schema(audit_engine)
    log = AuditLog(audit_engine)
    acknowledged = _append_from_threads(log, threads=4, each=15)
    assert len(acknowledged) == 60
    # Also one event joining a caller's transaction that commits.
    with audit_engine.begin() as conn, tenant_scope("tenant-0"):
        acknowledged.append(log.append("b", actor="x", target="y", outcome="ok", connection=conn))
    found = _read_back_elsewhere(audit_engine.url.render_as_string(hide_password=False))
    stored = {(t, s, e, h) for t, s, e, h in found["rows"]}  # type: ignore[attr-defined]
    expected = {(e.tenant_id, e.sequence, e.event_id, e.hash) for e in acknowledged}
    assert stored == expected
    assert found["ok"] is True
    assert found["checked"] == 61


@pytest.mark.postgres
def test_an_autocommit_postgres_engine_keeps_every_event(pg_url: str) -> None:
    engine = sa.create_engine(plain_url(pg_url), isolation_level="AUTOCOMMIT")
    try:
        create_schema(engine)
        acknowledged = _append_from_threads(AuditLog(engine), threads=4, each=10)
        found = _read_back_elsewhere(pg_url)
        assert len(found["rows"]) == len(acknowledged) == 40  # type: ignore[arg-type]
        assert found["ok"] is True
    finally:
        engine.dispose()


def test_appends_leave_the_pooled_connection_as_they_found_it(audit_engine: Engine) -> None:
    create_schema(audit_engine)
    with tenant_scope("acme"):
        AuditLog(audit_engine).append("a", actor="x", target="y", outcome="ok")
    with audit_engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert not getattr(driver, "in_transaction", False) or conn.in_transaction()
        if audit_engine.dialect.name == "postgresql":
            assert driver.autocommit is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: sa.create_engine("sqlite://"), "SingletonThreadPool"),
        (lambda: sa.create_engine("sqlite://", poolclass=NullPool), "NullPool"),
        (lambda: sa.create_engine("sqlite:///:memory:", poolclass=QueuePool), "QueuePool"),
        (
            lambda: sa.create_engine(
                "sqlite:///file:shared?mode=memory&cache=shared&uri=true",
                poolclass=SingletonThreadPool,
            ),
            "in-memory",
        ),
        (
            lambda: sa.create_engine("postgresql+pg8000://u@h/db", module=__import__("sqlite3")),
            "pg8000",
        ),
        (
            lambda: sa.create_engine("sqlite+pysqlcipher:///x.db", module=__import__("sqlite3")),
            "pysqlcipher",
        ),
        (
            lambda: sa.create_engine("mysql+pymysql://u@h/db", module=__import__("sqlite3")),
            "'mysql'",
        ),
        (lambda: "sqlite:///x.db", "not str"),
    ],
    ids=[
        "memory-default",
        "memory-null",
        "memory-queue",
        "shared-cache",
        "pg8000",
        "sqlcipher",
        "mysql",
        "url-string",
    ],
)
def test_engines_that_cannot_keep_a_write_are_refused_at_construction(
    make: object, match: str
) -> None:
    engine = make()  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match=match) as info:
        AuditLog(engine)
    assert "use" in str(info.value).lower() or "create" in str(info.value).lower()
    with pytest.raises(ConfigurationError):
        check_engine(engine, user="a store")


def test_in_memory_sqlite_works_when_every_connection_is_the_same() -> None:
    for engine in (
        make_engine("sqlite://"),
        sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        ),
    ):
        assert check_engine(engine, user="test") == "sqlite"
        create_schema(engine)
        log = AuditLog(engine)
        acknowledged = _append_from_threads(log, threads=3, each=10)
        with tenant_scope("tenant-0"):
            assert len(log.events()) == sum(1 for e in acknowledged if e.tenant_id == "tenant-0")
        assert log.verify().ok
        assert log.verify().events_checked == 30
        engine.dispose()
