"""Fixtures for the plugin's tests: inner pytest runs with only the plugins a test names."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugin._helpers import REPORT, RunInner, load_report


@pytest.fixture(autouse=True)
def _isolated_inner_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inner runs load only what they ask for (-p reliability, -p xdist, ...), and inherit no
    # reliability settings from the environment of the outer run.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in (
        "RELIABILITY_SEED",
        "DETERMINISTIC_TEST_IDS",
        "CHAOS_ENABLED",
        "RELIABILITY_ENV",
        "APP_ENV",
        "ENVIRONMENT",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "CI",
        "RELIABILITY_REPORT",
        "RELIABILITY_REPORT_MAX_BYTES",
        "PYTEST_ADDOPTS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_inner(pytester: pytest.Pytester) -> RunInner:
    """Run pytest with ``-p reliability``; return the result and the (schema-valid) report."""

    def run(*args: str, subprocess: bool = False) -> tuple[pytest.RunResult, dict[str, Any]]:
        argv = ["-p", "reliability", "-p", "no:cacheprovider", *args]
        runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest
        result = runner(*argv)
        return result, load_report(pytester.path / REPORT)

    return run
