"""One test, several fault sources: ``chaos``, its proxies and ``containers`` share one record.

Each fixture appends its faults to the test's ``chaos`` facts (``record_chaos_faults``), so the
order in which fixtures finish loses none. ``chaos.proxy(host, port)`` opens a TCP fault proxy,
closed after the test, against the real Redis.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from pytest_reliability.chaos_infra import docker_client
from pytest_reliability.errors import ConfigurationError, DockerUnavailable
from pytest_reliability.ops.chaos_engine import ChaosEngine
from tests.plugin._helpers import RunInner, by_nodeid

pytestmark = pytest.mark.chaos

# chaos is set up first, so it is torn down last: it must not overwrite the proxy's faults.
WITH_A_RECORDED_PROXY = """
import os, socket

from pytest_reliability.chaos_infra import open_recorded_proxy


def test_engine_and_proxy(chaos, request):
    chaos.return_value("os.getpid", -1)
    assert os.getpid() == -1
    with socket.create_server(("127.0.0.1", 0)) as server:
        proxy = open_recorded_proxy(request, "127.0.0.1", server.getsockname()[1])
        proxy.latency(0.01)
        proxy.cut()
"""

THROUGH_CHAOS_PROXY = """
import os, time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def _client(proxy):
    return redis.Redis(
        host=proxy.host, port=proxy.port, socket_timeout=2, socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )


def test_redis_behind_the_chaos_proxy(chaos):
    host, port = os.environ["INNER_REDIS"].rsplit(":", 1)
    proxy = chaos.proxy(host, int(port))
    with open("proxy-port", "w") as fh:
        fh.write(str(proxy.port))
    chaos.return_value("os.getppid", -1)
    client = _client(proxy)
    assert client.ping()
    proxy.latency(0.2)
    began = time.monotonic()
    assert client.ping()
    assert time.monotonic() - began >= 0.2
    proxy.cut()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    proxy.restore()
    client.close()
    again = _client(proxy)
    assert again.ping()
    again.close()


def test_a_failing_test_still_closes_its_proxy(chaos):
    host, port = os.environ["INNER_REDIS"].rsplit(":", 1)
    proxy = chaos.proxy(host, int(port))
    with open("failing-proxy-port", "w") as fh:
        fh.write(str(proxy.port))
    proxy.half_open()
    assert False, "fails on purpose with the proxy half open"
"""

BOTH_FIXTURES = """
import os

import pytest


@pytest.mark.parametrize("order", ["chaos_first", "containers_first"])
def test_both(order, request):
    names = ["chaos", "containers"] if order == "chaos_first" else ["containers", "chaos"]
    fixtures = {name: request.getfixturevalue(name) for name in names}
    chaos, containers = fixtures["chaos"], fixtures["containers"]
    chaos.return_value("os.getpid", -1)
    assert os.getpid() == -1
    server = containers.redis()
    server.pause()
    server.unpause()
"""


def _kinds(report: dict[str, Any], name: str) -> list[str]:
    return sorted(f["kind"] for f in by_nodeid(report)[name]["facts"]["chaos"]["faults"])


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_chaos_keeps_the_faults_another_fixture_recorded(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(WITH_A_RECORDED_PROXY)
    result, report = run_inner()
    result.assert_outcomes(passed=1)
    chaos = by_nodeid(report)["test_engine_and_proxy"]["facts"]["chaos"]
    assert _kinds(report, "test_engine_and_proxy") == ["proxy_cut", "proxy_latency", "return_value"]
    assert chaos["injected"] == 3
    # The engine's fault fired once (the getpid call); the cut refused nothing (no client).
    assert chaos["fired"] == 1


def test_chaos_proxy_breaks_real_redis_connections_and_is_closed_after_the_test(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    redis_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(redis_server_url)
    monkeypatch.setenv("INNER_REDIS", f"{url.host or '127.0.0.1'}:{url.port or 6379}")
    pytester.makepyfile(THROUGH_CHAOS_PROXY)
    result, report = run_inner()
    result.assert_outcomes(passed=1, failed=1)
    kinds = _kinds(report, "test_redis_behind_the_chaos_proxy")
    assert kinds == ["proxy_cut", "proxy_latency", "return_value"]
    faults = by_nodeid(report)["test_redis_behind_the_chaos_proxy"]["facts"]["chaos"]["faults"]
    target = next(f["target"] for f in faults if f["kind"] == "proxy_cut")
    assert target == f"proxy:{url.host or '127.0.0.1'}:{url.port or 6379}"
    assert _kinds(report, "test_a_failing_test_still_closes_its_proxy") == ["proxy_half_open"]
    for name in ("proxy-port", "failing-proxy-port"):
        assert _refused(int((pytester.path / name).read_text())), f"{name}: proxy still open"


def test_an_engine_without_a_proxy_opener_says_how_to_get_a_proxy() -> None:
    with (
        ChaosEngine(in_test=True, environ={}) as engine,
        pytest.raises(ConfigurationError, match=r"use the chaos fixture, or .*FaultProxy"),
    ):
        engine.proxy("127.0.0.1", 6379)


@pytest.mark.docker
def test_chaos_and_containers_in_one_test_keep_both_fixtures_faults(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    try:
        docker_client()
    except DockerUnavailable as exc:
        pytest.skip(f"containers: {exc.reason}")
    pytester.makepyfile(BOTH_FIXTURES)
    result, report = run_inner()
    result.assert_outcomes(passed=2)
    for order in ("chaos_first", "containers_first"):
        name = f"test_both[{order}]"
        assert _kinds(report, name) == ["container_pause", "return_value"]
        assert by_nodeid(report)[name]["facts"]["chaos"]["injected"] == 2
