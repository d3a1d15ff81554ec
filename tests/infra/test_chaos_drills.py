"""The outage-drill skeleton: it times fail-closed and recovery, and catches a module that
never fails closed. (The per-module drills come with the hardened stores.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.chaos_drills import Drill, chaos_drills_section, run_drill, store_drills
from pytest_reliability.chaos_infra import ContainerPool
from pytest_reliability.errors import DockerUnavailable

pytestmark = [pytest.mark.docker, pytest.mark.chaos]


@pytest.fixture(scope="module")
def pool() -> Iterator[ContainerPool]:
    try:
        pool = ContainerPool()
    except DockerUnavailable as exc:
        pytest.skip(f"containers: {exc.reason}")
    yield pool
    pool.close()


def test_a_probe_drill_fails_closed_fast_and_recovers(pool: ContainerPool) -> None:
    drill = next(d for d in store_drills() if (d.store, d.fault) == ("redis", "pause"))
    result = run_drill(pool, drill)
    assert result.violations == []
    assert result.time_to_fail_closed_s is not None
    assert result.time_to_fail_closed_s <= 1.0
    assert result.time_to_recover_s is not None
    section = chaos_drills_section([result])
    assert section["passed"] is True
    assert section["violations"] == 0


def test_a_module_that_never_fails_closed_is_a_violation(pool: ContainerPool) -> None:
    # A "module" that keeps answering from a stale cache while its store is frozen.
    drill = Drill(
        "stale-cache",
        "redis",
        "pause",
        failed_closed=lambda c: False,
        healthy=lambda c: True,
        fail_closed_bound_s=0.2,
    )
    result = run_drill(pool, drill)
    assert result.violations == ["did not fail closed within 0.2 s"]
    assert chaos_drills_section([result])["passed"] is False
    # The fault was undone whatever the drill found.
    assert pool.shared("redis").wait_ready(timeout=5) < 5
