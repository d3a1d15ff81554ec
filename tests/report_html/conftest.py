"""Fixtures for the HTML, trend, metrics and annotation tests: the plugin tests' inner runs."""

from __future__ import annotations

from tests.plugin.conftest import _isolated_inner_runs, run_inner

__all__ = ["_isolated_inner_runs", "run_inner"]
