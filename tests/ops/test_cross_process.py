"""Proof across OS processes: a flip is seen by another process within 1 s, and cutting the
store makes every switch read engaged within the staleness bound.

Two worker processes share the real PostgreSQL (LISTEN/NOTIFY) or the real Redis (pub/sub): the
flipper connects directly, the watcher through a private TCP proxy that the test closes to cut it
off from the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from pytest_reliability.ops.kill_switch import KillSwitch
from tests.ops.conftest import seed_store
from tests.ops.ks_cluster import Worker, flip_and_watch
from tests.ops.tcp_proxy import TcpProxy

pytestmark = pytest.mark.kill_switch

# Polling alone would take up to a second: latencies far below it prove the push path works.
POLL = 1.0
STALENESS = 2.0
FLIPS = 6


def through(proxy: TcpProxy, url: str) -> str:
    """Return ``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}"))


def prove(direct: str, proxied: str, proxy: TcpProxy, **options: object) -> None:
    options = {"poll": POLL, "staleness": STALENESS, **options}
    flipper = Worker("flipper", direct, **options)
    watcher = Worker("watcher", proxied, **options)
    try:
        assert flipper.expect("ready", 30)["stale"] is False
        assert watcher.expect("ready", 30)["stale"] is False
        latencies = []
        for i in range(FLIPS):
            op = "engage" if i % 2 == 0 else "release"
            latencies.append(flip_and_watch(flipper, watcher, op, "BILLING")[0])
        assert max(latencies) < 1.0, f"propagation over 1 s: {latencies}"
        assert sorted(latencies)[FLIPS // 2] < 0.25, f"median not from notifications: {latencies}"
        # The cut: reads through the proxy now fail; within the bound every switch reads engaged.
        cut_at = watcher_clock()
        proxy.close()
        stale = watcher.expect("stale", STALENESS + 5, stale=True)
        took = stale["t"] - cut_at
        assert took <= STALENESS + 0.5, f"fail closed after {took:.2f} s"
        shown = [round(x * 1000, 1) for x in latencies]
        print(f"latencies {shown} ms; fail closed in {took:.2f} s")
        assert set(stale["engaged"]) >= set(KillSwitch)
    finally:
        flipper.stop()
        watcher.stop()


def watcher_clock() -> float:
    return time.monotonic()  # the same CLOCK_MONOTONIC the workers stamp events with


@pytest.fixture
def pg_proxy(pg_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(pg_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(redis_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        yield proxy


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_share_postgres(pg_url: str, pg_proxy: TcpProxy) -> None:
    prove(pg_url, through(pg_proxy, pg_url), pg_proxy, namespace="proof")


@pytest.mark.redis
@pytest.mark.slow
def test_two_processes_share_redis(
    redis_url: str, redis_prefix: str, redis_proxy: TcpProxy
) -> None:
    seed_store(redis_url, namespace="proof", key_prefix=redis_prefix)
    prove(
        redis_url,
        through(redis_proxy, redis_url),
        redis_proxy,
        namespace="proof",
        key_prefix=redis_prefix,
        durability="warn",
    )
