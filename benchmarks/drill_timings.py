"""Outage-drill timings: time to the first fail-closed answer and time to recover, per module
and fault, p50 and p99 over repeated drills, beside what the anchors' defaults wait.

Each drill is :func:`harness.chaos_drills.run_scenario` (containers, worker traffic, probes,
history check), repeated ``--repeats`` times on one container pool. The anchors are measured in
the same run on the same paused containers, with their libraries' defaults: a SQLAlchemy engine
with a pooled psycopg connection (``SELECT 1``), a new psycopg connection, and redis-py
``PING``; each is waited for up to ``--anchor-cap`` seconds (past it the row says so).

    python3 benchmarks/drill_timings.py --repeats 5
    python3 benchmarks/drill_timings.py --repeats 1 --scenario postgres:pause   # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.chaos_drills import Scenario, full_scenarios, run_scenario
from pytest_reliability.chaos_infra import ContainerPool


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (with 5 values, p99 is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _timed(call: Callable[[], object], cap: float) -> float | None:
    """Seconds until ``call`` returned or raised; None when it was still waiting at ``cap``."""
    done = threading.Event()
    start = time.monotonic()
    took: list[float] = []

    def run() -> None:
        with contextlib.suppress(Exception):  # an error is an answer: it stopped waiting
            call()
        took.append(time.monotonic() - start)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    done.wait(cap)
    return took[0] if took else None


def anchor_waits(pool: ContainerPool, cap: float) -> dict[str, float | None]:
    """How long the anchors' default clients wait on a paused PostgreSQL and Redis."""
    import psycopg
    import redis
    import sqlalchemy as sa

    pg = pool.shared("postgres")
    rd = pool.shared("redis")
    engine = sa.create_engine(pg.url.replace("postgresql://", "postgresql+psycopg://", 1))
    client = redis.Redis(host=rd.host, port=rd.port)
    waits: dict[str, float | None] = {}
    try:
        with engine.connect() as conn:  # one pooled connection, as a running service has
            conn.exec_driver_sql("SELECT 1")
        client.ping()

        def select() -> None:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

        def connect() -> None:
            psycopg.connect(host=pg.host, port=pg.port, user="postgres", dbname="postgres").close()

        for name, container, call in (
            ("SQLAlchemy + psycopg defaults, pooled connection: SELECT 1", pg, select),
            ("psycopg defaults: a new connection", pg, connect),
            ("redis-py defaults: PING", rd, client.ping),
        ):
            container.pause()
            try:
                waits[name] = _timed(call, cap)
            finally:
                container.unpause()
    finally:
        client.close()
        engine.dispose()
    return waits


def _fmt(value: float | None, cap: float | None = None) -> str:
    if value is None:
        return f"> {cap:g} (still waiting)" if cap is not None else "-"
    return f"{value:.3f}"


def main(argv: list[str]) -> int:
    """Run the drills ``--repeats`` times, then the anchors; print Markdown tables."""
    parser = argparse.ArgumentParser(prog="benchmarks/drill_timings.py")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--anchor-cap", type=float, default=10.0)
    parser.add_argument("--scenario", action="append", default=[], help="STORE:FAULT")
    args = parser.parse_args(argv)
    # The gate's drills without the backup module, whose refusal is its 10 s connect timeout.
    gate = {s.name: tuple(m for m in s.drilled() if m != "backup") for s in full_scenarios()}
    names = args.scenario or list(gate)
    scenarios = [
        Scenario(*name.split(":", 1), gate.get(name, ()), workers=args.workers) for name in names
    ]
    load = os.getloadavg()
    began = time.monotonic()
    closes: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    recovers: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    bounds: dict[tuple[str, str, str], float] = {}
    violations = 0
    pool = ContainerPool()
    try:
        pool.shared("postgres")
        pool.shared("redis")
        for _ in range(args.repeats):
            for scenario in scenarios:
                for r in run_scenario(pool, scenario):
                    key = (r.store, r.fault, r.module)
                    bounds[key] = r.fail_closed_bound_s
                    violations += len(r.violations)
                    if r.time_to_fail_closed_s is not None:
                        closes[key].append(r.time_to_fail_closed_s)
                    if r.time_to_recover_s is not None:
                        recovers[key].append(r.time_to_recover_s)
        anchors = anchor_waits(pool, args.anchor_cap)
    finally:
        pool.close()
    print(
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"after {time.monotonic() - began:.0f} s {os.getloadavg()[0]:.2f}; {args.repeats} "
        f"repeats, {args.workers} traffic workers, {violations} violations\n"
    )
    print(
        "| store | fault | module | fail closed p50 s | p99 s | bound s | recover p50 s | p99 s |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for key in sorted(bounds):
        c, r = closes.get(key, []), recovers.get(key, [])
        print(
            f"| {' | '.join(key)} | {_fmt(percentile(c, 50) if c else None)} | "
            f"{_fmt(percentile(c, 99) if c else None)} | {bounds[key]:g} | "
            f"{_fmt(percentile(r, 50) if r else None)} | {_fmt(percentile(r, 99) if r else None)} |"
        )
    print("\n| anchor, defaults, on a paused container | waited s |")
    print("|---|---:|")
    for name, wait in anchors.items():
        print(f"| {name} | {_fmt(wait, args.anchor_cap)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
