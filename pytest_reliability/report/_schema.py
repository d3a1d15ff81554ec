"""Loading the report schema and validating reports against it, with JSON-pointer errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, final

from pytest_reliability.errors import ReportError
from pytest_reliability.report._fastcheck import compile_check

SCHEMA_VERSION = "1.1"
"""The ``schema_version`` this plugin writes."""
REPORT_SCHEMA = "reliability-report.schema.json"
"""File name of the reliability report schema."""


def schema_path(name: str = REPORT_SCHEMA) -> Path:
    """Return the path of the shipped schema ``name`` (wheel first, then the source tree)."""
    shipped = resources.files("pytest_reliability") / "schemas" / name
    if shipped.is_file():
        return Path(str(shipped))
    import pytest_reliability

    # An editable install keeps the schemas at the repository root, beside the package.
    source = Path(pytest_reliability.__file__).resolve().parent.parent / "schemas" / name
    if source.is_file():
        return source
    raise ReportError(f"schema {name} is not installed (looked in the package and beside it)")


@functools.cache
def load_schema(name: str = REPORT_SCHEMA) -> dict[str, Any]:
    """Return the parsed schema ``name``."""
    loaded: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return loaded


@final
@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """One place where a document breaks its schema."""

    pointer: str
    """JSON pointer (RFC 6901) of the offending value; ``""`` is the whole document."""
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


@functools.cache
def _validator(name: str) -> Any:
    # Imported here: jsonschema is only needed when a report is written or checked.
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def violations(document: Any, name: str = REPORT_SCHEMA) -> list[SchemaViolation]:
    """Return every violation of schema ``name`` by ``document``, in document order."""
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [SchemaViolation(_pointer(e.absolute_path), e.message) for e in errors]


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
