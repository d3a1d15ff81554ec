"""Writing reports: what a path may be, atomic replacement, file modes, encoding of any text.

The rule for a report path (the plugin's ``--reliability-report`` and ``report merge -o``):

* a new path is written atomically (temporary file in the same directory, fsync, rename, fsync of
  the directory), with the mode any new file gets under the process umask;
* an existing regular file, or a symlink to one, is replaced atomically at the symlink's
  target, so the link stays a link and the file keeps its permission bits (and, where the
  process may, its owner);
* where devices are allowed (the plugin's report, as ``--junitxml`` allows them), a character
  device such as ``/dev/null`` or a terminal is opened and written through, never replaced, and a
  FIFO is written through only when a process is reading it (opening never blocks);
* anything else (a directory, a block device, a socket, a symlink whose target is missing) is a
  :class:`~pytest_reliability.errors.ReportError` naming the path and what it is.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Literal

import orjson

from pytest_reliability.errors import ReportError
from pytest_reliability.report._schema import REPORT_SCHEMA, validate_report

Target = Literal["new", "file", "device", "fifo"]
"""What a report path is: absent, a regular file (maybe through a symlink), a device, a FIFO."""


def _umask() -> int:
    # /proc tells without changing it; os.umask() sets it and is not thread-safe to read.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def classify(path: Path, *, devices: bool) -> tuple[Target, Path]:
    """Return what ``path`` is and where to write; raise ReportError for a path to refuse."""
    if not str(path):
        raise ReportError("the report path is empty")
    try:
        found = os.stat(path)  # follows symlinks: the target decides
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            raise ReportError(
                f"{path} is a symlink to {os.readlink(path)}, which does not exist"
            ) from None
        return "new", path
    except OSError as exc:
        raise ReportError(f"cannot use report path {path}: {exc.strerror or exc}") from None
    mode = found.st_mode
    if stat.S_ISREG(mode):
        return "file", Path(os.path.realpath(path))
    if devices and stat.S_ISCHR(mode):
        return "device", path
    if devices and stat.S_ISFIFO(mode):
        return "fifo", path
    allowed = "a regular file, a character device, a FIFO" if devices else "a regular file"
    raise ReportError(f"{path} is {_kind(mode)}; a report goes to {allowed} or a new path")


def check_writable(path: Path, *, devices: bool = True) -> Target:
    """Create the report's directory if needed; raise ReportError if a report cannot go there."""
    target, real = classify(path, devices=devices)
    if target in ("device", "fifo"):
        return target
    directory = real.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create report directory {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ReportError(f"report directory {directory} is not writable")
    return target


def _visible(value: Any) -> Any:
    """Return ``value`` with each lone surrogate in its text spelled out as ``\\udXXX``."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_visible(k): _visible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible(v) for v in value]
    return value


def encode_report(document: Any, *, indent: int | None = None, proven: bool = False) -> bytes:
    """Return ``document`` as UTF-8 JSON; lone surrogates become visible escapes.

    Compact by default; ``indent`` (``--reliability-report-indent``) for a person reading it.
    ``proven``: :func:`~pytest_reliability.report._schema.validate_report` returned True for
    this document, so every value in it is strict JSON and the fast encoder writes the values the
    standard library would (a number may be spelled differently, ``1e-7`` for ``1e-07``, and
    reads back as the same float).
    """
    if proven and indent is None:
        try:
            # orjson writes UTF-8 directly, about 8x faster than json.dumps plus encode on a
            # report of thousands of tests. It refuses lone surrogates: the path below escapes
            # them. It would write NaN as null, which ``proven`` rules out.
            return orjson.dumps(document) + b"\n"
        except TypeError:
            pass
    # Compact by default: json's C encoder only runs without indent, and a report of thousands of
    # tests is read by tools (pytest-reliability report summary is the human view).
    separators = (",", ":") if indent is None else (",", ": ")
    try:
        text = json.dumps(
            document, ensure_ascii=False, separators=separators, allow_nan=False, indent=indent
        )
        try:
            return text.encode("utf-8") + b"\n"
        except UnicodeEncodeError:
            # Rare (a test's text held half of a UTF-16 pair): the slow path only then.
            text = json.dumps(
                _visible(document),
                ensure_ascii=False,
                separators=separators,
                allow_nan=False,
                indent=indent,
            )
            return text.encode("utf-8") + b"\n"
    except ValueError as exc:  # NaN or an infinity: not JSON
        raise ReportError(f"report is not JSON: {exc}") from None


def _replace(real: Path, payload: bytes, existing: os.stat_result | None) -> None:
    directory = real.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=directory)
    try:
        if existing is None:
            os.fchmod(fd, 0o666 & ~_umask())
        else:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                # Not ours to give away without privileges: then the mode keeps it readable.
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, existing.st_uid, existing.st_gid)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, real)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The rename is durable only once the directory entry is on disk too.
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_through(path: Path, payload: bytes, fifo: bool) -> None:
    flags = os.O_WRONLY | os.O_NOCTTY | (os.O_NONBLOCK if fifo else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise ReportError(f"no process is reading the FIFO {path}") from None
        raise
    try:
        os.set_blocking(fd, True)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_bytes(path: Path, payload: bytes, *, devices: bool = False) -> Target:
    """Write ``payload`` to ``path`` by the rule in this module's docstring; return the kind."""
    target, real = classify(path, devices=devices)
    try:
        if target == "new":
            _replace(real, payload, None)
        elif target == "file":
            _replace(real, payload, os.stat(real))
        else:
            _write_through(path, payload, target == "fifo")
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from None
    return target


def write_report(
    path: Path,
    document: dict[str, Any],
    *,
    schema: str = REPORT_SCHEMA,
    devices: bool = False,
) -> None:
    """Validate ``document``, then write it to ``path`` (atomically, unless a device).

    A reader never sees a half-written report file: the rename replaces the old file in one step.
    """
    proven = validate_report(document, schema)
    write_bytes(path, encode_report(document, proven=proven), devices=devices)
