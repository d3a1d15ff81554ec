"""The chaos engine: each fault kind, triggers from the seed, rollback, the production refusal."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pytest_reliability.errors import ChaosDisabled, ConfigurationError, InjectedFault
from pytest_reliability.ops.chaos_engine import ChaosEngine, Fault, check_armable
from tests.plugin import chaos_targets as targets

T = "tests.plugin.chaos_targets"

pytestmark = pytest.mark.chaos


@pytest.fixture
def armed() -> Iterator[ChaosEngine]:
    with ChaosEngine(seed=1, scope="unit", in_test=True, environ={}) as chaos:
        yield chaos


def test_raise_exception_every_call_then_restored(armed: ChaosEngine) -> None:
    fault = armed.raise_exception(f"{T}.charge")
    for _ in range(2):
        with pytest.raises(InjectedFault, match="charge"):
            targets.charge(5)
    armed.restore()
    assert targets.charge(5) == "charged 5"
    assert fault.as_dict() == {
        "target": f"{T}.charge",
        "kind": "exception",
        "trigger": "always",
        "fired": 2,
    }


def test_on_call_fires_on_the_nth_call_only(armed: ChaosEngine) -> None:
    fault = armed.raise_exception(f"{T}.charge", TimeoutError("upstream"), on_call=3)
    results = []
    for _ in range(5):
        try:
            results.append(targets.charge(1))
        except TimeoutError as exc:
            results.append(str(exc))
    assert results == ["charged 1", "charged 1", "upstream", "charged 1", "charged 1"]
    assert (fault.calls, fault.fired) == (5, 1)


def test_probability_draws_are_reproducible_from_seed_and_scope() -> None:
    def pattern(seed: int, scope: str) -> str:
        with ChaosEngine(seed=seed, scope=scope, in_test=True, environ={}) as chaos:
            chaos.return_value(f"{T}.charge", "declined", probability=0.5)
            return "".join("x" if targets.charge(1) == "declined" else "." for _ in range(40))

    first = pattern(7, "test_a")
    assert first == pattern(7, "test_a")
    assert "x" in first
    assert "." in first
    assert first != pattern(7, "test_b")
    assert first != pattern(8, "test_a")


def test_methods_static_class_and_inherited_are_patched_and_restored(armed: ChaosEngine) -> None:
    armed.return_value(f"{T}.Child.status", "degraded")
    armed.return_value(f"{T}.Base.version", "0")
    armed.return_value(f"{T}:Base.name", "patched")
    assert targets.Child().status() == "degraded"
    assert targets.Base().status() == "ok"  # patched on the subclass only
    assert targets.Child.version() == targets.Base.version() == "0"
    assert targets.Child.name() == "patched"
    armed.restore()
    assert "status" not in targets.Child.__dict__
    assert (targets.Child().status(), targets.Base.version(), targets.Child.name()) == (
        "ok",
        "1",
        "Child",
    )


def test_latency_and_timeout_sleep_through_the_given_sleep() -> None:
    slept: list[float] = []
    with ChaosEngine(in_test=True, environ={}, sleep=slept.append) as chaos:
        chaos.latency(f"{T}.charge", 0.25, on_call=1)
        assert targets.charge(2) == "charged 2"
        assert targets.charge(2) == "charged 2"
        chaos.timeout(f"{T}.Base.status", after=1.5)
        with pytest.raises(TimeoutError):
            targets.Base().status()
    assert slept == [0.25, 1.5]


def test_coroutines_get_async_faults() -> None:
    with ChaosEngine(in_test=True, environ={}) as chaos:
        chaos.latency(f"{T}.fetch", 0.01)
        assert asyncio.run(targets.fetch("k")) == "value of k"
        chaos.timeout(f"{T}.fetch", after=0.0)
        with pytest.raises(TimeoutError):
            asyncio.run(targets.fetch("k"))
    assert asyncio.run(targets.fetch("k")) == "value of k"


def test_stacked_faults_unwind_newest_first(armed: ChaosEngine) -> None:
    armed.return_value(f"{T}.charge", "first")
    armed.return_value(f"{T}.charge", "second")
    assert targets.charge(1) == "second"
    armed.restore()
    assert targets.charge(1) == "charged 1"


@pytest.mark.parametrize(
    "target", ["", "no_such_module_xyz.func", f"{T}.missing", f"{T}.Base.missing", "os:nope"]
)
def test_bad_targets_are_configuration_errors(armed: ChaosEngine, target: str) -> None:
    with pytest.raises(ConfigurationError):
        armed.raise_exception(target)


@pytest.mark.parametrize(
    "kwargs", [{"on_call": 0}, {"probability": 1.5}, {"on_call": 1, "probability": 0.5}]
)
def test_bad_triggers_are_configuration_errors(armed: ChaosEngine, kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        armed.raise_exception(f"{T}.charge", **kwargs)
    assert targets.charge(1) == "charged 1"


def _statement_results(engine: Engine, count: int) -> list[str]:
    out = []
    for _ in range(count):
        try:
            with engine.connect() as conn:
                out.append(str(conn.execute(sa.text("SELECT 1")).scalar()))
        except sa.exc.OperationalError as exc:
            out.append("invalidated" if exc.connection_invalidated else "operational")
    return out


@pytest.mark.parametrize("kind", ["operational", "disconnect"])
def test_database_faults_fail_the_nth_statement_through_sqlalchemy(
    engine: Engine, kind: str
) -> None:
    expected = "invalidated" if kind == "disconnect" else "operational"
    assert _statement_results(engine, 1) == ["1"]  # first connect runs the dialect's own setup
    with ChaosEngine(in_test=True, environ={}) as chaos:
        fault = chaos.database_error(engine, kind=kind, on_call=2)
        results = _statement_results(engine, 3)
    # SQLite's engine issues its own BEGIN, so which round holds statement 2 varies by dialect.
    assert sorted(results) == sorted(["1", "1", expected])
    assert fault.fired == 1
    assert fault.calls >= 3
    assert fault.kind == f"database_{kind}"
    assert _statement_results(engine, 2) == ["1", "1"]


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def _connects(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return False
    return True


def test_refused_connections_hit_only_that_host_and_port(listener: int) -> None:
    other = socket.create_server(("127.0.0.1", 0))
    try:
        with ChaosEngine(in_test=True, environ={}) as chaos:
            fault = chaos.refuse_connections("localhost", listener)
            assert not _connects(listener)
            assert _connects(other.getsockname()[1])
            raw = socket.socket()
            assert raw.connect_ex(("127.0.0.1", listener)) != 0
            raw.close()
        assert fault.fired == 2
        assert _connects(listener)
    finally:
        other.close()


PRODUCTION = list(
    itertools.product(
        ["RELIABILITY_ENV", "APP_ENV", "ENVIRONMENT"],
        ["production", "prod", "PROD", " Production "],
        [None, "true", "false"],
        [True, False],
    )
)


@pytest.mark.parametrize(("var", "value", "enabled", "in_test"), PRODUCTION)
def test_production_always_refuses(
    var: str, value: str, enabled: str | None, in_test: bool
) -> None:
    environ = {var: value}
    if enabled is not None:
        environ["CHAOS_ENABLED"] = enabled
    with pytest.raises(ChaosDisabled, match="production"):
        check_armable(environ, in_test=in_test)
    with pytest.raises(ChaosDisabled):
        ChaosEngine(environ=environ, in_test=in_test)


@pytest.mark.parametrize(
    ("environ", "in_test", "arms"),
    [
        ({}, True, True),
        ({}, False, False),
        # Outside a test CHAOS_ENABLED alone is not enough: the place must be known harmless.
        ({"CHAOS_ENABLED": "true"}, False, False),
        ({"CHAOS_ENABLED": "1", "CI": "true"}, False, True),
        ({"CHAOS_ENABLED": "false"}, False, False),
        ({"CHAOS_ENABLED": "sometimes"}, False, False),
        ({"CHAOS_ENABLED": "true", "APP_ENV": "staging"}, False, True),
        ({"ENVIRONMENT": "production-like"}, True, False),
        ({"ENVIRONMENT": "staging"}, True, True),
        ({"RELIABILITY_ENV": "ci", "CHAOS_ENABLED": "no"}, True, True),
    ],
)
def test_outside_production_arming_needs_a_test_or_chaos_enabled(
    environ: dict[str, str], in_test: bool, arms: bool
) -> None:
    if arms:
        check_armable(environ, in_test=in_test)
    else:
        with pytest.raises(ChaosDisabled):
            check_armable(environ, in_test=in_test)


def test_production_set_after_the_engine_was_made_refuses_new_faults() -> None:
    environ: dict[str, str] = {}
    with ChaosEngine(environ=environ, in_test=True) as chaos:
        environ["APP_ENV"] = "prod"
        with pytest.raises(ChaosDisabled):
            chaos.raise_exception(f"{T}.charge")
    assert targets.charge(1) == "charged 1"


def test_fault_records_are_thread_safe(armed: ChaosEngine) -> None:
    fault: Fault = armed.return_value(f"{T}.charge", "x", probability=0.5)
    threads = [
        threading.Thread(target=lambda: [targets.charge(1) for _ in range(200)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fault.calls == 800
    assert 0 < fault.fired < 800


def test_chaos_fixture_breaks_a_real_database_for_one_test(
    chaos: ChaosEngine, sqlite_engine: Engine
) -> None:
    assert _statement_results(sqlite_engine, 1) == ["1"]
    chaos.database_error(sqlite_engine, kind="disconnect", probability=1.0)
    assert _statement_results(sqlite_engine, 2) == ["invalidated", "invalidated"]
    assert chaos.facts()["fired"] == 2


@pytest.mark.redis
def test_refused_connections_reach_a_real_redis_client(redis_url: str) -> None:
    from urllib.parse import urlsplit

    import redis

    url = urlsplit(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        with ChaosEngine(in_test=True, environ={}) as chaos:
            chaos.refuse_connections(str(url.hostname), int(url.port or 6379))
            with pytest.raises(redis.exceptions.ConnectionError):
                client.ping()
        client.connection_pool.disconnect()
        assert client.ping() is True
    finally:
        client.close()
