"""Append audit events from a separate OS process (tests and benchmarks run several at once).

``python -m harness.audit_writer URL TENANT COUNT [--raw]`` appends COUNT events for TENANT and
prints the elapsed seconds. ``--raw`` instead inserts equivalent rows straight through the DBAPI
driver, one autocommit INSERT each, as the benchmark's anchor (no chain, no lock).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any


def _engine(url: str, synchronous: str | None) -> Any:
    """make_engine's engine; on SQLite optionally with another ``synchronous`` level."""
    from sqlalchemy import event

    from pytest_reliability.db import make_engine

    engine = make_engine(url)
    if synchronous and engine.dialect.name == "sqlite":
        # Registered after make_engine's own "connect" listener, so it runs last and wins.
        @event.listens_for(engine, "connect")
        def _level(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous = {synchronous}")

    return engine


def _append(
    url: str, tenant: str, count: int, start_barrier: float, synchronous: str | None
) -> float:
    from pytest_reliability.audit import AuditLog
    from pytest_reliability.tenancy import tenant_scope

    engine = _engine(url, synchronous)
    log = AuditLog(engine)
    with tenant_scope(tenant):
        log.append("writer.warmup", actor="bench", target="warmup", outcome="ok")
        _wait(start_barrier)
        began = time.perf_counter()
        for i in range(count):
            log.append(
                "invoice.create",
                actor=f"writer-{os.getpid()}",
                target=f"invoice/{i}",
                outcome="ok",
                details={"amount": i, "currency": "EUR"},
            )
        elapsed = time.perf_counter() - began
    engine.dispose()
    return elapsed


def _raw(url: str, tenant: str, count: int, start_barrier: float, synchronous: str | None) -> float:
    """Insert the same shape of rows through the bare driver, one autocommit INSERT per row."""
    import uuid

    engine = _engine(url, synchronous)
    raw = engine.raw_connection()
    dbapi = raw.driver_connection
    assert dbapi is not None
    sqlite = engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    sql = (
        "INSERT INTO bench_raw_events (tenant_id, seq, event_id, occurred_at_us, action, actor, "
        "target, outcome, details, correlation_id, prev_hash, hash) VALUES ("
        + ", ".join([mark] * 12)
        + ")"
    )
    # Autocommit: each INSERT is its own transaction, the cheapest durable write the driver has.
    if sqlite:
        dbapi.isolation_level = None
    else:
        dbapi.autocommit = True
    cur = dbapi.cursor()
    seq = os.getpid() * 10_000_000
    _wait(start_barrier)
    began = time.perf_counter()
    for i in range(count):
        cur.execute(
            sql,
            (
                tenant,
                seq + i,
                str(uuid.uuid4()),
                time.time_ns() // 1000,
                "invoice.create",
                f"writer-{os.getpid()}",
                f"invoice/{i}",
                "ok",
                f'{{"amount":{i},"currency":"EUR"}}',
                None,
                "0" * 64,
                "f" * 64,
            ),
        )
    elapsed = time.perf_counter() - began
    raw.close()
    engine.dispose()
    return elapsed


def _wait(barrier: float) -> None:
    # Writers start together so "8 writers" means 8 at once, not 8 in a row.
    delay = barrier - time.time()
    if delay > 0:
        time.sleep(delay)


def main() -> None:
    """Parse the arguments, write, print the elapsed seconds."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("tenant")
    parser.add_argument("count", type=int)
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default=None)
    args = parser.parse_args()
    fn = _raw if args.raw else _append
    print(f"{fn(args.url, args.tenant, args.count, args.start_at, args.synchronous):.6f}")


if __name__ == "__main__":
    main()
