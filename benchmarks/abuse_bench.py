"""Abuse protection against the ``limits`` library and slowapi, side by side in one run.

Three measurements, each reported as ours / anchor:

1. In process, memory storage: decisions per second and p99 latency of
   ``AbuseProtection.decide`` (a request signal built per call) against ``limits``'
   ``MovingWindowRateLimiter`` and ``SlidingWindowCounterRateLimiter`` ``hit`` on
   ``MemoryStorage``, same subjects, same limit. Ours once with one detector (request burst,
   the same job as the anchor) and once with every detector (the default ones, the request
   burst at the same limit: see :func:`every_detector`).
2. On the same Redis: the same, against ``limits``' Redis storage, with the round trips per
   decision counted on the client (every command sent to the server).
3. Middleware overhead on the same Starlette app: a request through the bare app, through
   ``AbuseASGIMiddleware`` and through slowapi's ``SlowAPIASGIMiddleware`` (memory storage),
   driven straight through ASGI (no network), overhead = middleware time minus bare time.

The contenders of each part run in turn, ``--rounds`` times, and each one's medians are
reported. Usage: ``python3 benchmarks/abuse_bench.py [--seconds 6] [--rounds 3] [--limit 100]
[--subjects 1000] [--redis URL] [--skip-memory] [--skip-redis] [--skip-middleware]``.

``--instructions [--calls N]`` counts the instructions per decision of the in-process
contenders under callgrind instead (load-independent); see :func:`instructions`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import redis.connection
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from pytest_reliability.security.abuse_protection import (
    AbuseASGIMiddleware,
    AbusePolicy,
    AbuseProtection,
    AuthSpam,
    RequestBurst,
    Scraping,
    Signal,
    Threshold,
    Tier,
)
from pytest_reliability.tenancy import tenant_scope

LIMIT = 100  # per minute and subject, for every contender


def _subjects(n: int) -> list[str]:
    return [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(n)]


def measure(call: Callable[[str], Any], subjects: list[str], seconds: float) -> dict[str, float]:
    """Calls per second and latency percentiles (µs) of ``call(subject)`` for ``seconds``."""
    for s in subjects[:200]:
        call(s)  # warm up: caches, scripts loaded, connections open
    latencies: list[int] = []
    n = len(subjects)
    i = 0
    gc.collect()
    stop = time.perf_counter() + seconds
    clock = time.perf_counter_ns
    start = time.perf_counter()
    while True:
        t0 = clock()
        call(subjects[i % n])
        latencies.append(clock() - t0)
        i += 1
        if i % 256 == 0 and time.perf_counter() >= stop:
            break
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "per_s": i / elapsed,
        "p50_us": latencies[len(latencies) // 2] / 1000,
        "p99_us": latencies[int(len(latencies) * 0.99)] / 1000,
    }


ROUNDS = 3


def interleaved(
    contenders: list[tuple[str, Callable[[str], Any]]], subjects: list[str], seconds: float
) -> dict[str, dict[str, float]]:
    """Measure the contenders in turn, ``ROUNDS`` times (``seconds`` split between the rounds),
    and keep each one's median figures: on a shared machine the load drifts, and alternating
    gives every contender the same drift."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in contenders}
    for _ in range(ROUNDS):
        for name, call in contenders:
            runs[name].append(measure(call, subjects, seconds / ROUNDS))
    return {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in runs.items()
    }


class RoundTrips:
    """Counts the commands the redis client sends (each one is one round trip here).

    It wraps the client's send for the whole Redis part, so every contender pays the same
    counting cost in its timings."""

    def __init__(self) -> None:
        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(conn, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]

    def per_call(self, call: Callable[[str], Any], subjects: list[str], n: int = 500) -> float:
        for s in subjects[:50]:
            call(s)
        before = self.count
        for i in range(n):
            call(subjects[i % len(subjects)])
        return (self.count - before) / n


def ours(url: str, policy: AbusePolicy | None, **options: Any) -> Callable[[str], Any]:
    protection = AbuseProtection.from_url(url, policy, **options)

    def call(subject: str) -> Any:
        return protection.decide(Signal.request(subject, "/api/items"))

    return call


def one_detector() -> AbusePolicy:
    return AbusePolicy(detectors=(RequestBurst((Threshold(60.0, LIMIT, Tier.THROTTLE),)),))


def every_detector() -> AbusePolicy:
    """The default detectors, the request burst at the same limit as every contender.

    With the default burst windows (20 per second) the workload's 1,000 subjects, each asked
    hundreds of times a second, would all be blocked whatever ``--limit`` says: "normal
    traffic" would time the denials. Auth spam and scraping keep their defaults; a request
    for one ordinary path trips neither, but both run on every request."""
    return AbusePolicy(
        detectors=(RequestBurst((Threshold(60.0, LIMIT, Tier.THROTTLE),)), AuthSpam(), Scraping())
    )


def anchor(limiter_cls: type, storage: Any) -> Callable[[str], Any]:
    limiter = limiter_cls(storage)
    item = RateLimitItemPerMinute(LIMIT)

    def call(subject: str) -> Any:
        return limiter.hit(item, subject)

    return call


def row(name: str, r: dict[str, float], base: dict[str, float] | None) -> str:
    ratio = f"{r['per_s'] / base['per_s']:.2f}x" if base else "-"
    return f"| {name} | {r['per_s']:,.0f} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {ratio} |"


def memory_contenders() -> list[tuple[str, Callable[[str], Any]]]:
    """The in-process contenders, the anchor (``limits``' moving window) first."""
    return [
        ("limits MovingWindowRateLimiter (MemoryStorage)",
         anchor(MovingWindowRateLimiter, MemoryStorage())),
        ("limits SlidingWindowCounterRateLimiter (MemoryStorage)",
         anchor(SlidingWindowCounterRateLimiter, MemoryStorage())),
        ("AbuseProtection, request burst only (memory://)", ours("memory://", one_detector())),
        ("AbuseProtection, every detector (memory://)", ours("memory://", every_detector())),
    ]  # fmt: skip


def in_process(subjects: list[str], seconds: float) -> None:
    print("\n### In process, memory storage\n")
    print("| contender | decisions/s | p50 µs | p99 µs | throughput vs limits moving window |")
    print("|---|---|---|---|---|")
    with tenant_scope("bench"):
        results = interleaved(memory_contenders(), subjects, seconds)
    base = next(iter(results.values()))
    for name, r in results.items():
        print(row(name, r, base))


def on_redis(subjects: list[str], seconds: float, url: str) -> None:
    trips = RoundTrips()
    prefix = f"bench-abuse-{uuid.uuid4().hex[:8]}:"
    print("\n### Same Redis\n")
    print("| contender | decisions/s | p50 µs | p99 µs | throughput vs limits moving window "
          "| round trips/decision |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    with tenant_scope("bench"):
        options: dict[str, Any] = {"prefix": prefix, "durability": "warn", "initialize": True}
        contenders = [
            ("limits MovingWindowRateLimiter (RedisStorage)",
             anchor(MovingWindowRateLimiter, storage_from_string(url, key_prefix=prefix + "mw"))),
            ("limits SlidingWindowCounterRateLimiter (RedisStorage)",
             anchor(SlidingWindowCounterRateLimiter,
                    storage_from_string(url, key_prefix=prefix + "sw"))),
            ("AbuseProtection, request burst only (redis://)",
             ours(url, one_detector(), **options)),
            ("AbuseProtection, every detector (redis://)",
             ours(url, every_detector(), **options)),
        ]  # fmt: skip
        results = interleaved(contenders, subjects, seconds)
        base = next(iter(results.values()))
        for name, call in contenders:
            print(row(name, results[name], base) + f" {trips.per_call(call, subjects):.2f} |")
    client = redis.Redis.from_url(url)
    for pattern in (f"{prefix}*", f"LIMITS:{prefix}*"):
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)
    client.close()


def middleware(subjects: list[str], seconds: float) -> None:
    from slowapi import Limiter
    from slowapi.middleware import SlowAPIASGIMiddleware
    from slowapi.util import get_remote_address
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def items(request: Any) -> JSONResponse:
        return JSONResponse({"items": []})

    def app() -> Starlette:
        return Starlette(routes=[Route("/api/items", items)])

    # Each middleware added the way its documentation says, to the same kind of app.
    bare = app()
    guarded = app()
    guarded.add_middleware(
        AbuseASGIMiddleware, protection=AbuseProtection.from_url("memory://", one_detector()),
        tenant="bench",
    )  # fmt: skip
    full = app()
    full.add_middleware(
        AbuseASGIMiddleware, protection=AbuseProtection.from_url("memory://", every_detector()),
        tenant="bench",
    )  # fmt: skip
    slow = app()
    slow.state.limiter = Limiter(
        key_func=get_remote_address, default_limits=[f"{LIMIT}/minute"],
        strategy="moving-window", storage_uri="memory://",
    )  # fmt: skip
    slow.add_middleware(SlowAPIASGIMiddleware)

    async def drive(asgi: Any, subject: str) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": "/api/items", "raw_path": b"/api/items",
            "query_string": b"", "root_path": "", "headers": [(b"host", b"bench")],
            "client": (subject, 1234), "server": ("bench", 80),
        }  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            return None

        await asyncio.wait_for(asgi(scope, receive, send), 5)

    loop = asyncio.new_event_loop()

    def sync(asgi: Any) -> Callable[[str], Any]:
        return lambda subject: loop.run_until_complete(drive(asgi, subject))

    print("\n### Middleware overhead on the same Starlette app (memory storage)\n")
    print("| stack | requests/s | p50 µs | p99 µs | overhead µs/request (p50) |")
    print("|---|---|---|---|---|")
    results = interleaved(
        [
            ("bare Starlette app", sync(bare)),
            ("slowapi SlowAPIASGIMiddleware (moving window)", sync(slow)),
            ("AbuseASGIMiddleware, request burst only", sync(guarded)),
            ("AbuseASGIMiddleware, every detector", sync(full)),
        ],
        subjects,
        seconds,
    )
    b = results["bare Starlette app"]["p50_us"]
    for name, r in results.items():
        overhead = "-" if name.startswith("bare") else f"{r['p50_us'] - b:.1f}"
        cells = f"{r['per_s']:,.0f} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {overhead}"
        print(f"| {name} | {cells} |")
    loop.close()


def run_one(index: int, subjects: list[str], calls: int) -> None:
    """Build the in-process contenders, bring contender ``index`` to the workload's steady
    state (every subject past the limit and its tier's consequences when the limit is low),
    then make ``calls`` more calls: the process that ``instructions`` counts."""
    with tenant_scope("bench"):
        call = memory_contenders()[index][1]
        for _ in range(LIMIT + 50 if LIMIT < 1000 else 2):
            for s in subjects:
                call(s)
        n = len(subjects)
        for i in range(calls):
            call(subjects[i % n])


def callgrind(index: int, subjects: int, calls: int) -> int:
    """Instructions the main thread of one ``run_one`` process executes, counted by callgrind.

    The main thread only: ``limits``' ``MemoryStorage`` expires entries from timer threads
    every 10 ms of wall time, and under callgrind (some 50 times slower) those would be
    charged to far fewer decisions than in a real run. Leaving them out favours the anchor."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", "--cache-sim=no", "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            sys.executable, __file__, "--limit", str(LIMIT), "--subjects", str(subjects),
            "--run-one", str(index), "--calls", str(calls),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        main_thread = Path(f"{out}-01")
        text = main_thread.read_text() if main_thread.exists() else ""
    found = re.search(r"^totals: (\d+)", text, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return int(found.group(1))


def instructions(subjects: int, calls: int) -> None:
    """Instructions per decision of each in-process contender: two runs that differ only in
    ``calls`` more decisions, subtracted, so start-up, set-up and warm-up cancel out. Unlike
    time, the count does not move with the machine's load (the clock still runs: a window or
    a block must not end during a run, which a few seconds under callgrind never reach)."""
    print(f"\n### Instructions per decision in process (callgrind; {calls:,} decisions, "
          f"{subjects} subjects)\n")  # fmt: skip
    print("| contender | instructions/decision | vs limits moving window |")
    print("|---|---:|---:|")
    with tenant_scope("bench"):
        names = [name for name, _ in memory_contenders()]
    base = 0.0
    for index, name in enumerate(names):
        per = (callgrind(index, subjects, 2 * calls) - callgrind(index, subjects, calls)) / calls
        base = base or per
        print(f"| {name} | {per:,.0f} | {base / per:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per contender")
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument(
        "--redis", default=os.environ.get("RELIABILITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    parser.add_argument(
        "--limit", type=int, default=100,
        help="per subject and minute: high, every decision allows (normal traffic); low, most "
        "are over the limit (an attack)",
    )  # fmt: skip
    parser.add_argument(
        "--instructions", action="store_true",
        help="count instructions per decision in process under callgrind instead of timing",
    )  # fmt: skip
    parser.add_argument("--calls", type=int, default=20_000, help="with --instructions")
    parser.add_argument("--run-one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--skip-middleware", action="store_true")
    args = parser.parse_args()
    global ROUNDS, LIMIT
    ROUNDS = max(1, args.rounds)
    LIMIT = args.limit
    subjects = _subjects(args.subjects)
    if args.run_one is not None:
        run_one(args.run_one, subjects, args.calls)
        return
    if args.instructions:
        print(f"limit {LIMIT}/minute")
        instructions(args.subjects, args.calls)
        return
    print(f"load average before: {os.getloadavg()[0]:.1f}; {args.seconds} s per contender, "
          f"{args.subjects} subjects, limit {LIMIT}/minute, "
          f"{ROUNDS} alternating rounds")  # fmt: skip
    if not args.skip_memory:
        in_process(subjects, args.seconds)
    if not args.skip_redis:
        on_redis(subjects, args.seconds, args.redis)
    if not args.skip_middleware:
        middleware(subjects, args.seconds)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
