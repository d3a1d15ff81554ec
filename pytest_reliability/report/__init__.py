"""The reliability report: its schema, building, validation, atomic writing, merge, diff, summary.

The report is a JSON document valid against ``schemas/reliability-report.schema.json`` (Draft
2020-12). Consumers must ignore keys they do not know: a report of schema version 1.x may grow
keys, but never loses or retypes one.
"""

from __future__ import annotations

from pytest_reliability.report._build import ci_environment
from pytest_reliability.report._diff import ReportDiff, Slowdown, diff_reports
from pytest_reliability.report._gates import Gate, GateCheck, GateResult
from pytest_reliability.report._io import check_writable, read_report, write_report
from pytest_reliability.report._merge import merge_reports
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

__all__ = [
    "REPORT_SCHEMA",
    "SCHEMA_VERSION",
    "Gate",
    "GateCheck",
    "GateResult",
    "ReportDiff",
    "SchemaViolation",
    "Slowdown",
    "check_writable",
    "ci_environment",
    "diff_reports",
    "load_schema",
    "merge_reports",
    "read_report",
    "schema_path",
    "summary_markdown",
    "summary_text",
    "validate_report",
    "violations",
    "write_report",
]
