"""The SQL backbone: URLs, SQLite settings, schema creation, clocks."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import pytest_reliability.audit  # noqa: F401  # registers the audit tables create_schema makes
from pytest_reliability.clock import ManualClock, SystemClock
from pytest_reliability.db import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    begin_immediate,
    create_schema,
    database_url_from_env,
    make_engine,
    normalize_url,
)
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.protocols import Clock


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/db", "oracle://x", "mongodb://h/db", "redis://localhost"]
)
def test_unknown_scheme_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="unsupported database URL scheme"):
        make_engine(url)


def test_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        make_engine("not a url at all")


def test_postgres_urls_use_psycopg3() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"):
        assert normalize_url(url).drivername == "postgresql+psycopg"
    with pytest.raises(ConfigurationError, match="psycopg2"):
        normalize_url("postgresql+psycopg2://u@h/db")


def test_missing_postgres_extra_names_the_extra() -> None:
    script = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from pytest_reliability.db import make_engine\n"
        "from pytest_reliability.errors import ConfigurationError\n"
        "try:\n    make_engine('postgresql://u@h/db')\n"
        "except ConfigurationError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "pytest-reliability[postgres]" in out.stdout


def test_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert database_url_from_env() == DEFAULT_DATABASE_URL == "sqlite:///reliability.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "sqlite:////tmp/x.db")
    assert database_url_from_env() == "sqlite:////tmp/x.db"


def test_sqlite_is_set_up_for_concurrent_use(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_commits_are_durable_not_only_consistent(sqlite_engine: Engine) -> None:
    # WAL with synchronous=NORMAL (1) can lose the last commits on power loss; FULL (2) cannot.
    # Every pooled connection must carry it, not only the first one.
    with sqlite_engine.connect() as first, sqlite_engine.connect() as second:
        for conn in (first, second):
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_in_memory_sqlite_is_shared_by_connections() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalar() == 1


def test_sqlite_transactions_roll_back(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), sqlite_engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("abort")
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0


def test_begin_immediate_serialises_read_modify_write(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (0)")

    def bump() -> None:
        for _ in range(25):
            with begin_immediate(engine) as conn:
                n = conn.exec_driver_sql("SELECT n FROM counter").scalar_one()
                conn.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM counter").scalar() == 100
    engine.dispose()


def test_create_schema_is_idempotent(engine: Engine) -> None:
    create_schema(engine)
    create_schema(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"audit_events", "audit_heads"} <= tables


@pytest.mark.postgres
def test_create_schema_concurrently_on_postgres(pg_url: str) -> None:
    script = (
        "import sys\nfrom pytest_reliability.db import make_engine\n"
        "from pytest_reliability.tables import create_all\n"
        "create_all(make_engine(sys.argv[1]))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, pg_url]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]


def test_sqlite_file_url_creates_the_file(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    create_schema(engine)
    assert (tmp_path / "new.db").exists()
    engine.dispose()


def test_manual_clock_moves_only_when_told() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    clock = ManualClock(start)
    assert isinstance(clock, Clock)
    assert clock.now() == start
    clock.sleep(90)
    assert clock.now() == start + timedelta(seconds=90)
    assert clock.monotonic() == 90
    assert clock.time() == (start + timedelta(seconds=90)).timestamp()
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    clock.set(start - timedelta(days=1))  # skew: wall clock jumps back, monotonic does not
    assert clock.now() < start
    assert clock.monotonic() == 90
    with pytest.raises(ValueError, match="timezone"):
        ManualClock(datetime(2030, 1, 1))


def test_system_clock_is_a_clock() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    assert clock.now().tzinfo is UTC
    a = clock.monotonic()
    clock.sleep(0)
    assert clock.monotonic() >= a
