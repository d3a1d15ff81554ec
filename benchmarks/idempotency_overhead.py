"""Per-request overhead of the idempotency engine on PostgreSQL against a raw-SQL loop.

Run from the repository root::

    python3 benchmarks/idempotency_overhead.py [--requests 400] [--rounds 5]

Both sides do the same work for every request, through the same driver (psycopg 3) on the real
PostgreSQL, in one process, alternating request by request: a claim (one autocommit ``INSERT ... ON
CONFLICT DO NOTHING RETURNING``) and a completion transaction (``UPDATE ... WHERE token = ...``)
on a table of the same definition. Ours is ``IdempotencyEngine.run`` (key validation, canonical
fingerprint, tenant scope, SQLAlchemy, the completion in the handler's transaction); the raw
loop is hand-written SQL on a bare psycopg connection. Reported: microseconds per request for
each, and the ratio ours / raw per round and its median (target <= 1.5).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import services
from pytest_reliability.db import make_engine
from pytest_reliability.idempotency import IdempotencyEngine
from pytest_reliability.tenancy import tenant_scope

RAW_CLAIM = """
INSERT INTO raw_idem (tenant_id, operation, key_hash, state, fingerprint, token, fence,
                      lease_expires_ms, expires_ms, created_ms)
VALUES (%s, %s, %s, 'IN_PROGRESS', %s, %s, 1, %s, %s, %s)
ON CONFLICT DO NOTHING RETURNING fence
"""
RAW_COMPLETE = """
UPDATE raw_idem SET state = 'COMPLETED', response = %s, expires_ms = %s
WHERE tenant_id = %s AND operation = %s AND key_hash = %s AND token = %s AND state = 'IN_PROGRESS'
"""


def _schema() -> tuple[str, str]:
    base = services.postgres_url()
    schema = f"bench_idem_{uuid.uuid4().hex[:8]}"
    engine = make_engine(base)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    return base, schema


def _raw_connection(base: str, schema: str) -> psycopg.Connection:
    url = make_engine(base).url
    conn = psycopg.connect(
        host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
        options=f"-csearch_path={schema}",
    )  # fmt: skip
    with conn.transaction():
        conn.execute("CREATE TABLE raw_idem (LIKE idempotency_records INCLUDING ALL)")
    return conn


def _raw_one(conn: psycopg.Connection, key: str) -> None:
    payload = {"amount": 5, "currency": "eur", "key": key}
    fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    token = secrets.token_hex(16)
    now = int(time.time() * 1000)
    # The claim is one atomic statement in autocommit mode, as the engine does it.
    conn.autocommit = True
    claimed = conn.execute(
        RAW_CLAIM,
        ("acme", "billing.charge", key_hash, fingerprint, token, now + 30000, now + 86400000, now),
    ).fetchone()
    conn.autocommit = False
    if claimed is not None:
        with conn.transaction():
            conn.execute(
                RAW_COMPLETE,
                (json.dumps({"charged": 5}), now + 86400000, "acme", "billing.charge", key_hash,
                 token),
            )  # fmt: skip


def _engine_one(engine: IdempotencyEngine, key: str) -> None:
    engine.run(
        operation="billing.charge",
        key=key,
        payload={"amount": 5, "currency": "eur", "key": key},
        handler=lambda attempt: {"charged": 5},
    )


def _measure(
    engine: IdempotencyEngine, raw: psycopg.Connection, keys: list[str]
) -> tuple[float, float]:
    """Alternate request by request (flipping who goes first) so load swings hit both sides."""
    ours = theirs = 0.0
    clock = time.perf_counter
    for i, key in enumerate(keys):
        if i % 2:
            t0 = clock()
            _raw_one(raw, key)
            t1 = clock()
            _engine_one(engine, key)
            t2 = clock()
            theirs += t1 - t0
            ours += t2 - t1
        else:
            t0 = clock()
            _engine_one(engine, key)
            t1 = clock()
            _raw_one(raw, key)
            t2 = clock()
            ours += t1 - t0
            theirs += t2 - t1
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    base, schema = _schema()
    url = f"{base}?options=-csearch_path%3D{schema}"
    engine = IdempotencyEngine.from_url(url)
    raw = _raw_connection(base, schema)
    try:
        with tenant_scope("acme"):
            _measure(engine, raw, [f"warm-{i}" for i in range(50)])
            ratios: list[float] = []
            ours_total = theirs_total = 0.0
            for r in range(args.rounds):
                ours, theirs = _measure(engine, raw, [f"r{r}-{i}" for i in range(args.requests)])
                ratios.append(ours / theirs)
                ours_total += ours
                theirs_total += theirs
        count = args.requests * args.rounds
        print(
            f"command: python3 benchmarks/idempotency_overhead.py --requests {args.requests} "
            f"--rounds {args.rounds}"
        )
        print(f"engine.run on PostgreSQL  : {ours_total / count * 1e6:8.0f} us/request")
        print(f"raw psycopg claim+complete: {theirs_total / count * 1e6:8.0f} us/request")
        print(f"ratio ours/raw, per round : {', '.join(f'{x:.2f}' for x in ratios)}")
        print(f"ratio ours/raw (median)   : {statistics.median(ratios):8.2f}x (target <= 1.5x)")
    finally:
        raw.close()
        engine.close()
        cleanup = make_engine(base)
        with cleanup.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        cleanup.dispose()


if __name__ == "__main__":
    main()
