"""Cost of the bounded-wait machinery on PostgreSQL: every store call with its client-side
deadline against the same calls with the deadline switched off, in one run.

Run from the repository root::

    python3 benchmarks/store_deadline_overhead.py [--requests 400] [--rounds 5]

Three sides, alternating request by request in one process on the real PostgreSQL, each on its
own keys: ``IdempotencyEngine.run`` as shipped (every store call armed on the watchdog), the same
engine with :class:`~pytest_reliability._sql_bounds.Deadline` arming switched off (the anchor
for the machinery's cost), and the raw psycopg claim-and-complete loop of
``idempotency_overhead.py`` (the anchor for the engine as a whole). Kill switch flips
(``engage``/``release`` on a PostgreSQL store) are measured the same way, with and without.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.idempotency_overhead import _engine_one, _raw_connection, _raw_one, _schema
from pytest_reliability._sql_bounds import Deadline
from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.db import make_engine
from pytest_reliability.idempotency import IdempotencyEngine
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession
from pytest_reliability.tenancy import tenant_scope

_ARM, _DISARM = Deadline.arm, Deadline.disarm


def _deadlines(on: bool) -> None:
    if on:
        Deadline.arm, Deadline.disarm = _ARM, _DISARM  # type: ignore[method-assign]
    else:
        Deadline.arm = lambda self, conn: None  # type: ignore[method-assign]
        Deadline.disarm = lambda self: None  # type: ignore[method-assign]


def _timed(fn: Callable[[], None], deadlines: bool) -> float:
    _deadlines(deadlines)
    t0 = time.perf_counter()
    fn()
    took = time.perf_counter() - t0
    _deadlines(True)
    return took


def _micro(engine: IdempotencyEngine, n: int = 20_000) -> tuple[float, float]:
    """The machinery alone: one arm and disarm on a live connection, against one round trip."""
    sql = engine.store.engine  # type: ignore[attr-defined]
    with sql.connect() as conn:
        best_arm = best_trip = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                d = Deadline(5.0)
                d.arm(conn)
                d.disarm()
            best_arm = min(best_arm, (time.perf_counter() - t0) / n * 1e6)
            t0 = time.perf_counter()
            for _ in range(200):
                conn.exec_driver_sql("SELECT 1").scalar()
            best_trip = min(best_trip, (time.perf_counter() - t0) / 200 * 1e6)
    return best_arm, best_trip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    base, schema = _schema()
    url = f"{base}?options=-csearch_path%3D{schema}"
    engine = IdempotencyEngine.from_url(url)
    raw = _raw_connection(base, schema)
    authz = AuthorizationEngine()
    authz.grant("bench", "ops_operator")
    ctx = OpsContext("bench")
    switches = KillSwitches.from_url(
        url, session=OpsSession(authz, InMemoryAuditLog()), env={}, start=False
    )
    micro = _micro(engine)
    on_ratios: list[float] = []
    raw_ratios: list[float] = []
    flip_ratios: list[float] = []
    totals = {"on": 0.0, "off": 0.0, "raw": 0.0, "flip_on": 0.0, "flip_off": 0.0}
    try:
        with tenant_scope("acme"):
            for r in range(args.rounds + 1):  # round 0 warms up and is not counted
                on = off = theirs = flip_on = flip_off = 0.0
                for i in range(args.requests):
                    sides = [
                        ("on", partial(_engine_one, engine, f"r{r}-on-{i}"), True),
                        ("off", partial(_engine_one, engine, f"r{r}-off-{i}"), False),
                        ("raw", partial(_raw_one, raw, f"r{r}-raw-{i}"), True),
                    ]
                    for name, fn, armed in sides[i % 3 :] + sides[: i % 3]:
                        took = _timed(fn, armed)
                        on += took if name == "on" else 0.0
                        off += took if name == "off" else 0.0
                        theirs += took if name == "raw" else 0.0
                    if i % 8 == 0:
                        op = switches.engage if i % 16 == 0 else switches.release
                        flip = partial(op, "BILLING", reason="bench", actor=ctx)
                        order = (True, False) if i % 32 == 0 else (False, True)
                        for armed in order:
                            took = _timed(flip, armed)
                            flip_on += took if armed else 0.0
                            flip_off += took if not armed else 0.0
                if r == 0:
                    continue
                on_ratios.append(on / off)
                raw_ratios.append(on / theirs)
                flip_ratios.append(flip_on / flip_off)
                for key, value in zip(totals, (on, off, theirs, flip_on, flip_off), strict=True):
                    totals[key] += value
        n = args.requests * args.rounds
        flips = len(range(0, args.requests, 8)) * args.rounds
        print(
            "command: python3 benchmarks/store_deadline_overhead.py "
            f"--requests {args.requests} --rounds {args.rounds}"
        )
        print(f"engine.run, deadlines on   : {totals['on'] / n * 1e6:8.0f} us/request")
        print(f"engine.run, deadlines off  : {totals['off'] / n * 1e6:8.0f} us/request")
        print(f"raw psycopg loop           : {totals['raw'] / n * 1e6:8.0f} us/request")
        print(f"kill switch flip, on / off : {totals['flip_on'] / flips * 1e6:8.0f} / "
              f"{totals['flip_off'] / flips * 1e6:.0f} us")  # fmt: skip
        print(f"Deadline arm+disarm        : {micro[0]:8.2f} us per store call")
        print(f"SELECT 1 round trip        : {micro[1]:8.2f} us (anchor)")
        print(f"arm+disarm / round trip    : {micro[0] / micro[1]:8.3f}x")
        print(f"run on/off per round       : {', '.join(f'{x:.3f}' for x in on_ratios)}")
        print(f"run on/off (median)        : {statistics.median(on_ratios):8.3f}x")
        print(f"run on/raw (median)        : {statistics.median(raw_ratios):8.3f}x")
        print(f"flip on/off (median)       : {statistics.median(flip_ratios):8.3f}x")
    finally:
        switches.close()
        raw.close()
        engine.close()
        cleanup = make_engine(base)
        with cleanup.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        cleanup.dispose()


if __name__ == "__main__":
    main()
