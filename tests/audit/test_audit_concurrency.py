"""Concurrent writers in separate OS processes never fork or gap a tenant's chain."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pytest_reliability.audit import AuditLog
from pytest_reliability.db import create_schema, make_engine

pytestmark = pytest.mark.audit


def _writers(url: str, processes: int, events: int, tenant: str = "acme") -> None:
    start_at = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.audit_writer",
                url,
                tenant,
                str(events),
                "--start-at",
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def _assert_gapless(engine: Engine, expected: int) -> None:
    with engine.connect() as conn:
        seqs = [
            r[0]
            for r in conn.execute(
                sa.text("SELECT seq FROM audit_events WHERE tenant_id = 'acme' ORDER BY seq")
            )
        ]
        actors = conn.execute(
            sa.text(
                "SELECT count(DISTINCT actor) FROM audit_events WHERE action = 'invoice.create'"
            )
        ).scalar_one()
    assert seqs == list(range(1, expected + 1))
    assert actors > 1, "the writers must really have interleaved"
    result = AuditLog(engine).verify()
    assert result.ok, result.break_
    assert result.events_checked == expected


@pytest.mark.postgres
def test_eight_processes_on_postgres_leave_one_gapless_chain(pg_url: str) -> None:
    engine = make_engine(pg_url)
    create_schema(engine)
    _writers(pg_url, processes=8, events=60)
    # Each writer also appends one warm-up event.
    _assert_gapless(engine, 8 * 61)
    engine.dispose()


def test_four_processes_on_sqlite_leave_one_gapless_chain(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    _writers(sqlite_url, processes=4, events=60)
    _assert_gapless(engine, 4 * 61)
    engine.dispose()
