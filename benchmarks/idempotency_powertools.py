"""The idempotency engine on Redis against AWS Lambda Powertools on the same Redis.

Run from the repository root::

    python3 benchmarks/idempotency_powertools.py [--requests 1000] [--rounds 5]

Both sides protect the same function on the same local Redis, in one process, alternating request
by request (flipping who goes first). Each round delivers ``--requests`` requests per side over
``--requests / 2`` keys, every key twice, so half of the requests are replays.

Ours: ``IdempotencyEngine.run`` with the Redis store (key validation, canonical SHA-256
fingerprint, tenant scope; claim and completion one Lua script each). Theirs:
``idempotent_function`` with ``RedisCachePersistenceLayer`` (MD5 of the payload, the key by
JMESPath), run outside Lambda, which makes it warn on every call that it has no Lambda context;
the warnings are silenced so they are not what is measured. Reported: microseconds per request
and the ratio ours / Powertools per round and its median (target: not slower, ratio <= 1.0).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import services
from pytest_reliability.idempotency import IdempotencyEngine
from pytest_reliability.tenancy import tenant_scope


def _powertools(client: redis.Redis, prefix: str) -> Callable[[dict[str, Any]], Any]:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.persistence.redis import (
        RedisCachePersistenceLayer,
    )

    layer = RedisCachePersistenceLayer(client=client)
    config = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=3600)

    @idempotent_function(
        data_keyword_argument="order", persistence_store=layer, config=config, key_prefix=prefix
    )
    def charge(order: dict[str, Any]) -> dict[str, Any]:
        return {"charged": order["amount"]}

    return lambda order: charge(order=order)


def _batch(call: Callable[[dict[str, Any]], Any], tag: str, requests: int) -> float:
    orders = [{"key": f"{tag}-{i // 2}", "amount": 5} for i in range(requests)]
    start = time.perf_counter()
    for order in orders:
        call(order)
    return time.perf_counter() - start


def _alternating(
    ours: Callable[[dict[str, Any]], Any],
    theirs: Callable[[dict[str, Any]], Any],
    tag: str,
    requests: int,
) -> tuple[float, float]:
    """Request by request, flipping who goes first, so load swings hit both sides alike."""
    mine = other = 0.0
    clock = time.perf_counter
    for i in range(requests):
        order = {"key": f"{tag}-{i // 2}", "amount": 5}
        first, second = (ours, theirs) if i % 4 < 2 else (theirs, ours)
        t0 = clock()
        first(order)
        t1 = clock()
        second(order)
        t2 = clock()
        if first is ours:
            mine, other = mine + (t1 - t0), other + (t2 - t1)
        else:
            mine, other = mine + (t2 - t1), other + (t1 - t0)
    return mine, other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per batch (even)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = services.redis_url()
    prefix = f"bench-idem-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(url)
    engine = IdempotencyEngine.from_url(url, prefix=f"{prefix}:ours:")

    def ours(order: dict[str, Any]) -> Any:
        return engine.run(
            operation="billing.charge",
            key=order["key"],
            payload=order,
            handler=lambda attempt: {"charged": order["amount"]},
        ).response

    warnings.simplefilter("ignore")  # Powertools warns per call outside Lambda; see above
    theirs = _powertools(client, f"{prefix}:theirs")
    try:
        with tenant_scope("acme"):
            _batch(ours, "warm", 100)
            _batch(theirs, "warm", 100)
            ratios: list[float] = []
            ours_total = theirs_total = 0.0
            for r in range(args.rounds):
                mine, other = _alternating(ours, theirs, f"r{r}", args.requests)
                ratios.append(mine / other)
                ours_total += mine
                theirs_total += other
        per = 1e6 / (args.requests * args.rounds)
        ours_us = ours_total * per
        theirs_us = theirs_total * per
        print(
            f"command: python3 benchmarks/idempotency_powertools.py --requests {args.requests} "
            f"--rounds {args.rounds}"
        )
        print(f"ours (Redis store)        : {ours_us:8.0f} us/request, half replays")
        print(f"Powertools (Redis layer)  : {theirs_us:8.0f} us/request, half replays")
        print(f"ratio per round           : {', '.join(f'{x:.2f}' for x in ratios)}")
        print(
            f"ratio ours/Powertools     : {statistics.median(ratios):8.2f}x median (target <= 1.0x)"
        )
    finally:
        engine.close()
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


if __name__ == "__main__":
    main()
