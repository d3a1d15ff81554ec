"""Is the private ``c_make_encoder`` call worth keeping? Audit row hashing, side by side.

Hashes the same audit chain rows (the eleven fields verification hashes per event) three ways,
alternating rounds in one process:

* ``private-c``: ``_canonical_json.canonical_array`` (a C encoder built once with the private
  ``json.encoder.c_make_encoder``), what the chain uses;
* ``public-encoder``: a ``json.JSONEncoder`` built once with the same settings, ``.encode(row)``
  (public API; CPython builds a new C encoder inside every call);
* ``json.dumps``: ``json.dumps(row, <same settings>)`` per row.

Each is followed by UTF-8 encoding and SHA-256, as in ``event_hash``. Prints rows/s per way and
the ratio to ``private-c``; the median of the rounds is the figure.

    python3 benchmarks/canonical_json.py --rows 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from pytest_reliability._canonical_json import canonical_array

_public = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _rows(n: int) -> list[list[Any]]:
    details = '{"action":"invoice.create","amount":1999,"key_hash":"' + "ab" * 32 + '"}'
    return [
        [
            1,
            "tenant-0042",
            i + 1,
            f"audit-event-{i:012d}",
            1767225600000000 + i,
            "invoice.create",
            "billing-service",
            f"invoice:{i}",
            "allowed",
            details,
            f"corr-{i:08d}",
            "cd" * 32,
        ]
        for i in range(n)
    ]


def _private(row: list[Any]) -> str:
    return hashlib.sha256(canonical_array(row)).hexdigest()


def _public_encoder(row: list[Any]) -> str:
    return hashlib.sha256(_public.encode(row).encode()).hexdigest()


def _dumps(row: list[Any]) -> str:
    text = json.dumps(
        row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


WAYS: dict[str, Callable[[list[Any]], str]] = {
    "private-c": _private,
    "public-encoder": _public_encoder,
    "json.dumps": _dumps,
}


def main() -> None:
    """Run the comparison and print rows/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = _rows(args.rows)
    digests = {name: [fn(r) for r in rows[:100]] for name, fn in WAYS.items()}
    assert len({tuple(d) for d in digests.values()}) == 1, "the three ways disagree"
    rates: dict[str, list[float]] = {name: [] for name in WAYS}
    names = list(WAYS)
    for round_ in range(args.rounds):
        # Rotate the order each round so drift in machine load hits every way alike.
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            fn = WAYS[name]
            start = time.perf_counter()
            for row in rows:
                fn(row)
            rates[name].append(len(rows) / (time.perf_counter() - start))
    base = statistics.median(rates["private-c"])
    print(f"{args.rows} rows x {args.rounds} rounds (median rows/s; ratio = time vs private-c)")
    for name in names:
        median = statistics.median(rates[name])
        print(f"  {name:15s} {median:12,.0f} rows/s   {base / median:5.2f}x")


if __name__ == "__main__":
    main()
