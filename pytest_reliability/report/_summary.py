"""Human summaries of a report: Markdown for a CI job summary, or plain text for a terminal."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from pytest_reliability._drill_outcome import (
    MISSED,
    drill_counts,
    unexpected,
    unplanted_violations,
)
from pytest_reliability.report._collector import OUTCOMES

_LISTED = 20


def _facts_totals(report: Mapping[str, Any]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for test in report["tests"]:
        facts = test["facts"]
        totals["faults injected"] += int(facts.get("chaos", {}).get("injected", 0))
        totals["faults fired"] += int(facts.get("chaos", {}).get("fired", 0))
        totals["kill switches exercised"] += len(
            facts.get("kill_switches", {}).get("exercised", [])
        )
        idem = facts.get("idempotency", {})
        totals["idempotency examples"] += int(idem.get("examples", 0))
        totals["duplicates suppressed"] += int(idem.get("duplicates_suppressed", 0))
        totals["audit events"] += sum(facts.get("audit", {}).get("events_by_action", {}).values())
        abuse = facts.get("abuse", {})
        totals["abuse signals"] += int(abuse.get("signals", 0))
        totals["abuse escalations"] += int(abuse.get("escalations", 0))
    return {k: v for k, v in totals.items() if v}


def _drills(report: Mapping[str, Any], escape: Callable[[str], str] = str) -> str | None:
    """Return one line on the run's restore drills (report text through ``escape``), or None."""
    backups = report.get("backups")
    if not backups:
        return None
    # Counted from the items: a merged section, or an older one, is told the same way.
    line = f"restore drills: {drill_counts(backups['drills']).text()}"
    failed = unexpected(backups["drills"])
    if failed:
        why = MISSED if failed[0]["status"] == "passed" else failed[0]["reason"]
        first = f"{failed[0]['backup']}: {why or 'no reason given'}"
        line += f" (first failure {escape(first)})"
    return line


def _chaos_property(report: Mapping[str, Any], escape: Callable[[str], str] = str) -> list[str]:
    """Return lines on property-based chaos: examples, schedules, faults by kind, shrunk ones."""
    examples = distinct = 0
    fired: Counter[str] = Counter()
    never: Counter[str] = Counter()
    shrunk: list[str] = []
    for test in report["tests"]:
        found = test["facts"].get("chaos", {}).get("property")
        if not found:
            continue
        examples += int(found["examples"])
        distinct += int(found["distinct_schedules"])
        fired.update(found["fired_by_kind"])
        never.update(found["unfired_by_kind"])
        if "shrunk" in found:
            # Markdown gets one escaped line; the terminal the Python text as is, to paste.
            text = found["shrunk"]["python"]
            text = f" {escape(text)}" if escape is not str else "\n  " + text.replace("\n", "\n  ")
            shrunk.append(f"shrunk schedule of {escape(test['nodeid'])}:{text}")
    if not examples:
        return []

    def kinds(counts: Counter[str]) -> str:
        return ", ".join(f"{escape(k)} {v}" for k, v in sorted(counts.items())) or "none"

    lines = [
        f"property-based chaos: {examples} examples, {distinct} distinct schedules",
        f"schedule faults fired: {kinds(fired)}; never fired: {kinds(never)}",
    ]
    return lines + shrunk[:_LISTED]


def _outage_drills(report: Mapping[str, Any], escape: Callable[[str], str] = str) -> str | None:
    """Return one line on the run's outage drills (``chaos_drills``), or None."""
    section = report.get("chaos_drills")
    if not section:
        return None
    drills = section["drills"]
    # Counted from the items: a merged section, or an older one, is told the same way.
    counts, violations = drill_counts(drills).text(), unplanted_violations(drills)
    line = f"outage drills: {counts}, {violations} violations"
    failed = unexpected(drills)
    if failed:
        first = failed[0]
        where = f"{first['module']} on {first['store']} {first['fault']}"
        if first["status"] == "passed":
            why = MISSED
        else:
            why = first["violations"][0] if first["violations"] else "no violation listed"
        line += f" (first failure {escape(where)}: {escape(why)})"
    return line


def _categories(report: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for test in report["tests"]:
        good = test["outcome"] in ("passed", "flaky", "xpassed")
        for category in test["categories"]:
            passing, total = found.get(category, (0, 0))
            found[category] = (passing + good, total + 1)
    return dict(sorted(found.items()))


def _problems(report: Mapping[str, Any]) -> list[str]:
    lines = []
    for test in report["tests"]:
        if test["outcome"] in ("failed", "error", "flaky"):
            lines.append(f"{test['outcome'].upper()} {test['nodeid']}: {test['failure'] or ''}")
    for error in report["collection_errors"]:
        lines.append(f"COLLECTION ERROR {error['nodeid']}: {error['failure']}")
    return lines


# Inline text only (never at the start of a line): what could open emphasis, code, a link, an
# image, a table cell, strikethrough or a bare autolink (the colon of "https:").
_MARKDOWN = re.compile(r"([\\`*_\[\]|~!:])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def _escape(text: str) -> str:
    """Return ``text`` as inert Markdown: no HTML, links, emphasis, code or table breaks."""
    text = " ".join(str(text).split())
    text = "".join(_HTML.get(c, c) for c in text)
    return _MARKDOWN.sub(r"\\\1", text)


def summary_markdown(report: Mapping[str, Any]) -> str:
    """Return a Markdown summary (fit for ``$GITHUB_STEP_SUMMARY``); all report text escaped."""
    run = report["run"]
    out = [f"## Reliability report: {_escape(report['status'].upper())}", ""]
    facts = [f"seed {run['seed']}", f"{run['duration_s']:.1f}s"]
    versions = run["versions"]
    facts.append(f"Python {_escape(versions['python'])}, pytest {_escape(versions['pytest'])}")
    if run["ci"].get("commit"):
        facts.append(f"commit {_escape(run['ci']['commit'][:12])}")
    if run["interruption"]:
        facts.append(
            f"**interrupted** ({_escape(run['interruption']['kind'])}: "
            f"{_escape(run['interruption']['reason'])})"
        )
    out += [", ".join(facts), "", "| outcome | tests |", "|---|---:|"]
    out += [f"| {_escape(name)} | {count} |" for name, count in _counts(report)]
    out += [f"| **total** | **{report['summary']['total']}** |", "", "### Gates", ""]
    out += ["| gate | status | reasons |", "|---|---|---|"]
    for gate in report["gates"]:
        reasons = "<br>".join(_escape(r) for r in gate["reasons"][:5]) or "-"
        out.append(f"| {_escape(gate['name'])} | {gate['status'].upper()} | {reasons} |")
    categories = _categories(report)
    if categories:
        out += ["", "### Categories", "", "| category | passing | tests |", "|---|---:|---:|"]
        out += [f"| {_escape(name)} | {p} | {t} |" for name, (p, t) in categories.items()]
    totals = _facts_totals(report)
    drills = _drills(report, _escape)
    chaos_property = _chaos_property(report, _escape)
    outage = _outage_drills(report, _escape)
    if totals or drills or chaos_property or outage:
        out += ["", "### Reliability facts", ""]
        out += [f"- {name}: {value}" for name, value in totals.items()]
        out += [f"- {drills}"] if drills else []
        out += [f"- {line}" for line in chaos_property]
        out += [f"- {outage}"] if outage else []
    problems = _problems(report)
    if problems:
        out += ["", "### Failing and flaky tests", ""]
        out += [f"- {_escape(line)}" for line in problems[:_LISTED]]
        if len(problems) > _LISTED:
            out.append(f"- ... and {len(problems) - _LISTED} more")
    return "\n".join(out) + "\n"


def _counts(report: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Return the non-zero summary counts, outcomes first (a 1.0 report lacks the newer ones)."""
    summary = report["summary"]
    found = [(name, int(summary.get(name, 0))) for name in OUTCOMES]
    found.append(("collection errors", int(summary["collection_errors"])))
    found += [(str(k), int(v)) for k, v in summary.get("other", {}).items()]
    return [(name, count) for name, count in found if count]


def summary_text(report: Mapping[str, Any]) -> str:
    """Return a plain-text summary for a terminal."""
    run = report["run"]
    summary = report["summary"]
    counts = ", ".join(f"{c} {n}" for n, c in _counts(report)) or "no tests"
    out = [
        f"reliability report: {report['status'].upper()}",
        f"seed {run['seed']}, {run['duration_s']:.1f}s, {summary['total']} tests: {counts}",
    ]
    if run["interruption"]:
        out.append(f"interrupted ({run['interruption']['kind']}): {run['interruption']['reason']}")
    for gate in report["gates"]:
        out.append(f"gate {gate['name']}: {gate['status'].upper()}")
        out += [f"  - {reason}" for reason in gate["reasons"]]
    out += [f"category {n}: {p}/{t} passing" for n, (p, t) in _categories(report).items()]
    out += [f"{name}: {value}" for name, value in _facts_totals(report).items()]
    drills = _drills(report)
    out += [drills] if drills else []
    out += _chaos_property(report)
    outage = _outage_drills(report)
    out += [outage] if outage else []
    out += _problems(report)[:_LISTED]
    return "\n".join(out) + "\n"
