"""Helpers shared by the plugin's tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_reliability.report import validate_report

REPORT = "reports/reliability-validation-report.json"
"""Where inner runs write their report, relative to the pytester directory."""

RunInner = Callable[..., tuple[pytest.RunResult, dict[str, Any]]]


def load_report(path: Path) -> dict[str, Any]:
    """Read a report the plugin wrote and check it against the schema."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    validate_report(document)
    return document


def by_nodeid(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Index a report's tests by node id (the short name after ``::``)."""
    return {t["nodeid"].split("::", 1)[-1]: t for t in report["tests"]}


_NOUNS = {"errors": "error", "warnings": "warnings"}


def assert_closing_line_matches(result: pytest.RunResult, report: dict[str, Any]) -> None:
    """Assert the report's summary counts are those of pytest's closing line."""
    closing = {_NOUNS.get(k, k): v for k, v in result.parseoutcomes().items()}
    summary = report["summary"]
    mine = {k: summary[k] for k in ("passed", "failed", "skipped", "xfailed", "xpassed", "error")}
    mine.update(summary.get("other", {}))
    assert {k: v for k, v in mine.items() if v} == closing
