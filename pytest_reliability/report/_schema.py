"""Validating reports against the report schema, with JSON-pointer errors.

Finding and loading schemas lives in :mod:`pytest_reliability._schemas`, the one home for every
shipped schema; this module adds the report's defaults and its compiled fast path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_reliability import _schemas
from pytest_reliability._schemas import SchemaViolation as SchemaViolation
from pytest_reliability.errors import ReportError
from pytest_reliability.report._fastcheck import compile_check

SCHEMA_VERSION = "1.2"
"""The ``schema_version`` this plugin writes."""
REPORT_SCHEMA = "reliability-report.schema.json"
"""File name of the reliability report schema."""


def schema_path(name: str = REPORT_SCHEMA) -> Path:
    """Return the path of the shipped schema ``name`` (wheel first, then the source tree)."""
    return _schemas.schema_path(name)


def load_schema(name: str = REPORT_SCHEMA) -> dict[str, Any]:
    """Return the parsed schema ``name``."""
    return _schemas.load_schema(name)


def violations(document: Any, name: str = REPORT_SCHEMA) -> list[SchemaViolation]:
    """Return every violation of schema ``name`` by ``document``, in document order."""
    return _schemas.violations(document, name)


@functools.cache
def _fast_check(name: str) -> Callable[[Any], bool] | None:
    return compile_check(load_schema(name))


def validate_report(document: Any, name: str = REPORT_SCHEMA) -> None:
    """Raise :class:`~pytest_reliability.errors.ReportError` unless ``document`` is valid.

    A compiled check proves most reports valid in one pass; jsonschema decides (and explains)
    whatever that check cannot prove.
    """
    fast = _fast_check(name)
    if fast is not None and fast(document):
        return
    found = violations(document, name)
    if found:
        shown = "; ".join(str(v) for v in found[:5])
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise ReportError(f"report does not match {name}: {shown}{more}")
