"""Redis kill switches: namespaces that cannot alias, flips that converge, a store that lost its
data reading engaged until re-seeded, a durability check, and a bounded wait on a frozen server.

Restarts and SIGSTOP happen on a private ``redis-server`` of each test's own.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from harness.private_servers import PrivateRedis
from pytest_reliability.errors import ConfigurationError, PermissionDenied, StoreUnavailable
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import OpsSession
from tests.ops.conftest import OPERATOR, VIEWER, seed_store
from tests.ops.ks_cluster import Worker

pytestmark = [pytest.mark.kill_switch, pytest.mark.redis]


def _switches(url: str, session: OpsSession, **options: object) -> KillSwitches:
    defaults: dict[str, object] = {"durability": "warn", "env": {}, "start": False}
    return KillSwitches.from_url(url, session=session, **{**defaults, **options})


def test_namespace_default_versions_does_not_read_default_s_version_hash(
    redis_url: str, redis_prefix: str, session: OpsSession
) -> None:
    for ns in ("default", "default:versions"):
        seed_store(redis_url, namespace=ns, key_prefix=redis_prefix)
    with (
        _switches(redis_url, session, key_prefix=redis_prefix) as default,
        _switches(
            redis_url, session, key_prefix=redis_prefix, namespace="default:versions"
        ) as other,
    ):
        default.engage("BILLING", reason="incident", actor=OPERATOR)
        assert other.refresh(), other.last_error
        assert not other.stale()
        assert not other.is_engaged("BILLING")


@pytest.mark.slow
def test_concurrent_flips_from_several_processes_converge_on_the_store(
    redis_url: str, redis_prefix: str
) -> None:
    seed_store(redis_url, namespace="race", key_prefix=redis_prefix)
    options = {"namespace": "race", "key_prefix": redis_prefix, "poll": 0.1, "staleness": 5.0}
    workers = [Worker("flipper", redis_url, durability="warn", **options) for _ in range(3)]
    client = redis.Redis.from_url(redis_url)
    records = f"{redis_prefix}ks:4:race"
    rng = random.Random(8)
    bound = 2.0  # poll interval plus slack for a loaded 2-core box; notifications are faster
    try:
        for w in workers:
            assert w.expect("ready", 30)["stale"] is False
        for round_ in range(40):
            ops = [rng.choice(["engage", "release"]) for _ in workers]
            ops[round_ % len(ops)] = "engage" if "release" in ops else "release"
            for w, op in zip(workers, ops, strict=True):
                w.send(f"{op} BILLING")
            for w in workers:
                w.expect("done", 10)
            raw = client.hget(records, "BILLING")
            assert raw is not None
            truth = bool(json.loads(raw)["engaged"])
            deadline = time.monotonic() + bound
            while True:
                views = []
                for w in workers:
                    w.send("state")
                    views.append("BILLING" in w.expect("state", 10)["engaged"])
                if all(v == truth for v in views):
                    break
                assert time.monotonic() < deadline, (
                    f"round {round_}: store engaged={truth}, instances {views} after {bound} s"
                )
                time.sleep(0.05)
    finally:
        client.close()
        for w in workers:
            w.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis without persistence (restartable empty, freezable)."""
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def test_a_server_without_persistence_is_refused_unless_accepted(
    private_redis: PrivateRedis, session: OpsSession
) -> None:
    with pytest.raises(ConfigurationError, match="appendonly"):
        KillSwitches.from_url(private_redis.url, session=session, env={}, start=False)
    with pytest.warns(RuntimeWarning, match="appendonly"):
        _switches(private_redis.url, session).close()


def test_a_new_store_reads_engaged_until_an_operator_seeds_it(
    private_redis: PrivateRedis, session: OpsSession
) -> None:
    with _switches(private_redis.url, session) as switches:
        assert switches.is_engaged("BILLING")
        assert switches.stale()
        assert "no marker" in (switches.last_error or "")
        with pytest.raises(PermissionDenied):
            switches.seed(reason="new store", actor=VIEWER)
        assert switches.is_engaged("BILLING")
        switches.seed(["WEBHOOKS"], reason="new store", actor=OPERATOR)
        assert not switches.is_engaged("BILLING")
        assert switches.is_engaged("WEBHOOKS")


def test_a_restart_that_lost_the_data_reads_engaged_on_every_instance(
    private_redis: PrivateRedis, session: OpsSession
) -> None:
    opts = {"poll_interval": 0.05, "staleness": 30.0, "start": True}
    with (
        _switches(private_redis.url, session, **opts) as a,
        _switches(private_redis.url, session, **opts) as b,
    ):
        a.seed(reason="new store", actor=OPERATOR)
        a.engage("BILLING", reason="incident", actor=OPERATOR)
        a.release("BILLING", reason="over", actor=OPERATOR)
        b.refresh()
        assert not b.is_engaged("WEBHOOKS")
        private_redis.restart_empty()
        # Well within the 30 s staleness bound: a lost store is engaged at once, not "stale later".
        deadline = time.monotonic() + 3
        while not (a.is_engaged("WEBHOOKS") and b.is_engaged("WEBHOOKS")):
            assert time.monotonic() < deadline, "a store that lost its data reads released"
            time.sleep(0.02)
        assert a.is_engaged("BILLING")
        assert b.is_engaged("GLOBAL_WRITE")
        # The operator re-seeds through the RBAC-gated API; versions restarted, instances follow.
        a.seed(["BILLING"], reason="restored after restart", actor=OPERATOR)
        deadline = time.monotonic() + 3
        while b.is_engaged("WEBHOOKS") or not b.is_engaged("BILLING"):
            assert time.monotonic() < deadline, f"instance b did not follow: {b.last_error}"
            time.sleep(0.02)
        assert not a.is_engaged("WEBHOOKS")
        assert a.is_engaged("BILLING")


def test_engage_on_a_frozen_server_fails_within_the_socket_timeout(
    private_redis: PrivateRedis, session: OpsSession
) -> None:
    with _switches(private_redis.url, session) as switches:
        switches.seed(reason="new store", actor=OPERATOR)
        private_redis.pause()
        try:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable):
                switches.engage("BILLING", reason="incident", actor=OPERATOR)
            took = time.monotonic() - began
            assert took < 3.0, f"engage blocked {took:.1f} s on a frozen Redis"
            assert not switches.refresh()
        finally:
            private_redis.resume()
