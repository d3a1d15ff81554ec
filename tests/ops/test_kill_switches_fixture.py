"""The ``kill_switches`` fixture: scenarios, restoration after failure, xdist, the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pytest_reliability.errors import KillSwitchEngaged
from pytest_reliability.ops.kill_switch._scenario import KillSwitchScenario


def test_the_fixture_flips_and_asserts(kill_switches: KillSwitchScenario) -> None:
    switches = kill_switches.switches

    @switches.guard("BILLING")
    def charge() -> str:
        return "charged"

    @switches.guard("WEBHOOKS")
    def deliver() -> str:
        return "delivered"

    error = kill_switches.assert_blocked("BILLING", charge)
    assert error.switch == "BILLING"
    assert kill_switches.assert_allowed("BILLING", deliver) == "delivered"
    kill_switches.assert_blocked("GLOBAL_WRITE", deliver)
    assert not kill_switches.is_engaged("BILLING"), "assert_* put the switch back"
    kill_switches.engage("WEBHOOKS")
    with pytest.raises(KillSwitchEngaged):
        deliver()
    with pytest.raises(AssertionError, match="ran while kill switch"):
        kill_switches.assert_blocked("BACKGROUND_JOBS", charge)
    with pytest.raises(AssertionError, match="was blocked by kill switch WEBHOOKS"):
        kill_switches.assert_allowed("BILLING", deliver)


def test_restore_puts_back_what_it_found(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ks.db'}"
    scenario = KillSwitchScenario(url, namespace="shared")
    scenario.engage("BILLING")
    scenario.engage("WEBHOOKS")
    scenario.restore()
    later = KillSwitchScenario(url, namespace="shared")
    assert later.switches.engaged() == frozenset()
    later.restore()


PYTESTER_TESTS = """
import pytest

@pytest.fixture
def kill_switch_store_url():
    return {url!r}

def test_fails_with_switches_engaged(kill_switches):
    kill_switches.engage("GLOBAL_WRITE")
    kill_switches.engage("BILLING")
    assert False, "boom"

def test_scenario(kill_switches):
    def charge():
        with kill_switches.switches.guard("BILLING"):
            return 1
    kill_switches.assert_blocked("BILLING", charge)
    kill_switches.assert_allowed("WEBHOOKS", charge)
    kill_switches.release("WEBHOOKS")
"""


def _run(pytester: pytest.Pytester, url: str, *args: str) -> tuple[pytest.RunResult, Any]:
    pytester.makepyfile(test_scenarios=PYTESTER_TESTS.format(url=url))
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--reliability-report={report}", *args
    )
    return result, json.loads(report.read_text())


def test_switches_are_restored_even_when_the_test_fails_and_facts_reach_the_report(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    db = tmp_path / "shared.db"
    result, report = _run(pytester, f"sqlite:///{db}")
    result.assert_outcomes(passed=1, failed=1)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM ops_kill_switches")).scalar()
    engine.dispose()
    assert left == 0, "the failing test's switches were left behind"
    facts = {t["nodeid"].split("::")[1]: t["facts"]["kill_switches"] for t in report["tests"]}
    assert facts["test_fails_with_switches_engaged"] == {
        "exercised": ["BILLING", "GLOBAL_WRITE"],
        "engaged": 2,
        "released": 0,
        "blocked_calls": 0,
        "allowed_calls": 0,
    }
    assert facts["test_scenario"] == {
        "exercised": ["BILLING", "WEBHOOKS"],
        "engaged": 2,
        "released": 3,
        "blocked_calls": 1,
        "allowed_calls": 1,
    }
    categories = {t["nodeid"].split("::")[1]: t["categories"] for t in report["tests"]}
    assert "kill_switch" in categories["test_scenario"]


XDIST_TESTS = """
import time
import pytest

@pytest.fixture
def kill_switch_store_url():
    return {url!r}

@pytest.mark.parametrize("n", range(4))
def test_isolated(kill_switches, n):
    # Half the tests engage GLOBAL_WRITE and hold it; the others must never see it.
    if n % 2:
        kill_switches.engage("GLOBAL_WRITE")
        time.sleep(0.5)
        assert kill_switches.is_engaged("GLOBAL_WRITE")
    else:
        for _ in range(50):
            assert not kill_switches.is_engaged("GLOBAL_WRITE")
            time.sleep(0.01)
"""


@pytest.mark.redis
@pytest.mark.slow
def test_xdist_workers_sharing_one_redis_are_isolated(
    pytester: pytest.Pytester, redis_url: str
) -> None:
    pytester.makepyfile(test_xdist=XDIST_TESTS.format(url=redis_url))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=4)


HOOK_CONFTEST = """
import pytest

class Spec:
    @pytest.hookspec
    def pytest_reliability_kill_switch_store(self, config):
        "Return the kill switch store (a URL or a store object)."

def pytest_addhooks(pluginmanager):
    if not hasattr(pluginmanager.hook, "pytest_reliability_kill_switch_store"):
        pluginmanager.add_hookspecs(Spec)

def pytest_reliability_kill_switch_store(config):
    return {url!r}
"""


def test_a_repository_chooses_the_store_through_the_hook(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'hooked.db'}"
    pytester.makeconftest(HOOK_CONFTEST.format(url=url))
    pytester.makepyfile(
        """
        def test_store(kill_switches):
            assert kill_switches.switches.store.kind == "sqlite"
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
