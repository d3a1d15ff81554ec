"""Cross-process kill switch propagation, p50/p99 over N flips per store, beside the anchors.

Run from the repository root::

    python3 benchmarks/kill_switch_propagation.py [--flips 100] [--poll 1.0]
        [--stores sqlite,postgresql,redis]

For each shared store, two OS processes (``tests/ops/ks_worker.py``): a flipper engages and
releases BILLING in turn; a watcher stamps the moment its snapshot changes. Propagation is the
watcher's stamp minus the moment the flipper *started* the flip (so it includes the write itself),
on CLOCK_MONOTONIC, which every process of a Linux host shares. Both use the default polling
backstop (``--poll``, 1 s), as a service would. ``memory://`` is per process: not applicable.

The anchors' documented defaults, printed beside: Unleash SDKs poll every 15 s; LaunchDarkly
server SDKs stream (polling mode has a 30 s minimum interval).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import services
from tests.ops.ks_cluster import Worker, flip_and_watch

ANCHORS = [
    ("Unleash (default refreshInterval)", "poll every 15 s", "0-15 s (mean 7.5 s)"),
    ("LaunchDarkly polling mode", "poll >= 30 s", "0-30 s (mean >= 15 s)"),
    ("LaunchDarkly streaming", "SSE push", "sub-second typical; 20-30 s seen"),
]


def _pg_schema_url() -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    base = services.postgres_url()
    schema = f"bench_ks_{uuid.uuid4().hex[:10]}"
    u = make_url(base)
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, dbname=u.database, autocommit=True
    ) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def _drop_pg_schema(schema: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(services.postgres_url())
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, dbname=u.database, autocommit=True
    ) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def measure(url: str, flips: int, poll: float, **options: object) -> list[tuple[float, float]]:
    """Return ``flips`` propagation times (from flip start, from commit) between two processes.

    Each flip waits a random fraction of the polling interval first: flipping right after the
    watcher's last read would phase-lock a polled store to its worst case every time.
    """
    opts = {"poll": poll, "staleness": max(10.0, 2 * poll), "namespace": "bench", **options}
    flipper = Worker("flipper", url, **opts)
    watcher = Worker("watcher", url, **opts)
    try:
        flipper.expect("ready", 30)
        watcher.expect("ready", 30)
        out = []
        rng = random.Random(1011)
        for i in range(flips):
            op = "engage" if i % 2 == 0 else "release"
            time.sleep(rng.uniform(0, poll))
            out.append(flip_and_watch(flipper, watcher, op, "BILLING", timeout=poll + 10))
        return out
    finally:
        flipper.stop()
        watcher.stop()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=100)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--stores", default="sqlite,postgresql,redis")
    args = parser.parse_args()
    rows: list[tuple[str, str, list[tuple[float, float]]]] = []
    for store in args.stores.split(","):
        if store == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'ks.db'}"
                rows.append(("SQLite file", "poll", measure(url, args.flips, args.poll)))
        elif store == "postgresql":
            url, schema = _pg_schema_url()
            try:
                rows.append(
                    ("PostgreSQL", "LISTEN/NOTIFY + poll", measure(url, args.flips, args.poll))
                )
            finally:
                _drop_pg_schema(schema)
        elif store == "redis":
            import redis

            prefix = f"bench-{uuid.uuid4().hex[:8]}:"
            url = services.redis_url()
            try:
                latencies = measure(url, args.flips, args.poll, key_prefix=prefix)
                rows.append(("Redis", "pub/sub + poll", latencies))
            finally:
                client = redis.Redis.from_url(url)
                keys = list(client.scan_iter(match=f"{prefix}*"))
                if keys:
                    client.delete(*keys)
                client.close()
        else:
            raise SystemExit(f"unknown store {store!r}")

    print(f"kill switch propagation, {args.flips} flips per store, polling backstop {args.poll} s")
    print("from flip start (the write included); after commit in the last two columns")
    print(
        f"{'store':14} {'mechanism':22} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
        f"{'mean ms':>9} {'commit p50':>11} {'commit p99':>11}"
    )
    for name, mechanism, values in rows:
        ms = [v[0] * 1000 for v in values]
        after = [v[1] * 1000 for v in values]
        print(
            f"{name:14} {mechanism:22} {percentile(ms, 50):9.1f} {percentile(ms, 99):9.1f} "
            f"{max(ms):9.1f} {statistics.fmean(ms):9.1f} {percentile(after, 50):11.1f} "
            f"{percentile(after, 99):11.1f}"
        )
    print("memory://      per process            n/a (not shared)")
    print("\nanchors (documented defaults, not measured here):")
    for name, mechanism, expected in ANCHORS:
        print(f"  {name:36} {mechanism:18} {expected}")


if __name__ == "__main__":
    main()
