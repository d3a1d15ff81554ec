"""The full outage drill as a pytest run, so the plugin writes its report and ``chaos_drills``.

``ci/chaos-validation.sh`` runs it (``pytest -p reliability harness/drills/full_drill.py``): one
test per drill of :func:`harness.chaos_drills.full_scenarios`, each failing on any violation. No
Docker Engine is a failure here, with the reason: a gate that skipped would prove nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.chaos_drills import Scenario, full_scenarios, run_scenario
from pytest_reliability.chaos_infra import ContainerPool
from pytest_reliability.errors import DockerUnavailable


@pytest.fixture(scope="module")
def pool() -> Iterator[ContainerPool]:
    """One PostgreSQL and one Redis container for every drill, removed at the end."""
    try:
        pool = ContainerPool()
    except DockerUnavailable as exc:
        pytest.fail(f"containers: {exc.reason}", pytrace=False)
    yield pool
    pool.close()


@pytest.mark.chaos
@pytest.mark.docker
@pytest.mark.parametrize("scenario", full_scenarios(), ids=lambda s: s.name)
def test_drill(pool: ContainerPool, scenario: Scenario) -> None:
    """Every module drilled fails closed within its bound, recovers, and the history is clean."""
    results = run_scenario(pool, scenario)
    problems = [f"{r.module}: {v}" for r in results for v in r.violations]
    assert problems == [], f"drill {scenario.name} found violations:\n" + "\n".join(problems)
