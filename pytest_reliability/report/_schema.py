"""Validating reports against the report schema, with JSON-pointer errors.

Finding and loading schemas lives in :mod:`pytest_reliability._schemas`, the one home for every
shipped schema; this module adds the report's defaults and its compiled fast path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from pytest_reliability import _schemas
from pytest_reliability._schemas import SchemaViolation as SchemaViolation
from pytest_reliability.errors import ReportError
from pytest_reliability.report._fastcheck import CompiledSchema

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
def _compiled(name: str) -> CompiledSchema:
    return CompiledSchema(load_schema(name))


def _fast_check(name: str, pointer: str = "#") -> Callable[[Any], bool] | None:
    return _compiled(name).check(pointer)


# What a test entry built by the collector's fast path holds that did not come from pytest's own
# report objects: these are checked on every such entry, the rest is valid by construction.
_ENTRY_PARTS = (
    ("categories", "#/$defs/test/properties/categories"),
    ("facts", "#/$defs/facts"),
    ("properties", "#/$defs/test/properties/properties"),
    ("metadata", "#/$defs/test/properties/metadata"),
    ("captured", "#/$defs/test/properties/captured"),
)


def _proven(
    document: Any,
    fast: Callable[[Any], bool],
    trusted: Collection[int],
    unchecked: Iterable[Any] | None,
) -> bool:
    tests = document.get("tests") if type(document) is dict else None
    if type(tests) is not list:
        return fast(document)
    built: list[Any] = []
    rest: list[Any] = []
    for test in tests:
        (built if id(test) in trusted else rest).append(test)
    if not built:
        return fast(document)
    if not fast({**document, "tests": rest}):
        return False
    checks = []
    for key, pointer in _ENTRY_PARTS:
        check = _fast_check(REPORT_SCHEMA, pointer)
        if check is None:
            return False
        checks.append((key, check))
    (_, check_categories), (_, check_facts), *optional = checks
    if unchecked is None:
        to_check: Iterable[Any] = built
        for entry in built:
            nodeid = entry.get("nodeid")
            if type(nodeid) is not str or not nodeid:
                return False
    else:  # the collector built them with a non-empty node id and listed the others' parts
        to_check = unchecked
    for entry in to_check:
        # Empty: nothing a test put there. Facts and categories are on every entry.
        value = entry.get("facts")
        if value and not check_facts(value):
            return False
        value = entry.get("categories")
        if value and not check_categories(value):
            return False
        for key, check in optional:  # properties, metadata, captured output
            value = entry.get(key)
            if value and not check(value):
                return False
    return True


def validate_report(
    document: Any,
    name: str = REPORT_SCHEMA,
    *,
    trusted: Collection[int] = (),
    unchecked: Iterable[Any] | None = None,
) -> bool:
    """Raise :class:`~pytest_reliability.errors.ReportError` unless ``document`` is valid.

    A compiled check proves most reports valid in one pass; jsonschema decides (and explains)
    whatever that check cannot prove. Returns True when the compiled check proved the document
    valid and strict JSON (:func:`~pytest_reliability.report._fastcheck.is_strict_json`), so that
    :func:`~pytest_reliability.report._io.encode_report` may take its fast encoder; False when
    jsonschema found it valid.

    ``trusted`` holds the ``id()`` of test entries the plugin's collector built itself from
    pytest's reports (:attr:`Collector.built`), in a report no hook could have changed since:
    only the parts of them that came from the tests (facts, categories, properties, metadata)
    are checked. ``unchecked``, when given, lists the trusted entries that hold any such part
    (:attr:`Collector.unchecked`): the others are not looked at at all.
    """
    fast = _fast_check(name)
    if fast is not None:
        if trusted and name == REPORT_SCHEMA:
            if _proven(document, fast, trusted, unchecked):
                return True
        elif fast(document):
            return True
    found = violations(document, name)
    if found:
        shown = "; ".join(str(v) for v in found[:5])
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise ReportError(f"report does not match {name}: {shown}{more}")
    return False
