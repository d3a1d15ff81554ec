"""Audit log benchmarks: append throughput against a raw insert, and verify throughput.

Run from the repository root::

    python3 benchmarks/audit_bench.py [--events 400] [--rounds 3] [--verify-events 100000]
    python3 benchmarks/audit_bench.py --skip-append --sync-cost --events 1000   # FULL vs NORMAL

Append: for SQLite (a file) and the real PostgreSQL, with 1 and 8 writer processes starting
together, each round times our ``AuditLog.append`` and, alternating, a raw insert of rows of the
same shape through the same DBAPI driver, one transaction per row, into a table of the same
definition without the chain (no head row, no lock, no hash). The ratio is ours / raw wall time.

Verify: 100,000 chained events are written in bulk, then ``AuditLog.verify()`` reads and re-hashes
them all in this one process; reported in events per second.

Sync cost (``--sync-cost``): one SQLite writer, our append and the raw insert, each with
``synchronous = NORMAL`` and with ``FULL`` (what ``make_engine`` sets), alternating in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import services
from pytest_reliability.audit import AuditLog
from pytest_reliability.audit._chain import (
    GENESIS_HASH,
    ChainRow,
    Head,
    RowsLookup,
    event_hash,
    verify_tenant,
)
from pytest_reliability.audit._schema import audit_events, audit_heads
from pytest_reliability.db import create_schema, make_engine


def _fresh_pg_url() -> tuple[str, str]:
    base = services.postgres_url()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = make_engine(base)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    return f"{base}?options=-csearch_path%3D{schema}", schema


def _drop_pg_schema(schema: str) -> None:
    engine = make_engine(services.postgres_url())
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def _prepare(url: str) -> None:
    engine = make_engine(url)
    create_schema(engine)
    # The same columns, key, unique constraint and index as audit_events; no triggers, no head.
    raw_table = sa.Table(
        "bench_raw_events",
        sa.MetaData(),
        *[c._copy() for c in audit_events.columns],
        sa.UniqueConstraint("tenant_id", "seq", name="uq_bench_raw_tenant_seq"),
        sa.Index("ix_bench_raw_tenant_action", "tenant_id", "action"),
    )
    raw_table.create(engine, checkfirst=True)
    engine.dispose()


def _run_writers(
    url: str, writers: int, tenants: int, events: int, raw: bool, synchronous: str | None = None
) -> float:
    start_at = time.time() + 1.5  # every writer imports and connects before the start line
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.audit_writer",
                url,
                f"tenant-{raw}-{i % tenants}",
                str(events),
                "--start-at",
                str(start_at),
                *(["--raw"] if raw else []),
                *(["--synchronous", synchronous] if synchronous else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    elapsed = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"writer failed with exit code {proc.returncode}")
        elapsed.append(float(out.strip()))
    # All writers started at the same instant: the run took as long as the slowest.
    return max(elapsed)


def bench_append(
    events: int,
    rounds: int,
    backends: tuple[str, ...] = ("sqlite", "postgres"),
    single: bool = False,
) -> list[tuple[str, int, int, float, float, float]]:
    """Return (backend, writers, tenants, ours events/s, raw events/s, ratio) rows."""
    rows = []
    layouts = ((1, 1),) if single else ((1, 1), (8, 8), (8, 1))
    for backend in backends:
        for writers, tenants in layouts:
            ours_t, raw_t = [], []
            for _ in range(rounds):
                if backend == "sqlite":
                    tmp = tempfile.mkdtemp()
                    url, schema = f"sqlite:///{tmp}/bench.db", None
                else:
                    url, schema = _fresh_pg_url()
                _prepare(url)
                per_writer = max(1, events // writers)
                raw_t.append(_run_writers(url, writers, tenants, per_writer, raw=True))
                ours_t.append(_run_writers(url, writers, tenants, per_writer, raw=False))
                if schema:
                    _drop_pg_schema(schema)
            total = per_writer * writers
            ours, raw = statistics.median(ours_t), statistics.median(raw_t)
            rows.append((backend, writers, tenants, total / ours, total / raw, ours / raw))
    return rows


def bench_sync_cost(events: int, rounds: int) -> list[tuple[str, str, float]]:
    """Return (what, synchronous, events/s) for one SQLite writer, NORMAL and FULL alternating."""
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for level in ("NORMAL", "FULL"):
            url = f"sqlite:///{tempfile.mkdtemp()}/sync.db"
            _prepare(url)
            for raw in (True, False):
                elapsed = _run_writers(url, 1, 1, events, raw=raw, synchronous=level)
                times.setdefault(("raw insert" if raw else "AuditLog.append", level), []).append(
                    elapsed
                )
    return [(what, level, events / statistics.median(t)) for (what, level), t in times.items()]


def _bulk_chain(url: str, count: int) -> None:
    engine = make_engine(url)
    create_schema(engine)
    prev = GENESIS_HASH
    batch: list[dict[str, object]] = []
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Bulk load without the per-row chain triggers; the head is written once at the end.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for seq in range(1, count + 1):
            partial = (
                "bench",
                seq,
                str(uuid.uuid4()),
                1_700_000_000_000_000 + seq,
                "invoice.create",
                "user:alice",
                f"invoice/{seq}",
                "ok",
                '{"amount":12,"currency":"EUR"}',
                None,
                prev,
            )
            row = ChainRow(*partial, event_hash(partial))
            batch.append(row._asdict())
            prev = row.hash
            if len(batch) == 5000:
                conn.execute(audit_events.insert(), batch)
                batch = []
        if batch:
            conn.execute(audit_events.insert(), batch)
        if engine.dialect.name == "postgresql":
            conn.execute(
                audit_heads.insert().values(tenant_id="bench", last_seq=count, last_hash=prev)
            )
    engine.dispose()


def _verify_with_named_cursor(engine: sa.engine.Engine) -> int:
    """The previous PostgreSQL read path, for comparison: a server-side cursor, 20,000 a fetch."""
    with engine.connect() as conn, conn.begin():
        dbapi: Any = conn.connection.driver_connection
        cursor = dbapi.cursor(name="bench_verify", binary=True)
        cursor.itersize = 20_000
        cursor.execute(
            f"SELECT {', '.join(ChainRow._fields)} FROM audit_events "
            "WHERE tenant_id = %s ORDER BY seq, id",
            ("bench",),
        )
        head = Head(
            *conn.exec_driver_sql(
                "SELECT last_seq, last_hash FROM audit_heads WHERE tenant_id = 'bench'"
            ).one()
        )
        checked, broken = verify_tenant("bench", cursor, head, RowsLookup([]))
        cursor.close()
    assert broken is None, broken
    return checked


def _timed(fn: Any) -> tuple[float, float]:
    """Wall and CPU seconds (this process's) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_verify(count: int, rounds: int = 3) -> list[tuple[str, float, float]]:
    """Return (read path, events/s wall, events per CPU second) for verifying ``count`` events.

    The CPU rate counts only this process's time: on a loaded machine the wall rate measures the
    run queue, while the CPU rate is what one free core would verify (on PostgreSQL the server
    works on the other core, concurrently).
    """
    tmp = tempfile.mkdtemp()
    out = _verify_backend(f"sqlite:///{tmp}/verify.db", count, rounds)
    url, schema = _fresh_pg_url()
    try:
        out += _verify_backend(url, count, rounds)
    finally:
        _drop_pg_schema(schema)
    return out


def _verify_backend(url: str, count: int, rounds: int) -> list[tuple[str, float, float]]:
    from pytest_reliability.audit import _dialect

    _bulk_chain(url, count)
    engine = make_engine(url)
    log = AuditLog(engine)
    log.verify()  # warm caches

    def ours() -> None:
        result = log.verify()
        assert result.ok, result
        assert result.events_checked == count, result

    paths: dict[str, Any] = {"SQLite (AuditLog.verify)": ours}
    if url.startswith("postgresql"):
        chunked = _dialect._chunked_rows()

        def copy_path() -> None:
            _dialect._chunked_rows = lambda: False  # type: ignore[assignment]
            try:
                ours()
            finally:
                _dialect._chunked_rows = lambda: chunked  # type: ignore[assignment]

        paths = {
            "PostgreSQL, chunked rows (AuditLog.verify)": ours,
            "PostgreSQL, COPY ... TO STDOUT (previous)": copy_path,
            "PostgreSQL, server-side cursor (before that)": (
                lambda: _verify_with_named_cursor(engine)
            ),
        }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for _ in range(rounds):  # alternate the paths, so load drifts hit them alike
        for name, fn in paths.items():
            times[name].append(_timed(fn))
    engine.dispose()
    out = []
    for name, samples in times.items():
        wall = min(w for w, _ in samples)
        cpu = min(c for _, c in samples)
        out.append((name, count / wall, count / cpu))
    return out


def main() -> None:
    """Run both benchmarks and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400, help="events per run (split by writers)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--verify-events", type=int, default=100_000)
    parser.add_argument("--skip-append", action="store_true")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--single-writer", action="store_true", help="one writer only")
    parser.add_argument("--sync-cost", action="store_true", help="SQLite FULL against NORMAL")
    args = parser.parse_args()
    if args.sync_cost:
        rates = {(w, lvl): r for w, lvl, r in bench_sync_cost(args.events, args.rounds)}
        print("| SQLite, one writer | NORMAL events/s | FULL events/s | FULL cost |")
        print("|---|---|---|---|")
        for what in ("raw insert", "AuditLog.append"):
            normal, full = rates[(what, "NORMAL")], rates[(what, "FULL")]
            print(f"| {what} | {normal:,.0f} | {full:,.0f} | {normal / full:.2f}x the time |")
        print()
    if not args.skip_append:
        print(
            "| backend | writers | tenants | AuditLog.append events/s | raw insert events/s "
            "| ratio |"
        )
        print("|---|---|---|---|---|---|")
        for backend, writers, tenants, ours, raw, ratio in bench_append(
            args.events,
            args.rounds,
            (args.backend,) if args.backend else ("sqlite", "postgres"),
            args.single_writer,
        ):
            print(
                f"| {backend} | {writers} | {tenants} | {ours:,.0f} | {raw:,.0f} | {ratio:.2f}x |"
            )
    if args.skip_verify:
        return
    print()
    load = os.getloadavg()[0]
    print(f"{args.verify_events:,} events, best of {args.rounds} rounds, load average {load:.1f}")
    print("| read path | verify events/s (wall) | events per CPU second of the verifier |")
    print("|---|---|---|")
    for backend, rate, cpu_rate in bench_verify(args.verify_events, args.rounds):
        print(f"| {backend} | {rate:,.0f} | {cpu_rate:,.0f} |")


if __name__ == "__main__":
    main()
