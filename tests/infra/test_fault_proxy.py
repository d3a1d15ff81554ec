"""The TCP fault proxy against the real PostgreSQL (libpq, through psycopg) and the real Redis.

No Docker needed: the proxy sits in front of the suite's shared servers and only its own
connections suffer. libpq opens its sockets in C, out of reach of ``refuse_connections``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

from pytest_reliability.chaos_infra import FaultProxy
from pytest_reliability.errors import ConfigurationError
from tests.plugin._helpers import RunInner, by_nodeid

pytestmark = pytest.mark.chaos


def _pg(url: str) -> tuple[str, int, dict[str, Any]]:
    u = make_url(url)
    kwargs = {"user": u.username or "postgres", "dbname": u.database or "postgres"}
    return u.host or "127.0.0.1", u.port or 5432, kwargs


@pytest.fixture
def pg_proxy(postgres_server_url: str) -> Iterator[tuple[FaultProxy, dict[str, Any]]]:
    host, port, kwargs = _pg(postgres_server_url)
    with FaultProxy(host, port) as proxy:
        yield proxy, {"host": proxy.host, "port": proxy.port, "connect_timeout": 3, **kwargs}


@pytest.fixture
def redis_proxy(redis_server_url: str) -> Iterator[tuple[FaultProxy, redis.Redis]]:
    u = make_url(redis_server_url)
    with FaultProxy(u.host or "127.0.0.1", u.port or 6379) as proxy:
        # No retries: each fault must reach the test, not be papered over by a reconnect.
        client = redis.Redis(
            host=proxy.host,
            port=proxy.port,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        yield proxy, client
        client.close()


@pytest.mark.postgres
def test_libpq_goes_through_and_sees_latency(pg_proxy: tuple[FaultProxy, dict[str, Any]]) -> None:
    proxy, conninfo = pg_proxy
    with psycopg.connect(**conninfo) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        proxy.latency(0.2)
        start = time.monotonic()
        conn.execute("SELECT 1")
        assert time.monotonic() - start >= 0.2
        proxy.restore()
        start = time.monotonic()
        conn.execute("SELECT 1")
        assert time.monotonic() - start < 0.2
    assert proxy.faults()[0]["kind"] == "proxy_latency"
    assert proxy.faults()[0]["fired"] >= 1


@pytest.mark.postgres
def test_cut_resets_open_libpq_connections_and_refuses_new_ones(
    pg_proxy: tuple[FaultProxy, dict[str, Any]],
) -> None:
    proxy, conninfo = pg_proxy
    conn = psycopg.connect(**conninfo)
    try:
        conn.execute("SELECT 1")
        proxy.cut()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(**conninfo)
    proxy.restore()
    with psycopg.connect(**conninfo) as again:
        assert again.execute("SELECT 2").fetchone() == (2,)
    assert [f["kind"] for f in proxy.faults()] == ["proxy_cut"]
    assert proxy.faults()[0]["fired"] == 1  # one open connection reset


@pytest.mark.postgres
def test_half_open_accepts_and_never_answers_libpq(
    pg_proxy: tuple[FaultProxy, dict[str, Any]],
) -> None:
    proxy, conninfo = pg_proxy
    proxy.half_open()
    start = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="timeout"):
        psycopg.connect(**{**conninfo, "connect_timeout": 2})
    assert time.monotonic() - start >= 1.5  # it waited: the connection was accepted, not refused
    proxy.restore()
    with psycopg.connect(**conninfo) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.redis
def test_half_open_silences_an_open_redis_connection(
    redis_proxy: tuple[FaultProxy, redis.Redis],
) -> None:
    proxy, client = redis_proxy
    assert client.ping()
    proxy.half_open()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    # Accepted, not refused: a raw connect succeeds and then hears nothing.
    with socket.create_connection((proxy.host, proxy.port), timeout=1) as raw:
        raw.sendall(b"PING\r\n")
        with pytest.raises(TimeoutError):
            raw.recv(16)
    proxy.restore()
    client.connection_pool.disconnect()
    assert client.ping()


@pytest.mark.redis
def test_reset_after_n_bytes(
    redis_proxy: tuple[FaultProxy, redis.Redis], redis_prefix: str
) -> None:
    proxy, client = redis_proxy
    assert client.ping()
    proxy.reset_after(100)
    client.set(f"{redis_prefix}small", "x")  # about 40 bytes each way: under the budget
    with pytest.raises(redis.ConnectionError):
        client.set(f"{redis_prefix}big", "y" * 500)
    assert proxy.faults()[0] == {
        "target": proxy.faults()[0]["target"],
        "kind": "proxy_reset_after",
        "trigger": "always",
        "fired": 1,
    }
    proxy.restore()
    assert client.set(f"{redis_prefix}big", "y" * 500)


@pytest.mark.redis
def test_bandwidth_limits_throughput(
    redis_proxy: tuple[FaultProxy, redis.Redis], redis_prefix: str
) -> None:
    proxy, client = redis_proxy
    client.set(f"{redis_prefix}blob", b"z" * 20_000)
    start = time.monotonic()
    client.get(f"{redis_prefix}blob")
    unlimited = time.monotonic() - start
    proxy.bandwidth(40_000)  # 20 kB at 40 kB/s: half a second at least
    start = time.monotonic()
    assert client.get(f"{redis_prefix}blob") == b"z" * 20_000
    limited = time.monotonic() - start
    assert limited >= 0.45
    assert limited > unlimited * 5


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="target port"):
        FaultProxy("127.0.0.1", 0)
    with FaultProxy("127.0.0.1", 9) as proxy:
        with pytest.raises(ConfigurationError, match="latency"):
            proxy.latency(-1)
        with pytest.raises(ConfigurationError, match="bandwidth"):
            proxy.bandwidth(0)
        with pytest.raises(ConfigurationError, match="byte count"):
            proxy.reset_after(-5)
        with pytest.raises(ConfigurationError, match="direction"):
            proxy.latency(0.1, direction="sideways")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="cannot listen"):
            FaultProxy("127.0.0.1", 9, port=proxy.port)


def test_a_dead_target_looks_like_a_dead_server() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead_port = spare.getsockname()[1]
    # The reset may land while connect() returns or on the first read: either is a reset.
    with FaultProxy("127.0.0.1", dead_port) as proxy, pytest.raises(ConnectionResetError):
        sock = socket.create_connection((proxy.host, proxy.port), timeout=2)
        try:
            sock.sendall(b"x")
            sock.recv(1)
        finally:
            sock.close()


def test_closed_proxy_refuses(redis_server_url: str) -> None:
    u = make_url(redis_server_url)
    proxy = FaultProxy(u.host or "127.0.0.1", u.port or 6379)
    proxy.close()
    proxy.close()  # twice is fine
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=1).close()


RECORDED = """
import socket

from pytest_reliability.chaos_infra import open_recorded_proxy


def test_fails_behind_a_proxy(request):
    with socket.create_server(("127.0.0.1", 0)) as server:  # closed: no ResourceWarning later
        proxy = open_recorded_proxy(request, "127.0.0.1", server.getsockname()[1])
        with open("proxy-port", "w") as fh:
            fh.write(str(proxy.port))
        proxy.latency(0.01)
        proxy.cut()
        assert False, "fails on purpose: the proxy must still be closed and recorded"
"""


def test_recorded_proxy_is_closed_and_lands_in_the_chaos_facts(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(RECORDED)
    result, report = run_inner()
    result.assert_outcomes(failed=1)
    facts = by_nodeid(report)["test_fails_behind_a_proxy"]["facts"]["chaos"]
    assert [f["kind"] for f in facts["faults"]] == ["proxy_latency", "proxy_cut"]
    assert facts["injected"] == 2
    port = int((pytester.path / "proxy-port").read_text())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
