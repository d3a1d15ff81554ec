"""History across runs: pass rate, duration and category reliability per run, and what changed.

Reports are ordered by when their run started. Between each run and the one before it,
:func:`~pytest_reliability.report.diff_reports` says which tests newly fail, were fixed or turned
flaky. Reports of different projects (``run.project``, schema 1.2) or with no test in common
with the run before are flagged, so a trend never silently compares unlike runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, final

from pytest_reliability.errors import ReportError
from pytest_reliability.report._diff import diff_reports

_GOOD = frozenset({"passed", "flaky", "xpassed", "xfailed"})
_COUNTED = frozenset({"passed", "flaky", "xpassed", "xfailed", "failed", "error", "interrupted"})


@final
@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One run in a trend."""

    run_id: str
    started_at: str
    project: str | None
    status: str
    total: int
    pass_rate: float | None
    """Good tests (passed, flaky, xpassed, xfailed) over tests that ran (skipped ones do not
    count); ``None`` when no test ran."""
    duration_s: float
    flaky: int
    categories: Mapping[str, tuple[int, int]]
    """Per category: (passing tests, tests)."""
    newly_failing: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    newly_flaky: tuple[str, ...] = ()
    shares_tests: bool = True
    """Whether the run has a test in common with the run before (always true for the first)."""

    def as_dict(self) -> dict[str, Any]:
        """Return the point as JSON values."""
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "project": self.project,
            "status": self.status,
            "total": self.total,
            "pass_rate": self.pass_rate,
            "duration_s": self.duration_s,
            "flaky": self.flaky,
            "categories": {k: {"passing": p, "tests": t} for k, (p, t) in self.categories.items()},
            "newly_failing": list(self.newly_failing),
            "fixed": list(self.fixed),
            "newly_flaky": list(self.newly_flaky),
            "shares_tests": self.shares_tests,
        }


@final
@dataclass(frozen=True, slots=True)
class Trend:
    """Several runs, oldest first, and whether they can be compared."""

    points: tuple[TrendPoint, ...]
    projects: tuple[str, ...]
    """Every project named by the reports, sorted (reports before 1.2 name none)."""

    @property
    def mixed(self) -> bool:
        """Whether the reports come from more than one project."""
        return len(self.projects) > 1

    @property
    def categories(self) -> tuple[str, ...]:
        """Every category seen in any run, sorted."""
        return tuple(sorted({c for p in self.points for c in p.categories}))

    def warnings(self) -> list[str]:
        """Return why the runs may not be comparable, one sentence each (empty when they are)."""
        found = []
        if self.mixed:
            found.append(
                "these reports come from different projects ("
                + ", ".join(self.projects)
                + "): the trend compares unlike runs"
            )
        for point in self.points[1:]:
            if not point.shares_tests:
                found.append(
                    f"run {point.run_id} has no test in common with the run before it: "
                    "it may be another project or suite"
                )
        return found

    def as_dict(self) -> dict[str, Any]:
        """Return the trend as JSON values."""
        return {
            "projects": list(self.projects),
            "warnings": self.warnings(),
            "runs": [p.as_dict() for p in self.points],
        }


def categories_of(report: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Return (passing tests, tests) per category of ``report``, sorted by category."""
    found: dict[str, tuple[int, int]] = {}
    for test in report["tests"]:
        good = test["outcome"] in ("passed", "flaky", "xpassed")
        for category in test["categories"]:
            passing, total = found.get(category, (0, 0))
            found[category] = (passing + good, total + 1)
    return dict(sorted(found.items()))


def pass_rate(report: Mapping[str, Any]) -> float | None:
    """Return good tests over tests that ran (see :attr:`TrendPoint.pass_rate`)."""
    ran = [t for t in report["tests"] if t["outcome"] in _COUNTED]
    if not ran:
        return None
    return sum(1 for t in ran if t["outcome"] in _GOOD) / len(ran)


def build_trend(reports: Sequence[Mapping[str, Any]]) -> Trend:
    """Return the trend of ``reports`` (any order; sorted by start time, then as given).

    The same run given twice is a :class:`~pytest_reliability.errors.ReportError`.
    """
    if not reports:
        raise ReportError("a trend needs at least one report")
    seen: set[str] = set()
    for report in reports:
        run_id = str(report["run"]["id"])
        if run_id in seen:
            raise ReportError(f"run {run_id} is given twice: each run counts once in a trend")
        seen.add(run_id)
    ordered = sorted(reports, key=lambda r: str(r["run"]["started_at"]))
    points: list[TrendPoint] = []
    previous: Mapping[str, Any] | None = None
    for report in ordered:
        run = report["run"]
        newly_failing: tuple[str, ...] = ()
        fixed: tuple[str, ...] = ()
        newly_flaky: tuple[str, ...] = ()
        shares = True
        if previous is not None:
            change = diff_reports(previous, report)
            newly_failing, fixed, newly_flaky = (
                change.newly_failing,
                change.fixed,
                change.newly_flaky,
            )
            before = {t["nodeid"] for t in previous["tests"]}
            after = {t["nodeid"] for t in report["tests"]}
            shares = not before or not after or bool(before & after)
        project = run.get("project")
        points.append(
            TrendPoint(
                run_id=str(run["id"]),
                started_at=str(run["started_at"]),
                project=str(project) if project else None,
                status=str(report["status"]),
                total=int(report["summary"]["total"]),
                pass_rate=pass_rate(report),
                duration_s=float(run["duration_s"]),
                flaky=sum(1 for t in report["tests"] if t["outcome"] == "flaky"),
                categories=categories_of(report),
                newly_failing=newly_failing,
                fixed=fixed,
                newly_flaky=newly_flaky,
                shares_tests=shares,
            )
        )
        previous = report
    projects = tuple(sorted({p.project for p in points if p.project}))
    return Trend(points=tuple(points), projects=projects)


def trend_text(trend: Trend) -> str:
    """Return the trend as plain text for a terminal."""
    out = [f"WARNING: {w}" for w in trend.warnings()]
    for point in trend.points:
        rate = "n/a" if point.pass_rate is None else f"{point.pass_rate * 100:.1f}%"
        out.append(
            f"{point.started_at} {point.run_id[:8]} {point.status}: {point.total} tests, "
            f"pass rate {rate}, {point.duration_s:.1f}s, {point.flaky} flaky"
        )
        for title, names in (
            ("newly failing", point.newly_failing),
            ("newly flaky", point.newly_flaky),
            ("fixed", point.fixed),
        ):
            if names:
                out.append(f"  {title}: {len(names)}")
                out += [f"    {name}" for name in names[:20]]
                if len(names) > 20:
                    out.append(f"    ... and {len(names) - 20} more")
    categories = trend.categories
    if categories and len(trend.points) > 1:
        out.append("category passing/tests per run, oldest first:")
        for category in categories:
            cells = []
            for point in trend.points:
                passing, total = point.categories.get(category, (0, 0))
                cells.append(f"{passing}/{total}" if total else "-")
            out.append(f"  {category}: " + " ".join(cells))
    return "\n".join(out) + "\n"
