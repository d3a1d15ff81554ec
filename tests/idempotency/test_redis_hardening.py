"""Redis idempotency store: unambiguous keys, a durability check on connect, a marker that
detects a store that lost its data, and a bounded wait on a frozen server.

Restarts, eviction and SIGSTOP happen on a private ``redis-server`` of each test's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.private_servers import PrivateRedis
from pytest_reliability._redis_keys import redis_key
from pytest_reliability.errors import ConfigurationError, IdempotencyUnavailable
from pytest_reliability.idempotency import IdempotencyEngine
from pytest_reliability.tenancy import tenant_scope

pytestmark = [pytest.mark.idempotency, pytest.mark.redis]

# Tenant ids and operation names may both contain ':' (and digits): the old key format
# ``idem:{tenant}:{operation}:{hash}`` let one tenant read another's records.
_part = st.text(alphabet="ab:1.", min_size=0, max_size=8)


@settings(max_examples=2000, deadline=None)
@given(a=st.tuples(_part, _part, _part), b=st.tuples(_part, _part, _part))
def test_distinct_triples_never_share_a_redis_key(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    if a != b:
        assert redis_key("p:", "idem", *a) != redis_key("p:", "idem", *b)


def test_kinds_never_alias_one_another() -> None:
    assert redis_key("", "ks", "default:versions") != redis_key("", "ks-versions", "default")
    with pytest.raises(ValueError, match="kind"):
        redis_key("", "ks2")


class Counter:
    """A handler that counts its runs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, _attempt: Any) -> dict[str, int]:
        self.calls += 1
        return {"run": self.calls}


def _engine(url: str, **options: Any) -> IdempotencyEngine:
    return IdempotencyEngine.from_url(url, **{"durability": "warn", "initialize": True, **options})


def test_a_tenant_whose_id_contains_a_colon_never_gets_another_tenants_response(
    redis_url: str, redis_prefix: str
) -> None:
    engine, handler = _engine(redis_url, prefix=redis_prefix), Counter()
    try:
        with tenant_scope("acme"):
            engine.run(operation="api.POST:x", key="k", payload={}, handler=handler)
        with tenant_scope("acme:api.POST"):
            outcome = engine.run(operation="x", key="k", payload={}, handler=handler)
        assert handler.calls == 2, "tenant acme:api.POST was served tenant acme's record"
        assert not outcome.replayed
    finally:
        engine.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis without persistence (restartable empty, freezable)."""
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def test_a_server_without_persistence_is_refused_unless_accepted_explicitly(
    private_redis: PrivateRedis,
) -> None:
    with pytest.raises(ConfigurationError, match="appendonly"):
        IdempotencyEngine.from_url(private_redis.url, initialize=True)
    with pytest.warns(RuntimeWarning, match="appendonly"):
        IdempotencyEngine.from_url(private_redis.url, initialize=True, durability="warn").close()


def test_an_evicting_memory_policy_is_refused(tmp_path: Path) -> None:
    server = PrivateRedis(
        tmp_path, "--appendonly", "yes", "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"
    ).start()
    try:
        with pytest.raises(ConfigurationError, match="allkeys-lru"):
            IdempotencyEngine.from_url(server.url, initialize=True)
        # The same server with noeviction is accepted: nothing to warn about.
        client = redis.Redis.from_url(server.url)
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
        IdempotencyEngine.from_url(server.url, initialize=True).close()
    finally:
        server.stop()


def test_a_new_store_needs_initialize(private_redis: PrivateRedis) -> None:
    with pytest.raises(IdempotencyUnavailable, match="initialize=True"):
        IdempotencyEngine.from_url(private_redis.url, durability="warn")


def test_a_restart_that_lost_the_data_fails_closed_instead_of_running_again(
    private_redis: PrivateRedis,
) -> None:
    engine, handler = _engine(private_redis.url), Counter()
    try:
        with tenant_scope("acme"):
            engine.run(operation="billing.charge", key="order-1", payload={}, handler=handler)
            private_redis.restart_empty()
            with pytest.raises(IdempotencyUnavailable, match="lost its data"):
                engine.run(operation="billing.charge", key="order-1", payload={}, handler=handler)
            with pytest.raises(IdempotencyUnavailable, match="lost its data"):
                engine.state(operation="billing.charge", key="order-1")
        assert handler.calls == 1, "the order was charged twice"
        # A new instance starting on the emptied server refuses too, unless told to initialise.
        with pytest.raises(IdempotencyUnavailable, match="missing"):
            IdempotencyEngine.from_url(private_redis.url, durability="warn")
    finally:
        engine.close()


def test_a_flushall_and_deferred_effects_fail_closed(private_redis: PrivateRedis) -> None:
    engine, handler = _engine(private_redis.url), Counter()
    client = redis.Redis.from_url(private_redis.url)
    try:
        with tenant_scope("acme"):
            engine.run(operation="op", key="k1", payload={}, handler=handler)
            client.flushall()

            def deferring(attempt: Any) -> int:
                attempt.defer(lambda pipe: pipe.set("effect", 1))
                return 1

            with pytest.raises(IdempotencyUnavailable, match="lost its data"):
                engine.run(operation="op", key="k1", payload={}, handler=handler)
            with pytest.raises(IdempotencyUnavailable, match="lost its data"):
                engine.run(operation="op", key="k2", payload={}, handler=deferring)
        assert handler.calls == 1
        assert client.get("effect") is None
    finally:
        client.close()
        engine.close()


def test_eviction_of_the_marker_is_detected(tmp_path: Path) -> None:
    server = PrivateRedis(
        tmp_path, "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"
    ).start()
    client = redis.Redis.from_url(server.url)
    engine, handler = _engine(server.url), Counter()
    try:
        with tenant_scope("acme"):
            engine.run(operation="op", key="k1", payload={}, handler=handler)
        filler = "x" * 10_000
        for i in range(2_000):  # about 20 MB through a 2 MB limit: LRU evicts the old keys
            client.set(f"junk:{i}", filler)
            if not client.exists(engine.store.marker):  # type: ignore[attr-defined]
                break
        assert not client.exists(engine.store.marker)  # type: ignore[attr-defined]
        with tenant_scope("acme"), pytest.raises(IdempotencyUnavailable, match="lost its data"):
            engine.run(operation="op", key="k1", payload={}, handler=handler)
        assert handler.calls == 1
    finally:
        client.close()
        engine.close()
        server.stop()


def test_a_frozen_server_fails_closed_within_the_socket_timeout(
    private_redis: PrivateRedis,
) -> None:
    engine, handler = _engine(private_redis.url, socket_timeout=1.0), Counter()
    try:
        with tenant_scope("acme"):
            engine.run(operation="op", key="warm", payload={}, handler=handler)
            private_redis.pause()
            began = time.monotonic()
            with pytest.raises(IdempotencyUnavailable):
                engine.run(operation="op", key="k", payload={}, handler=handler)
            took = time.monotonic() - began
        assert took < 3.0, f"blocked {took:.1f} s on a frozen Redis"
        assert handler.calls == 1
    finally:
        private_redis.resume()
        engine.close()


def test_a_client_without_a_socket_timeout_is_refused(private_redis: PrivateRedis) -> None:
    from pytest_reliability.idempotency._redis_store import RedisStore

    client = redis.Redis.from_url(private_redis.url)
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        RedisStore(client, durability="warn", initialize=True)
    client.close()
