"""CI annotations of a report: GitHub Actions workflow commands or a GitLab code-quality report.

Failed and errored tests, collection errors and failed gates become annotations; flaky tests
become warnings. A test is placed where its failure was raised when that file is inside the
project (``crash``, schema 1.2), else where it is defined (``location``), else at the file its
node id names.

* GitHub: ``::error file=PATH,line=N,title=TITLE::MESSAGE`` lines (workflow commands), with
  ``%``, CR and LF escaped in the message and ``,`` and ``:`` also in properties, as the runner
  expects, so a failure text cannot end the command or forge another.
* GitLab: a JSON array in the code-quality format (``description``, ``check_name``,
  ``fingerprint``, ``severity``, ``location.path``, ``location.lines.begin``); a gate, which has
  no file, is placed at ``gate_path`` (default ``pyproject.toml``), line 1.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, final

FORMATS = ("github", "gitlab")
"""The annotation formats."""
MESSAGE_MAX = 4000
"""Longest annotation message, in characters."""


@final
@dataclass(frozen=True, slots=True)
class Annotation:
    """One problem to show in CI, placed at a file and line where known."""

    level: Literal["error", "warning"]
    title: str
    message: str
    path: str | None
    line: int | None
    check: str
    key: str
    """What makes the annotation unique across runs (its fingerprint's input)."""


def _nodeid_path(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    return path or None


def _inside(path: str) -> bool:
    return bool(path) and not os.path.isabs(path) and not path.startswith("..")


def _place(test: Mapping[str, Any]) -> tuple[str | None, int | None]:
    crash = test.get("crash")
    if crash and _inside(str(crash["path"])):
        return str(crash["path"]), crash.get("line")
    location = test.get("location")
    if location and _inside(str(location["path"])):
        return str(location["path"]), location.get("line")
    return _nodeid_path(str(test["nodeid"])), None


def annotations_of(report: Mapping[str, Any]) -> list[Annotation]:
    """Return the report's annotations: failed tests, collection errors, gates, flaky tests."""
    found: list[Annotation] = []
    for test in report["tests"]:
        outcome = test["outcome"]
        if outcome not in ("failed", "error", "flaky"):
            continue
        path, line = _place(test)
        level: Literal["error", "warning"] = "warning" if outcome == "flaky" else "error"
        nodeid = str(test["nodeid"])
        found.append(
            Annotation(
                level=level,
                title=f"{outcome}: {nodeid}",
                message=str(test["failure"] or outcome),
                path=path,
                line=line,
                check=f"reliability-test-{outcome}",
                key=f"test:{outcome}:{nodeid}",
            )
        )
    for error in report["collection_errors"]:
        nodeid = str(error["nodeid"])
        found.append(
            Annotation(
                level="error",
                title=f"collection error: {nodeid or '<session>'}",
                message=str(error["failure"]),
                path=_nodeid_path(nodeid),
                line=None,
                check="reliability-collection-error",
                key=f"collection:{nodeid}",
            )
        )
    for gate in report["gates"]:
        if gate["status"] == "passed":
            continue
        reasons = [str(r) for r in gate["reasons"]] or [str(gate["status"])]
        found.append(
            Annotation(
                level="error",
                title=f"reliability gate {gate['name']} {gate['status']}",
                message="; ".join(reasons),
                path=None,
                line=None,
                check=f"reliability-gate-{gate['name']}",
                key=f"gate:{gate['name']}",
            )
        )
    return found


def _bounded(text: str) -> str:
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github_lines(report: Mapping[str, Any]) -> Iterator[str]:
    """Yield one GitHub Actions workflow command per annotation."""
    for note in annotations_of(report):
        props = []
        if note.path:
            props.append(f"file={_property(note.path)}")
            if note.line:
                props.append(f"line={int(note.line)}")
        props.append(f"title={_property(_bounded(note.title))}")
        yield f"::{note.level} {','.join(props)}::{_data(_bounded(note.message))}"


def gitlab_issues(report: Mapping[str, Any], gate_path: str = "pyproject.toml") -> list[Any]:
    """Return the annotations as a GitLab code-quality report (a list of issues)."""
    issues = []
    for note in annotations_of(report):
        severity = "minor" if note.level == "warning" else "major"
        if note.check.startswith("reliability-gate-"):
            severity = "critical"
        issues.append(
            {
                "description": _bounded(f"{note.title}: {note.message}"),
                "check_name": note.check,
                "fingerprint": hashlib.sha256(note.key.encode("utf-8", "replace")).hexdigest(),
                "severity": severity,
                "location": {
                    "path": note.path or gate_path,
                    "lines": {"begin": int(note.line or 1)},
                },
            }
        )
    return issues


def annotations_text(report: Mapping[str, Any], fmt: str, gate_path: str = "pyproject.toml") -> str:
    """Return the annotations in ``fmt`` (``github`` or ``gitlab``) as text."""
    if fmt == "github":
        return "".join(f"{line}\n" for line in github_lines(report))
    if fmt == "gitlab":
        return json.dumps(gitlab_issues(report, gate_path), indent=1, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown annotation format {fmt!r}: one of {', '.join(FORMATS)}")
