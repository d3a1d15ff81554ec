"""Nothing is left behind: after a failing test, a Ctrl-C, a killed run; bad input skips cleanly.

The inner runs are real pytest processes using the ``containers`` fixture; each writes the names
of what it started to a file, and the outer test asks the Docker Engine whether they still exist.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_reliability.chaos_infra import MANAGED_LABEL, docker_client, sweep_leftovers
from tests.plugin._helpers import RunInner, by_nodeid

# Redis, not PostgreSQL: its image hashes in milliseconds, and each inner run is a new process.
INNER = """
import json, os, time

import pytest


def _note(*containers):
    with open("started.json", "a") as fh:
        for c in containers:
            fh.write(json.dumps({"name": c.name, "port": c.port}) + "\\n")


def test_pauses_and_fails(containers):
    pg, fresh = containers.redis(), containers.redis(fresh=True)
    _note(pg, fresh)
    proxy = containers.proxy(pg)
    with open("proxy-port", "w") as fh:
        fh.write(str(proxy.port))
    pg.pause()
    fresh.disconnect()
    proxy.latency(0.5)
    assert False, "fails on purpose with faults in place"


def test_next_test_gets_a_healthy_container(containers):
    pg = containers.redis()
    _note(pg)
    assert pg.wait_ready(timeout=1) < 1


def test_waits_to_be_interrupted(containers):
    if not os.environ.get("INNER_WAIT"):
        pytest.skip("only in the interrupted run")
    pg, fresh = containers.redis(), containers.redis(fresh=True)
    _note(pg, fresh)
    open("ready", "w").close()
    time.sleep(60)
"""


@pytest.fixture(scope="module")
def docker() -> Any:
    from pytest_reliability.errors import DockerUnavailable

    try:
        return docker_client()
    except DockerUnavailable as exc:
        pytest.skip(f"containers: {exc.reason}")


def _started(path: Path) -> list[dict[str, Any]]:
    lines = (path / "started.json").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _gone(docker: Any, names: list[str]) -> list[str]:
    """Return the names, among ``names``, that the Docker Engine still has (container or net)."""
    flt = {"label": MANAGED_LABEL}
    # Low-level listings: other runs remove their containers concurrently.
    existing = {
        n.lstrip("/") for c in docker.api.containers(all=True, filters=flt) for n in c["Names"]
    }
    existing |= {n["Name"] for n in docker.api.networks(filters=flt)}
    return sorted(set(names) & existing)


@pytest.fixture
def inner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INNER_WAIT", raising=False)


@pytest.mark.docker
def test_failing_test_leaves_nothing_and_records_the_faults(
    pytester: pytest.Pytester, run_inner: RunInner, docker: Any, inner_env: None
) -> None:
    pytester.makepyfile(INNER)
    result, report = run_inner(subprocess=True)
    result.assert_outcomes(failed=1, passed=1, skipped=1)
    tests = by_nodeid(report)
    kinds = [f["kind"] for f in tests["test_pauses_and_fails"]["facts"]["chaos"]["faults"]]
    assert kinds == ["container_pause", "container_network_disconnect", "proxy_latency"]
    assert "chaos" in tests["test_pauses_and_fails"]["categories"]
    names = [s["name"] for s in _started(pytester.path)]
    assert len(set(names)) == 2  # the shared Redis (noted twice) and the fresh one
    assert _gone(docker, names) == []
    port = int((pytester.path / "proxy-port").read_text())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.docker
@pytest.mark.slow
def test_ctrl_c_leaves_nothing(pytester: pytest.Pytester, docker: Any) -> None:
    pytester.makepyfile(INNER)
    env = {**os.environ, "INNER_WAIT": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    argv = [sys.executable, "-m", "pytest", "-p", "reliability", "-p", "no:cacheprovider"]
    argv += ["-k", "interrupted"]
    log = (pytester.path / "inner.log").open("wb")
    proc = subprocess.Popen(argv, cwd=pytester.path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not (pytester.path / "ready").exists():
            assert proc.poll() is None, (pytester.path / "inner.log").read_text()
            assert time.monotonic() < deadline, "the inner run never started its containers"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED
    names = [s["name"] for s in _started(pytester.path)]
    assert len(names) == 2
    assert _gone(docker, names) == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_killed_run_is_swept_by_the_next(pytester: pytest.Pytester, docker: Any) -> None:
    pytester.makepyfile(INNER)
    env = {**os.environ, "INNER_WAIT": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    argv = [sys.executable, "-m", "pytest", "-p", "reliability", "-p", "no:cacheprovider"]
    proc = subprocess.Popen(
        [*argv, "-k", "interrupted"], cwd=pytester.path, env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 90
        while not (pytester.path / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.kill()  # SIGKILL: no finalizer runs
        proc.wait(timeout=10)
    names = [s["name"] for s in _started(pytester.path)]
    assert _gone(docker, names) == sorted(names)  # left behind, as a killed run must
    assert sweep_leftovers(docker) >= 2
    assert _gone(docker, names) == []


def test_no_docker_engine_skips_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_inner: RunInner
) -> None:
    pytester.makepyfile(INNER)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-docker.sock")
    result, _ = run_inner("-rs", "-k", "next_test", subprocess=True)
    result.assert_outcomes(skipped=1)
    lines = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert len(lines) == 1
    assert "containers: no Docker Engine answers" in lines[0]


@pytest.mark.docker
def test_an_image_that_cannot_be_built_skips_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_inner: RunInner, docker: Any
) -> None:
    pytester.makepyfile(
        """
        def test_wants_redis(containers):
            containers.redis()
        """
    )
    monkeypatch.setenv("PATH", str(pytester.path))  # no redis-server to build from
    result, _ = run_inner("-rs", subprocess=True)
    result.assert_outcomes(skipped=1)
    lines = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert len(lines) == 1
    assert "cannot build a Redis image: no redis-server on this host" in lines[0]


@pytest.mark.docker
def test_a_taken_port_is_a_clear_error_and_leaves_nothing(
    docker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_reliability.chaos_infra import _containers, start_container
    from pytest_reliability.errors import DockerUnavailable

    mark = f"test.port-taken={uuid.uuid4().hex}"
    key, _, value = mark.partition("=")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        # Every port the starter picks is one another process already listens on.
        monkeypatch.setattr(_containers, "_free_port", lambda: taken.getsockname()[1])
        with pytest.raises(
            DockerUnavailable, match="cannot publish a port for the redis container"
        ):
            start_container(docker, "redis", attempts=2, labels={key: value})
    assert docker.containers.list(all=True, filters={"label": mark}) == []
    assert docker.networks.list(filters={"label": mark}) == []
