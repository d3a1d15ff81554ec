"""Inner pytest runs for the infrastructure chaos tests (the plugin's loading rules apply)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugin._helpers import REPORT, RunInner, load_report


@pytest.fixture
def run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunInner:
    """Run pytest with ``-p reliability``; return the result and the (schema-valid) report."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("CHAOS_ENABLED", "RELIABILITY_ENV", "APP_ENV", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, subprocess: bool = False) -> tuple[pytest.RunResult, dict[str, Any]]:
        argv = ["-p", "reliability", "-p", "no:cacheprovider", *args]
        runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest
        result = runner(*argv)
        return result, load_report(pytester.path / REPORT)

    return run
