"""Reading reports and writing them atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pytest_reliability.errors import ReportError
from pytest_reliability.report._schema import REPORT_SCHEMA, validate_report


def check_writable(path: Path) -> None:
    """Create the report's directory if needed; raise ReportError if a report cannot go there."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create report directory {directory}: {exc.strerror}") from None
    if path.is_dir():
        raise ReportError(f"report path {path} is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ReportError(f"report directory {directory} is not writable")


def write_report(path: Path, document: dict[str, Any], *, schema: str = REPORT_SCHEMA) -> None:
    """Validate ``document``, then write it to ``path`` atomically (temporary file, rename).

    A reader never sees a half-written report: the rename replaces the old file in one step.
    """
    validate_report(document, schema)
    # Compact on purpose: json's C encoder only runs without indent, and a report of thousands of
    # tests is read by tools (pytest-reliability report summary is the human view).
    payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_report(path: Path, *, validate: bool = True) -> dict[str, Any]:
    """Read the report at ``path``; raise ReportError (one line, no traceback) if unusable."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path} is not UTF-8 text") from None
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, dict) or "schema_version" not in document:
        raise ReportError(f"{path} is not a reliability report (no schema_version)")
    if validate:
        validate_report(document)
    return document
