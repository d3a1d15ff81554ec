"""Reading reports from files that may be hostile: regular files only, bounded in every way.

Limits (each failure is a :class:`~pytest_reliability.errors.ReportError` naming the file):

* regular files only (a FIFO, ``/dev/zero`` or a directory is refused before reading a byte;
  the file is opened without blocking);
* at most :data:`DEFAULT_MAX_BYTES` bytes, or ``RELIABILITY_REPORT_MAX_BYTES``, or the caller's
  ``max_bytes``;
* UTF-8 JSON without ``NaN`` or infinities (they are not JSON), integers of at most
  :data:`MAX_INT_DIGITS` digits, nesting at most :data:`MAX_DEPTH` deep;
* ``schema_version`` 1.x, then the schema itself.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from pytest_reliability.errors import ReportError
from pytest_reliability.report._schema import validate_report

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Largest report read by default (a run of 100,000 tests writes about 25 MB)."""
MAX_BYTES_ENV = "RELIABILITY_REPORT_MAX_BYTES"
"""Environment variable that changes the read limit, in bytes."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted (a report needs about 8)."""
MAX_INT_DIGITS = 24
"""Longest integer accepted, in digits."""
_VERSION = re.compile(r"^1\.[0-9]+$")


class _Refused(Exception):
    """A value the parser refuses; the message says which."""


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} is out of range")
    return value


def max_bytes_setting(environ: dict[str, str] | None = None) -> int:
    """Return the read limit from ``RELIABILITY_REPORT_MAX_BYTES``, else the default."""
    raw = (environ if environ is not None else os.environ).get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise ReportError(f"{MAX_BYTES_ENV}={raw!r} is not a positive number of bytes")
    return int(raw)


def _read_bytes(path: Path, limit: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ReportError(f"{path} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ReportError(
                f"{path} is larger than {limit} bytes (set {MAX_BYTES_ENV} to read it)"
            )
        return b"".join(chunks)
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _depth_exceeds(document: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(raw: bytes, path: Path) -> Any:
    """Parse ``raw`` read from ``path`` with the limits above."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path} is not UTF-8 text") from None
    try:
        document = json.loads(
            text, parse_constant=_constant, parse_int=_integer, parse_float=_number
        )
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _Refused as exc:
        raise ReportError(f"{path} is not a usable report: {exc}") from None
    except RecursionError:
        raise ReportError(f"{path} is nested deeper than {MAX_DEPTH} levels") from None
    if _depth_exceeds(document, MAX_DEPTH):
        raise ReportError(f"{path} is nested deeper than {MAX_DEPTH} levels")
    return document


def read_report(
    path: Path, *, validate: bool = True, max_bytes: int | None = None
) -> dict[str, Any]:
    """Read the report at ``path``; raise ReportError (one line naming the file) if unusable."""
    limit = max_bytes if max_bytes is not None else max_bytes_setting()
    document = parse_json(_read_bytes(path, limit), path)
    if not isinstance(document, dict) or "schema_version" not in document:
        raise ReportError(f"{path} is not a reliability report (no schema_version)")
    version = document["schema_version"]
    if not isinstance(version, str) or not _VERSION.match(version):
        shown = version if isinstance(version, str) else json.dumps(version)
        raise ReportError(
            f"{path}: schema version {shown[:40]!r} is not supported (this tool reads 1.x)"
        )
    if validate:
        try:
            validate_report(document)
        except ReportError as exc:
            raise ReportError(f"{path}: {exc}") from None
    return document
