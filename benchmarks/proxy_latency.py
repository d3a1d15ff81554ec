"""The fault proxy's added latency per request, beside a direct connection, in one run.

Run from the repository root::

    python3 benchmarks/proxy_latency.py [--requests 5000] [--rounds 5]

Three clients, each timed direct to the server (the anchor) and through a ``FaultProxy`` with no
fault armed, in alternating blocks so both see the same machine load:

* ``raw PING``: ``PING`` on a plain socket to Redis (the least client overhead);
* ``redis-py PING``: the redis-py client;
* ``psycopg SELECT 1``: libpq, which the proxy reaches and socket patching cannot.

Per client: p50 and p99 microseconds per request, direct and proxied, the added p50 and the
p50 ratio. Target: the proxy adds under 100 µs at p50. The proxy runs in the benchmark's own
process, as it does in a test; the client's and the proxy's threads share the interpreter.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import services
from pytest_reliability.chaos_infra import FaultProxy

Request = Callable[[], object]


def _raw_ping(port: int) -> tuple[Request, Callable[[], None]]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping() -> object:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)

    return ping, sock.close


def _redis_py(port: int) -> tuple[Request, Callable[[], None]]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    return client.ping, client.close


def _psycopg(port: int, dbname: str, user: str) -> tuple[Request, Callable[[], None]]:
    import psycopg

    conn = psycopg.connect(host="127.0.0.1", port=port, dbname=dbname, user=user, autocommit=True)
    return (lambda: conn.execute("SELECT 1").fetchone()), conn.close


def _time(request: Request, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter_ns()
        request()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per block")
    parser.add_argument("--rounds", type=int, default=5, help="direct/proxied block pairs")
    args = parser.parse_args()

    from sqlalchemy.engine import make_url

    pg = make_url(services.postgres_url())
    rd = make_url(services.redis_url())
    pg_port, rd_port = pg.port or 5432, rd.port or 6379
    dbname, user = pg.database or "postgres", pg.username or "postgres"
    clients: list[tuple[str, int, Callable[[int], tuple[Request, Callable[[], None]]]]] = [
        ("raw PING (Redis)", rd_port, _raw_ping),
        ("redis-py PING", rd_port, _redis_py),
        ("psycopg SELECT 1", pg_port, lambda port: _psycopg(port, dbname, user)),
    ]
    print(f"{args.rounds} rounds x {args.requests} requests per side; microseconds per request")
    print(
        "| client | direct p50 | proxied p50 | added p50 | p50 ratio | direct p99 | proxied p99 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, port, make in clients:
        with FaultProxy("127.0.0.1", port) as proxy:
            direct, close_direct = make(port)
            proxied, close_proxied = make(proxy.port)
            try:
                _time(direct, 200)  # warm both paths up: connections, caches, threads
                _time(proxied, 200)
                d: list[float] = []
                p: list[float] = []
                for _ in range(args.rounds):
                    d += _time(direct, args.requests)
                    p += _time(proxied, args.requests)
            finally:
                close_direct()
                close_proxied()
        d50, p50 = statistics.median(d), statistics.median(p)
        print(
            f"| {name} | {d50:.1f} | {p50:.1f} | {p50 - d50:.1f} | {p50 / d50:.2f}x "
            f"| {_pct(d, 0.99):.1f} | {_pct(p, 0.99):.1f} |"
        )


if __name__ == "__main__":
    main()
