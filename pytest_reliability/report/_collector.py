"""Turning pytest's phase reports into one record per test, on the process that writes the report.

Every phase report (setup, call, teardown, and xdist's crash report) is queued as it arrives and
folded into the test's attempts at the end of the run. Attempts are numbered by
pytest-rerunfailures' ``rerun`` attribute (0 when it is absent), so every attempt is kept; a test
whose last attempt passed after an earlier failed one is ``flaky``. Per-test facts, categories and
the worker id travel on the report's ``__dict__`` (keys below), which pytest-xdist serialises from
the workers to the controller.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, final


def micros(seconds: float) -> float:
    """Return ``seconds`` rounded to the microsecond, as every duration in the report is.

    ``round(x, 6)`` goes through decimal digits and costs about 0.3 µs, four times per test.
    This is the double nearest to a whole number of microseconds, as ``round`` gives, except
    that a duration within a rounding error of a half microsecond may go the other way.
    """
    if 0.0 <= seconds < 1e9:
        return int(seconds * 1e6 + 0.5) / 1e6
    return round(seconds, 6)


FACTS_KEY = "reliability_facts"
"""Report attribute holding the test's facts (set on the teardown report)."""
CATEGORIES_KEY = "reliability_categories"
"""Report attribute holding the test's sorted categories (set on the teardown report)."""
WORKER_KEY = "reliability_worker"
"""Report attribute holding the xdist worker id that ran the phase."""
FAILURE_MAX = 500
"""Longest failure text kept in the report, in characters."""

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error", "flaky", "interrupted")
"""Every final test outcome, in the summary's order."""
CLOSING = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
"""The summary counts that equal pytest's closing line when pytest's terminal reporter ran."""
METADATA_PROPERTY = "reliability_metadata"
"""The ``user_properties`` name under which the ``reliability_metadata`` fixture keeps its dict."""
CAPTURE_MODES = ("off", "failed", "all")
"""Whose captured output the report keeps: nobody's, failing tests' (failed, error, flaky), all."""
_CAPTURED_BAD = frozenset({"failed", "error", "flaky", "interrupted"})
_PHASES = frozenset({"setup", "call", "teardown"})
_VALUE_DEPTH = 8


@final
class Detail:
    """What the report keeps beyond outcomes: captured output (opt in) and how paths are shown.

    ``root`` is the directory paths are made relative to (the rootdir), so a crash location
    names a file the way a CI annotation expects.
    """

    # Not a dataclass: this module loads with the plugin in every run, and a dataclass execs
    # generated source at import.
    __slots__ = ("capture", "capture_max_chars", "root")

    def __init__(
        self, capture: str = "off", capture_max_chars: int = 2000, root: str | None = None
    ) -> None:
        self.capture = capture
        self.capture_max_chars = capture_max_chars
        self.root = root


def relative_path(path: str, root: str | None) -> str:
    """Return ``path`` relative to ``root`` when it lies inside it, else unchanged."""
    if root and os.path.isabs(path):
        try:
            relative = os.path.relpath(path, root)
        except ValueError:  # another drive (Windows)
            return path
        if not relative.startswith(".."):
            return relative
    return path


def location_of(report: Any) -> dict[str, Any] | None:
    """Return ``{path, line}`` (line 1-based or None) from a report's ``location``."""
    found = getattr(report, "location", None)
    if not found:
        return None
    path, lineno = found[0], found[1]
    line = lineno + 1 if isinstance(lineno, int) and lineno >= 0 else None
    return {"path": str(path), "line": line}


def crash_of(longrepr: Any, root: str | None) -> dict[str, Any] | None:
    """Return ``{path, line, message}`` of the exception behind a failure, when pytest knows it."""
    crash = getattr(longrepr, "reprcrash", None)
    if crash is None:
        return None
    path = str(getattr(crash, "path", "") or "")
    lineno = getattr(crash, "lineno", None)
    message = " ".join(str(getattr(crash, "message", "") or "").split())
    if len(message) > FAILURE_MAX:
        message = message[: FAILURE_MAX - 1] + "…"
    return {
        "path": relative_path(path, root),
        "line": lineno if isinstance(lineno, int) and lineno >= 1 else None,
        "message": message,
    }


def json_value(value: Any, depth: int = 0) -> Any:
    """Return ``value`` as JSON values: text for what JSON cannot hold, bounded in depth."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth < _VALUE_DEPTH:
        if isinstance(value, dict):
            return {str(k): json_value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [json_value(v, depth + 1) for v in value]
    text = repr(value)
    return text[: FAILURE_MAX - 1] + "…" if len(text) > FAILURE_MAX else text


def _user_data(entry: dict[str, Any], user_properties: Any) -> None:
    """Put a report's ``record_property`` pairs and fixture metadata into ``entry``."""
    properties = []
    for pair in user_properties:
        name, value = pair[0], pair[1]
        if name == METADATA_PROPERTY and isinstance(value, dict):
            if value:
                entry["metadata"] = json_value(value)
        else:
            properties.append({"name": str(name), "value": json_value(value)})
    if properties:
        entry["properties"] = properties


def bounded(text: str, limit: int) -> str:
    """Return ``text`` cut to about ``limit`` characters: its head and tail, saying what went."""
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[… {cut} characters not kept …]\n{text[-half:]}"


def captured_of(report: Any, limit: int) -> dict[str, str] | None:
    """Return the captured stdout, stderr and log of a test's last report, each bounded."""
    found = {}
    for key, prefix in (("stdout", "Captured stdout"), ("stderr", "Captured stderr")):
        text = "".join(c for title, c in report.sections if title.startswith(prefix))
        if text:
            found[key] = bounded(text, limit)
    log = "\n".join(c for title, c in report.sections if title.startswith("Captured log"))
    if log:
        found["log"] = bounded(log, limit)
    return found or None


def failure_text(longrepr: Any) -> str | None:
    """Return a one-line failure text from a report's ``longrepr``."""
    if longrepr is None:
        return None
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        message = str(longrepr[2])
    if not message:
        lines = [line for line in str(longrepr).splitlines() if line.strip()]
        message = lines[-1] if lines else ""
    message = " ".join(str(message).split())
    return message[: FAILURE_MAX - 1] + "…" if len(message) > FAILURE_MAX else message


@final
class _Attempt:
    __slots__ = ("crash", "duration", "failure", "finished", "outcome", "phases")

    def __init__(self) -> None:
        self.outcome = "passed"
        self.duration = 0.0
        self.failure: str | None = None
        self.crash: dict[str, Any] | None = None
        self.finished = False
        self.phases: dict[str, dict[str, Any]] = {}

    def fold(self, report: Any, data: dict[str, Any], root: str | None = None) -> None:
        # Membership in the report's __dict__, not hasattr: this runs three times per test.
        self.duration += report.duration or 0.0
        if report.when in ("teardown", "???"):
            self.finished = True
        outcome = report.outcome
        if report.when in _PHASES:
            shown = outcome if outcome in ("passed", "skipped") else "failed"
            # Microseconds, as the test's duration_s: a shorter number in every report.
            duration = micros(report.duration or 0.0)
            self.phases[report.when] = {"outcome": shown, "duration_s": duration}
        if outcome == "passed":
            if "wasxfail" in data and report.when == "call":
                self.outcome = "xpassed"
            return
        if outcome == "skipped":
            if self.outcome == "passed":
                self.outcome = "xfailed" if "wasxfail" in data else "skipped"
            return
        # failed, or "rerun" (an attempt that failed and was run again)
        if self.failure is None:
            self.failure = failure_text(report.longrepr)
            self.crash = crash_of(report.longrepr, root)
        if report.when in ("setup", "teardown"):
            if self.outcome != "failed":
                self.outcome = "error"
        else:
            self.outcome = "failed"

    def final(self) -> str:
        # No teardown report: Ctrl-C, SIGTERM or pytest.exit stopped the test before it ended,
        # so whatever passed so far proves nothing (a failure seen already still counts).
        if not self.finished and self.outcome not in ("failed", "error"):
            return "interrupted"
        return self.outcome

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.final(),
            "duration_s": self.duration,
            "failure": self.failure,
            "phases": self.phases,
        }


@final
class TestRecord:
    """Everything known about one test so far."""

    __test__ = False
    __slots__ = (
        "attempts",
        "categories",
        "crashed",
        "detail",
        "facts",
        "last",
        "location",
        "nodeid",
        "worker",
    )

    def __init__(self, nodeid: str, detail: Detail | None = None) -> None:
        self.nodeid = nodeid
        self.detail = detail or Detail()
        self.attempts: dict[int, _Attempt] = {}
        self.categories: list[str] = []
        self.facts: dict[str, Any] = {}
        self.worker: str | None = None
        self.crashed = False
        self.location: dict[str, Any] | None = None
        self.last: Any = None

    def fold(self, report: Any) -> None:
        """Add one phase report."""
        data = report.__dict__
        index = int(data.get("rerun", 0) or 0)
        attempt = self.attempts.get(index)
        if attempt is None:
            attempt = self.attempts[index] = _Attempt()
        attempt.fold(report, data, self.detail.root)
        if self.location is None:
            self.location = location_of(report)
        if report.when in _PHASES:
            self.last = report
        worker = data.get(WORKER_KEY)
        if worker is None and report.when == "???":
            # xdist's crash report carries the worker controller, not our key.
            self.crashed = True
            gateway = getattr(getattr(report, "node", None), "gateway", None)
            worker = getattr(gateway, "id", None)
        if worker is not None:
            self.worker = str(worker)
        facts = data.get(FACTS_KEY)
        if facts is not None:
            self.facts = facts
        categories = data.get(CATEGORIES_KEY)
        if categories is not None:
            self.categories = categories

    def finished(self) -> bool:
        """Whether the last attempt ended (a teardown report, or xdist's crash report)."""
        return bool(self.attempts) and self.attempts[max(self.attempts)].finished

    def outcome(self) -> str:
        """Return the final outcome: the last attempt's, or ``flaky`` for a pass after reruns."""
        ordered = [self.attempts[i] for i in sorted(self.attempts)]
        last = ordered[-1].final()
        if last == "passed" and len(ordered) > 1:
            return "flaky"
        return last

    def as_dict(self) -> dict[str, Any]:
        """Return the report's entry for this test."""
        ordered = [self.attempts[i] for i in sorted(self.attempts)]
        source = ordered[-1]
        if source.failure is None and len(ordered) > 1:
            source = next((a for a in reversed(ordered) if a.failure), source)
        outcome = self.outcome()
        entry: dict[str, Any] = {
            "nodeid": self.nodeid,
            "outcome": outcome,
            "duration_s": micros(sum(a.duration for a in ordered)),
            "categories": list(self.categories),
            "worker": self.worker,
            "attempts": [a.as_dict() for a in ordered],
            "failure": source.failure,
            "facts": self.facts,
        }
        if self.location is not None:
            entry["location"] = self.location
        if source.crash is not None:
            entry["crash"] = source.crash
        last = self.last
        if last is not None:
            _user_data(entry, getattr(last, "user_properties", ()))
            mode = self.detail.capture
            if mode == "all" or (mode == "failed" and outcome in _CAPTURED_BAD):
                captured = captured_of(last, self.detail.capture_max_chars)
                if captured is not None:
                    entry["captured"] = captured
        return entry


LocalFacts = Callable[[str], "tuple[dict[str, Any], list[str]] | tuple[()] | None"]
"""Given a node id run in this process, the facts and categories its teardown report would
carry (:data:`FACTS_KEY`, :data:`CATEGORIES_KEY`): ``()`` when the test recorded no fact and has
no category (most tests, spared two containers each), ``None`` for an unknown test."""


@final
class Collector:
    """Accumulates phase reports and collection errors for one run; folds them at the end.

    Phase reports are only queued while the tests run (:attr:`pending`): folding each as it
    arrived cost more per test than the whole rest of the plugin. :meth:`tests` folds them all,
    building a test that passed its three phases at the first attempt (nearly all of them)
    straight into its report entry, and every other test through :class:`TestRecord`.
    """

    __slots__ = ("built", "collection_errors", "detail", "pending", "unchecked")

    def __init__(self, detail: Detail | None = None) -> None:
        self.pending: list[Any] = []
        """Phase reports in arrival order, folded by :meth:`tests` (the report hook appends)."""
        self.built: set[int] = set()
        """``id()`` of the entries :meth:`tests` last built straight from pytest's reports: only
        their facts, categories, properties, metadata and captured output came from the tests
        (see :func:`~pytest_reliability.report._schema.validate_report`'s ``trusted``)."""
        self.unchecked: list[dict[str, Any]] = []
        """The entries among :attr:`built` that hold something the tests put there (facts,
        categories, properties, metadata, captured output): only these need a schema check."""
        self.collection_errors: dict[str, str] = {}
        self.detail = detail or Detail()

    def add_test_report(self, report: Any) -> None:
        """Queue a TestReport (or a CollectReport that xdist relays through logreport)."""
        self.pending.append(report)

    def add_collect_report(self, report: Any) -> None:
        """Record a failed collection once, whichever process reported it."""
        if report.failed and report.nodeid not in self.collection_errors:
            self.collection_errors[report.nodeid] = failure_text(report.longrepr) or "error"

    def tests(self, local: LocalFacts | None = None) -> list[dict[str, Any]]:
        """Return every test's entry, sorted by node id (stable across worker layouts).

        ``local`` gives the facts of a test that ran in this process, whose teardown report
        arrived without them (on an xdist controller every report carries its own).
        """
        pending = self.pending
        last = len(pending) - 2
        # A test's setup, call and teardown usually arrive one after another (always without
        # xdist): a passing triple becomes its entry at once, without grouping reports first.
        fast: dict[str, dict[str, Any]] = {}
        starts: dict[str, int] = {}
        slow: dict[str, list[Any]] = {}
        unchecked: list[dict[str, Any]] = []
        # Imported here: the report's readers (summary, html, metrics) need no pytest.
        import pytest

        report_type = pytest.TestReport  # exactly: its attributes are the ones read below
        detail = self.detail
        i = 0
        while i < last:
            report = pending[i]
            if type(report) is report_type:
                nodeid = report.nodeid
                call = pending[i + 1]
                teardown = pending[i + 2]
                if (
                    type(call) is report_type
                    and type(teardown) is report_type
                    and call.nodeid == nodeid
                    and teardown.nodeid == nodeid
                    and nodeid not in fast
                    and nodeid not in slow
                ):
                    entry = _passed_entry(nodeid, report, call, teardown, local, detail, unchecked)
                    if entry is not None:
                        fast[nodeid] = entry
                        starts[nodeid] = i
                        i += 3
                        continue
            self._group(report, fast, starts, slow)
            i += 1
        for report in pending[max(i, 0) :]:
            self._group(report, fast, starts, slow)
        self.built = set(map(id, fast.values()))
        self.unchecked = unchecked
        for nodeid, reports in slow.items():
            fast[nodeid] = self._fold(nodeid, reports, local)
        return [fast[nodeid] for nodeid in sorted(fast)]

    def _group(
        self,
        report: Any,
        fast: dict[str, dict[str, Any]],
        starts: dict[str, int],
        slow: dict[str, list[Any]],
    ) -> None:
        if not hasattr(report, "when"):
            self.add_collect_report(report)
            return
        nodeid = report.nodeid
        group = slow.get(nodeid)
        if group is None:
            group = slow[nodeid] = []
            if nodeid in fast:  # more reports of a test already built: fold them all
                del fast[nodeid]
                start = starts.pop(nodeid)
                group.extend(self.pending[start : start + 3])
        group.append(report)

    def _fold(self, nodeid: str, reports: list[Any], local: LocalFacts | None) -> dict[str, Any]:
        record = TestRecord(nodeid, self.detail)
        for report in reports:
            data = report.__dict__
            if local is not None and report.when == "teardown" and FACTS_KEY not in data:
                extra = local(nodeid)
                if extra is not None:
                    data[FACTS_KEY], data[CATEGORIES_KEY] = extra or ({}, [])
            record.fold(report)
        if local is not None and not record.finished():
            # Interrupted before its teardown report: the facts are still on the item.
            extra = local(nodeid)
            if extra is not None:
                record.facts, record.categories = extra or ({}, [])
        return record.as_dict()

    def collection_error_list(self) -> list[dict[str, str]]:
        """Return the collection errors, sorted by node id."""
        return [
            {"nodeid": k, "failure": self.collection_errors[k]}
            for k in sorted(self.collection_errors)
        ]


def _passed_entry(
    nodeid: str,
    setup: Any,
    call: Any,
    teardown: Any,
    local: LocalFacts | None,
    detail: Detail,
    unchecked: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """Return the entry of a test whose setup, call and teardown passed at the first attempt.

    ``None`` for anything else (reruns, xfail, failures, crashes): :class:`TestRecord` folds
    those. The entry is exactly the one :class:`TestRecord` would build. An entry holding
    anything the test put there (facts, categories, properties, metadata, captured output) is
    also appended to ``unchecked``.
    """
    # The reports' own dicts, read directly, and membership rather than get(): this runs once
    # per test of the run.
    s, c, t = setup.__dict__, call.__dict__, teardown.__dict__
    if (
        s["when"] != "setup"
        or c["when"] != "call"
        or t["when"] != "teardown"
        or s["outcome"] != "passed"
        or c["outcome"] != "passed"
        or t["outcome"] != "passed"
        or "wasxfail" in c
        or (
            # pytest-rerunfailures numbers attempts: an attempt after the first is folded.
            ("rerun" in s or "rerun" in c or "rerun" in t)
            and (s.get("rerun") or c.get("rerun") or t.get("rerun"))
        )
    ):
        return None
    # Summed in phase order from 0.0, as _Attempt.fold does, so the float is the same.
    setup_s = s["duration"] or 0.0
    call_s = c["duration"] or 0.0
    teardown_s = t["duration"] or 0.0
    duration = 0.0 + setup_s + call_s + teardown_s
    if not 0.0 <= duration < 1e9 or setup_s < 0.0 or call_s < 0.0 or teardown_s < 0.0:
        return None  # a clock a plugin bent: the full fold, and the full schema check, decide
    # The last report that carries a value wins, as in TestRecord.fold.
    extra = local(nodeid) if local is not None and FACTS_KEY not in t else None
    if extra is None:
        facts = t.get(FACTS_KEY)
        if facts is None:
            facts = c.get(FACTS_KEY)
            if facts is None:
                facts = s.get(FACTS_KEY, {})
        found = t.get(CATEGORIES_KEY)
        if found is None:
            found = c.get(CATEGORIES_KEY)
            if found is None:
                found = s.get(CATEGORIES_KEY, ())
        categories = list(found)
    elif extra:
        facts, found = extra
        categories = list(found)
    else:  # ran here, recorded no fact, has no category: most tests
        facts = {}
        categories = []
    worker = None
    if WORKER_KEY in t or WORKER_KEY in c or WORKER_KEY in s:
        worker = t.get(WORKER_KEY)
        if worker is None:
            worker = c.get(WORKER_KEY)
            if worker is None:
                worker = s.get(WORKER_KEY)
        if worker is not None:
            worker = str(worker)
    # micros() written out, with a float floor (no call): a call per value was a fifth of this
    # function's time. Equal to int() for the non-negative durations checked above.
    setup_s = (setup_s * 1e6 + 0.5) // 1.0 / 1e6
    call_s = (call_s * 1e6 + 0.5) // 1.0 / 1e6
    teardown_s = (teardown_s * 1e6 + 0.5) // 1.0 / 1e6
    entry = {
        "nodeid": nodeid,
        "outcome": "passed",
        "duration_s": (duration * 1e6 + 0.5) // 1.0 / 1e6,
        "categories": categories,
        "worker": worker,
        "attempts": [
            {
                "outcome": "passed",
                "duration_s": duration,
                "failure": None,
                "phases": {
                    "setup": {"outcome": "passed", "duration_s": setup_s},
                    "call": {"outcome": "passed", "duration_s": call_s},
                    "teardown": {"outcome": "passed", "duration_s": teardown_s},
                },
            }
        ],
        "failure": None,
        "facts": facts,
    }
    location = s["location"]
    if location:
        path, lineno = location[0], location[1]
        entry["location"] = {
            "path": path if type(path) is str else str(path),
            "line": lineno + 1 if isinstance(lineno, int) and lineno >= 0 else None,
        }
    checked = facts or categories
    properties = t["user_properties"]  # set by TestReport.__init__, on xdist's copies too
    if properties:
        _user_data(entry, properties)
        checked = True
    if detail.capture == "all":
        captured = captured_of(teardown, detail.capture_max_chars)
        if captured is not None:
            entry["captured"] = captured
            checked = True
    if checked:
        unchecked.append(entry)
    return entry


def summarize(
    tests: list[dict[str, Any]], collection_errors: int, closing: dict[str, int] | None = None
) -> dict[str, Any]:
    """Return the summary counts for ``tests``.

    ``closing`` is pytest's closing line (category to count): when given, the :data:`CLOSING`
    counts are pytest's own (a test that failed and then errored in teardown counts in both, a
    flaky test counts as passed, collection errors count as errors) and its other categories go
    to ``other``. Without it every count is a count of tests by outcome.
    """
    counts: dict[str, Any] = dict.fromkeys(OUTCOMES, 0)
    for test in tests:
        counts[test["outcome"]] += 1
    summary: dict[str, Any] = {"total": len(tests), **counts}
    summary["collection_errors"] = collection_errors
    if closing is not None:
        for name in CLOSING:
            summary[name] = closing.get(name, 0)
        summary["other"] = {k: v for k, v in sorted(closing.items()) if k not in CLOSING and v}
    return summary
