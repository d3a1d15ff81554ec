"""Docker faults on real PostgreSQL and Redis containers, through the ``containers`` fixture.

One container of each kind serves the whole module (the fixture restores it after every test),
so the module costs one PostgreSQL and one Redis start.
"""

from __future__ import annotations

import time

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pytest_reliability.chaos_infra import Containers, ManagedContainer

pytestmark = [pytest.mark.docker, pytest.mark.chaos]


def _redis(container: ManagedContainer) -> redis.Redis:
    return redis.Redis.from_url(
        container.url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def test_urls_are_on_loopback(containers: Containers) -> None:
    for container in (containers.postgres(), containers.redis()):
        assert (
            container.url.split("@")[-1].split("//")[-1].startswith(f"127.0.0.1:{container.port}")
        )
        assert container.host == "127.0.0.1"


def test_paused_postgres_hangs_then_answers_again(containers: Containers) -> None:
    pg = containers.postgres()
    with psycopg.connect(pg.url, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS paused_t (n int)")
        conn.commit()
        pg.pause()
        start = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            psycopg.connect(pg.url, connect_timeout=1)
        assert time.monotonic() - start >= 0.9  # a hang, not a refusal
        pg.unpause()
        conn.execute("INSERT INTO paused_t VALUES (1)")  # the old connection survived
        conn.commit()
    assert [f["kind"] for f in pg.faults()] == ["container_pause"]


def test_killed_redis_refuses_and_comes_back_empty(containers: Containers) -> None:
    r = containers.redis()
    client = _redis(r)
    client.set("k", "v")
    r.kill()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    r.start()
    assert client.get("k") is None  # SIGKILL, no persistence: the data went with the process
    client.close()


def test_stopped_postgres_refuses_and_restarts_with_its_data(containers: Containers) -> None:
    pg = containers.postgres()
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS kept_t; CREATE TABLE kept_t (n int)")
        conn.execute("INSERT INTO kept_t VALUES (7)")
    pg.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.url, connect_timeout=2)
    pg.start()
    with psycopg.connect(pg.url) as conn:
        assert conn.execute("SELECT n FROM kept_t").fetchone() == (7,)


def test_restart_breaks_open_connections(containers: Containers) -> None:
    pg = containers.postgres()
    conn = psycopg.connect(pg.url)
    try:
        pg.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()
    with psycopg.connect(pg.url) as again:
        assert again.execute("SELECT 1").fetchone() == (1,)


def test_network_disconnect_refuses_until_reconnected(containers: Containers) -> None:
    r = containers.redis()
    client = _redis(r)
    assert client.ping()
    r.disconnect()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    r.reconnect()
    r.wait_ready(timeout=10)
    assert client.ping()  # same URL: the published port survives the reconnect
    client.close()


def test_a_proxy_in_front_of_a_container(containers: Containers) -> None:
    r = containers.redis()
    proxy = containers.proxy(r)
    client = redis.Redis(
        host=proxy.host, port=proxy.port, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    assert client.ping()
    proxy.cut()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


def test_a_fault_left_in_place_is_undone_for_the_next_test(containers: Containers) -> None:
    # The previous tests left nothing paused, stopped or disconnected: the shared containers
    # answer at once, on the same ports.
    pg, r = containers.postgres(), containers.redis()
    assert pg.wait_ready(timeout=1) < 1
    assert r.wait_ready(timeout=1) < 1
    pg.pause()  # left in place on purpose: the fixture must undo it
    r.disconnect()


def test_after_a_left_fault_everything_answers(containers: Containers) -> None:
    pg, r = containers.postgres(), containers.redis()
    assert pg.wait_ready(timeout=2) < 2
    assert r.wait_ready(timeout=2) < 2
