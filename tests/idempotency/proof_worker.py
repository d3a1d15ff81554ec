"""A worker of the exactly-once proof: delivers random keys until killed.

The proof starts :func:`work` in processes forked from a preloaded fork server (so a restart after
SIGKILL costs milliseconds, not an interpreter start); ``python proof_worker.py URL PREFIX
WORKER_ID SEED KEYS ACK_FILE [--recover FIRST LAST]`` runs the same from a shell.
Every request picks a key at random from ``KEYS`` keys and runs it through the engine; the effect
is written in the transaction that completes the record (SQL: a row in ``proof_effects``; Redis:
``HINCRBY`` in the completing ``EXEC``). After an acknowledgement (a fresh or replayed response)
the worker appends ``A<TAB>key<TAB>response`` to its ack file; a refusal (409 in flight, lease
lost) appends ``R<TAB>key``. With ``--recover`` it delivers keys FIRST..LAST once each, waiting
out leases of killed workers, then exits.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any

import sqlalchemy as sa

from pytest_reliability.errors import IdempotencyInProgress, LeaseLost
from pytest_reliability.idempotency import Attempt, IdempotencyConfig, IdempotencyEngine
from pytest_reliability.tenancy import tenant_scope

LEASE_SECONDS = 1.0
OPERATION = "proof.charge"

effects_table = sa.Table(
    "proof_effects",
    sa.MetaData(),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("worker", sa.Integer, nullable=False),
    sa.Column("fence", sa.Integer, nullable=False),
)


def effects_hash(prefix: str) -> str:
    """The Redis hash counting effects per key."""
    return f"{prefix}proof-effects"


def main(argv: list[str]) -> None:
    """Parse the command line and :func:`work`."""
    recover = (int(argv[7]), int(argv[8])) if len(argv) > 6 else None
    work(argv[0], argv[1], int(argv[2]), argv[3], int(argv[4]), argv[5], recover)


def work(
    url: str,
    prefix: str,
    wid: int,
    seed: str,
    keys: int,
    ack_path: str,
    recover: tuple[int, int] | None = None,
) -> None:
    """Deliver random keys of ``range(keys)`` forever, or each key of ``recover`` once."""
    redis_store = url.startswith("redis")
    # Recovery waits out leases of killed workers; normal workers answer 409 at once.
    config = IdempotencyConfig(
        lease_seconds=LEASE_SECONDS, wait_seconds=10.0 if recover else 0.0, poll_seconds=0.05
    )
    options: dict[str, Any] = (
        {"prefix": prefix, "durability": "warn", "initialize": True}
        if redis_store
        else {"ensure_schema": False}
    )
    engine = IdempotencyEngine.from_url(url, config=config, **options)

    def handler(attempt: Attempt, key: str) -> dict[str, Any]:
        # A little work between claim and completion, as real handlers do: a SIGKILL often lands
        # inside a handler, after its effect is written and before the record completes.
        time.sleep(0.002)
        if redis_store:
            attempt.defer(lambda pipe: pipe.hincrby(effects_hash(prefix), key, 1))
        else:
            insert = effects_table.insert().values(key=key, worker=wid, fence=attempt.fence)
            attempt.connection.execute(insert)
        return {"worker": wid, "pid": os.getpid(), "fence": attempt.fence}

    rng = random.Random(f"{seed}-{os.getpid()}")
    with open(ack_path, "a", buffering=1) as acks, tenant_scope("proof"):
        forever = (rng.randrange(keys) for _ in iter(int, 1))
        order = iter(range(*recover)) if recover else forever
        for n in order:
            key = f"key-{n}"
            try:
                outcome = engine.run(
                    operation=OPERATION,
                    key=key,
                    payload={"key": key, "amount": n % 97},
                    handler=lambda attempt, key=key: handler(attempt, key),
                )
            except (IdempotencyInProgress, LeaseLost):
                acks.write(f"R\t{key}\n")
                continue
            acks.write(f"A\t{key}\t{json.dumps(outcome.response, sort_keys=True)}\n")
    engine.close()


if __name__ == "__main__":
    main(sys.argv[1:])
