"""Turning pytest's phase reports into one record per test, on the process that writes the report.

Every phase report (setup, call, teardown, and xdist's crash report) is folded into the test's
attempts as it arrives. Attempts are numbered by pytest-rerunfailures' ``rerun`` attribute (0 when
it is absent), so every attempt is kept; a test whose last attempt passed after an earlier failed
one is ``flaky``. Per-test facts, categories and the worker id travel on the report's ``__dict__``
(keys below), which pytest-xdist serialises from the workers to the controller.
"""

from __future__ import annotations

from typing import Any, final

FACTS_KEY = "reliability_facts"
"""Report attribute holding the test's facts (set on the teardown report)."""
CATEGORIES_KEY = "reliability_categories"
"""Report attribute holding the test's sorted categories (set on the teardown report)."""
WORKER_KEY = "reliability_worker"
"""Report attribute holding the xdist worker id that ran the phase."""
FAILURE_MAX = 500
"""Longest failure text kept in the report, in characters."""

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error", "flaky")
"""Every final test outcome, in the summary's order."""


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
    __slots__ = ("duration", "failure", "outcome")

    def __init__(self) -> None:
        self.outcome = "passed"
        self.duration = 0.0
        self.failure: str | None = None

    def fold(self, report: Any, data: dict[str, Any]) -> None:
        # Membership in the report's __dict__, not hasattr: this runs three times per test.
        self.duration += report.duration or 0.0
        outcome = report.outcome
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
        if report.when in ("setup", "teardown"):
            if self.outcome != "failed":
                self.outcome = "error"
        else:
            self.outcome = "failed"

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "duration_s": self.duration, "failure": self.failure}


@final
class TestRecord:
    """Everything known about one test so far."""

    __test__ = False
    __slots__ = ("attempts", "categories", "crashed", "facts", "nodeid", "worker")

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.attempts: dict[int, _Attempt] = {}
        self.categories: list[str] = []
        self.facts: dict[str, Any] = {}
        self.worker: str | None = None
        self.crashed = False

    def fold(self, report: Any) -> None:
        """Add one phase report."""
        data = report.__dict__
        index = int(data.get("rerun", 0) or 0)
        attempt = self.attempts.get(index)
        if attempt is None:
            attempt = self.attempts[index] = _Attempt()
        attempt.fold(report, data)
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

    def outcome(self) -> str:
        """Return the final outcome: the last attempt's, or ``flaky`` for a pass after reruns."""
        ordered = [self.attempts[i] for i in sorted(self.attempts)]
        last = ordered[-1].outcome
        if last == "passed" and len(ordered) > 1:
            return "flaky"
        return last

    def as_dict(self) -> dict[str, Any]:
        """Return the report's entry for this test."""
        ordered = [self.attempts[i] for i in sorted(self.attempts)]
        failure = ordered[-1].failure
        if failure is None and len(ordered) > 1:
            failure = next((a.failure for a in reversed(ordered) if a.failure), None)
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome(),
            "duration_s": round(sum(a.duration for a in ordered), 6),
            "categories": list(self.categories),
            "worker": self.worker,
            "attempts": [a.as_dict() for a in ordered],
            "failure": failure,
            "facts": self.facts,
        }


@final
class Collector:
    """Accumulates test records and collection errors for one run."""

    __slots__ = ("collection_errors", "records")

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}
        self.collection_errors: dict[str, str] = {}

    def add_test_report(self, report: Any) -> None:
        """Fold a TestReport (or a CollectReport that xdist relays through logreport)."""
        if not hasattr(report, "when"):
            self.add_collect_report(report)
            return
        record = self.records.get(report.nodeid)
        if record is None:
            record = self.records[report.nodeid] = TestRecord(report.nodeid)
        record.fold(report)

    def add_collect_report(self, report: Any) -> None:
        """Record a failed collection once, whichever process reported it."""
        if report.failed and report.nodeid not in self.collection_errors:
            self.collection_errors[report.nodeid] = failure_text(report.longrepr) or "error"

    def tests(self) -> list[dict[str, Any]]:
        """Return every test's entry, sorted by node id (stable across worker layouts)."""
        return [self.records[k].as_dict() for k in sorted(self.records)]

    def collection_error_list(self) -> list[dict[str, str]]:
        """Return the collection errors, sorted by node id."""
        return [
            {"nodeid": k, "failure": self.collection_errors[k]}
            for k in sorted(self.collection_errors)
        ]


def summarize(tests: list[dict[str, Any]], collection_errors: int) -> dict[str, int]:
    """Return the summary counts for ``tests``."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for test in tests:
        counts[test["outcome"]] += 1
    return {"total": len(tests), **counts, "collection_errors": collection_errors}
