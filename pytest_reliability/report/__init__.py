"""The reliability report: its schema, building, validation, atomic writing, merge, diff, summary.

The report is a JSON document valid against ``schemas/reliability-report.schema.json`` (Draft
2020-12). Consumers must ignore keys they do not know: a report of schema version 1.x may grow
keys, but never loses or retypes one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # schema 1.2: the views of a report for people and CI
    from pytest_reliability.report._annotations import Annotation, annotations_of, annotations_text
    from pytest_reliability.report._build import ci_environment
    from pytest_reliability.report._diff import ReportDiff, Slowdown, diff_reports
    from pytest_reliability.report._gates import Gate, GateCheck, GateResult
    from pytest_reliability.report._html import render_html
    from pytest_reliability.report._io import check_writable, write_report
    from pytest_reliability.report._merge import merge_reports
    from pytest_reliability.report._metrics import metrics_text
    from pytest_reliability.report._read import read_report
    from pytest_reliability.report._schema import (
        REPORT_SCHEMA,
        SCHEMA_VERSION,
        SchemaViolation,
        load_schema,
        schema_path,
        validate_report,
        violations,
    )
    from pytest_reliability.report._summary import summary_markdown, summary_text
    from pytest_reliability.report._trend import Trend, TrendPoint, build_trend, trend_text

__all__ = [
    "REPORT_SCHEMA",
    "SCHEMA_VERSION",
    # schema 1.2: the views of a report for people and CI
    "Annotation",
    "Gate",
    "GateCheck",
    "GateResult",
    "ReportDiff",
    "SchemaViolation",
    "Slowdown",
    "Trend",
    "TrendPoint",
    "annotations_of",
    "annotations_text",
    "build_trend",
    "check_writable",
    "ci_environment",
    "diff_reports",
    "load_schema",
    "merge_reports",
    "metrics_text",
    "read_report",
    "render_html",
    "schema_path",
    "summary_markdown",
    "summary_text",
    "trend_text",
    "validate_report",
    "violations",
    "write_report",
]

# Where each public name lives. The plugin imports this package on every run but needs only the
# modules that write a report, so the others (diff, merge, summary) load on first use.
_HOME = {
    "REPORT_SCHEMA": "_schema",
    "SCHEMA_VERSION": "_schema",
    "Gate": "_gates",
    "GateCheck": "_gates",
    "GateResult": "_gates",
    "ReportDiff": "_diff",
    "SchemaViolation": "_schema",
    "Slowdown": "_diff",
    "check_writable": "_io",
    "ci_environment": "_build",
    "diff_reports": "_diff",
    "load_schema": "_schema",
    "merge_reports": "_merge",
    "read_report": "_read",
    "schema_path": "_schema",
    "summary_markdown": "_summary",
    "summary_text": "_summary",
    "validate_report": "_schema",
    "violations": "_schema",
    "write_report": "_io",
    "Annotation": "_annotations",
    "annotations_of": "_annotations",
    "annotations_text": "_annotations",
    "render_html": "_html",
    "metrics_text": "_metrics",
    "Trend": "_trend",
    "TrendPoint": "_trend",
    "build_trend": "_trend",
    "trend_text": "_trend",
}


def __getattr__(name: str) -> Any:
    """Import the module that defines the public ``name`` when it is first asked for."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Not cached in this module's globals: pytester's in-process runs drop the submodules that a
    # run imported, and a cached class would then differ from the one the next run's code uses.
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    """List the public names too, loaded or not."""
    return sorted({*globals(), *__all__})
