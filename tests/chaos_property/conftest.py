"""Fixtures for the property-based chaos tests: inner pytest runs with the checkout service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.plugin._helpers import REPORT, load_report

RunInner = Callable[..., tuple[pytest.RunResult, dict[str, Any]]]

CHECKOUT = Path(__file__).with_name("checkout.py")


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunInner:
    """Run pytest (reliability and Hypothesis' plugin) in a fresh directory holding the checkout
    service as ``checkout.py``; return the result and the schema-valid report."""
    # Inner runs load only what they name, and inherit no reliability setting from outside.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("RELIABILITY_SEED", "RELIABILITY_REPORT", "PYTEST_ADDOPTS", "CHAOS_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(checkout=CHECKOUT.read_text(encoding="utf-8"))

    def run(*args: str, subprocess: bool = False) -> tuple[pytest.RunResult, dict[str, Any]]:
        argv = ["-p", "reliability", "-p", "hypothesispytest", "-p", "no:cacheprovider", *args]
        runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest
        result = runner(*argv)
        return result, load_report(pytester.path / REPORT)

    return run
