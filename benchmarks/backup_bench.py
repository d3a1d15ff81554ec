"""Backup benchmarks: backup + checksum against bare ``pg_dump -Fc`` + ``sha256sum``, and
validation throughput against ``sha256sum -c``.

Run from the repository root::

    python3 benchmarks/backup_bench.py [--rows 400000] [--rounds 5]

A throwaway database ``reliability_bk_<hex>`` on the suite's PostgreSQL is filled with ``--rows``
rows of poorly compressible text plus the package's own tables (audit events, idempotency
records, kill switches), then dropped.

Backup: each round times ``BackupEngine.create`` (snapshot export, ``pg_dump --format=custom``,
per-table digests, fsync, SHA-256, checksum file, manifest) and, alternating, the anchor: the same
``pg_dump -Fc`` binary to a file followed by ``sha256sum`` of it into a checksum file. Ratio = our
median wall time / the anchor's. Target: <= 1.1x.

Validation: ``validate(path)`` (checksum file, manifest, size, SHA-256, ``pg_restore --list``)
against ``sha256sum -c`` on the same file, alternating; MB/s of archive per second of wall time.
Ratio = our MB/s / the anchor's. Target: >= 0.9x.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.backup_drill import create_db, drop_db, populate
from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.ops.backup_engine import BackupEngine
from pytest_reliability.ops.backup_engine._pg_tools import find_tool, libpq_env
from pytest_reliability.ops.rbac import OpsContext
from pytest_reliability.ops.restore_validation import validate


def _fill(url: str, rows: int) -> None:
    import psycopg

    from pytest_reliability.ops.backup_engine._pg_tools import psycopg_params

    populate(url, events=200)
    with psycopg.connect(**psycopg_params(url), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(
            "CREATE TABLE bench_orders (id bigint PRIMARY KEY, customer text, note text, "
            "amount numeric(12, 2), created timestamptz)"
        )
        conn.execute(
            "INSERT INTO bench_orders SELECT g, md5(g::text), md5((g * 7)::text) || "
            "md5((g * 13)::text), (g %% 100000) / 100.0, "
            "'2026-01-01'::timestamptz + g * interval '1 second' "
            "FROM generate_series(1, %s) AS g",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE bench_orders")


def _anchor_backup(url: str, pg_dump: Path, out: Path) -> float:
    began = time.perf_counter()
    subprocess.run([str(pg_dump), "-Fc", f"--file={out}"], env=libpq_env(url), check=True)
    with (out.parent / (out.name + ".sha256")).open("w") as sums:
        subprocess.run(["sha256sum", out.name], cwd=out.parent, stdout=sums, check=True)
    return time.perf_counter() - began


def main() -> None:
    """Run both comparisons and print a Markdown table of the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = create_db()
    try:
        _fill(url, args.rows)
        admin = OpsContext("bench", roles=frozenset({"ops_admin"}))
        pg_dump = find_tool("pg_dump", server_major=None).path
        with tempfile.TemporaryDirectory(prefix="backup-bench-") as scratch:
            root = Path(scratch)
            engine = BackupEngine.from_url(url, directory=root / "ours", audit=InMemoryAuditLog())
            (root / "anchor").mkdir()
            ours: list[float] = []
            anchor: list[float] = []
            backup = None
            for i in range(args.rounds):
                began = time.perf_counter()
                backup = engine.create(actor=admin, reason="benchmark")
                ours.append(time.perf_counter() - began)
                anchor.append(_anchor_backup(url, pg_dump, root / "anchor" / f"a{i}.dump"))
            assert backup is not None
            size_mb = backup.size_bytes / 1e6
            ours_v: list[float] = []
            anchor_v: list[float] = []
            for _ in range(args.rounds * 2):
                began = time.perf_counter()
                assert validate(backup.path).ok
                ours_v.append(time.perf_counter() - began)
                began = time.perf_counter()
                subprocess.run(
                    ["sha256sum", "-c", "--quiet", backup.checksum_path.name],
                    cwd=backup.path.parent,
                    check=True,
                )
                anchor_v.append(time.perf_counter() - began)
    finally:
        drop_db(url)
    o, a = statistics.median(ours), statistics.median(anchor)
    ov, av = size_mb / statistics.median(ours_v), size_mb / statistics.median(anchor_v)
    print(f"database: {args.rows} bench rows; archive {size_mb:.1f} MB; {args.rounds} rounds")
    print("| measure | ours | anchor | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| backup + checksum (median s) | {o:.3f} | {a:.3f} (`pg_dump -Fc` + `sha256sum`) "
        f"| {o / a:.2f}x | <= 1.1x |"
    )
    print(
        f"| validation (MB/s) | {ov:.0f} | {av:.0f} (`sha256sum -c`) | {ov / av:.2f}x | >= 0.9x |"
    )


if __name__ == "__main__":
    main()
