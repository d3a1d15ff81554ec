"""Human summaries of a report: Markdown for a CI job summary, or plain text for a terminal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

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
    return {k: v for k, v in totals.items() if v}


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


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(report: Mapping[str, Any]) -> str:
    """Return a Markdown summary (fit for ``$GITHUB_STEP_SUMMARY``)."""
    run = report["run"]
    out = [f"## Reliability report: {report['status'].upper()}", ""]
    facts = [f"seed `{run['seed']}`", f"{run['duration_s']:.1f}s"]
    facts.append(f"Python {run['versions']['python']}, pytest {run['versions']['pytest']}")
    if run["ci"].get("commit"):
        facts.append(f"commit `{run['ci']['commit'][:12]}`")
    if run["interruption"]:
        facts.append(
            f"**interrupted** ({run['interruption']['kind']}: "
            f"{_escape(run['interruption']['reason'])})"
        )
    out += [", ".join(facts), "", "| outcome | tests |", "|---|---:|"]
    summary = report["summary"]
    out += [f"| {name} | {summary[name]} |" for name in OUTCOMES if summary[name]]
    if summary["collection_errors"]:
        out.append(f"| collection errors | {summary['collection_errors']} |")
    out += [f"| **total** | **{summary['total']}** |", "", "### Gates", ""]
    out += ["| gate | status | reasons |", "|---|---|---|"]
    for gate in report["gates"]:
        reasons = "<br>".join(_escape(r) for r in gate["reasons"][:5]) or "-"
        out.append(f"| {gate['name']} | {gate['status'].upper()} | {reasons} |")
    categories = _categories(report)
    if categories:
        out += ["", "### Categories", "", "| category | passing | tests |", "|---|---:|---:|"]
        out += [f"| {name} | {p} | {t} |" for name, (p, t) in categories.items()]
    totals = _facts_totals(report)
    if totals:
        out += ["", "### Reliability facts", ""]
        out += [f"- {name}: {value}" for name, value in totals.items()]
    problems = _problems(report)
    if problems:
        out += ["", "### Failing and flaky tests", ""]
        out += [f"- {_escape(line)}" for line in problems[:_LISTED]]
        if len(problems) > _LISTED:
            out.append(f"- ... and {len(problems) - _LISTED} more")
    return "\n".join(out) + "\n"


def summary_text(report: Mapping[str, Any]) -> str:
    """Return a plain-text summary for a terminal."""
    run = report["run"]
    summary = report["summary"]
    counts = ", ".join(f"{summary[n]} {n}" for n in OUTCOMES if summary[n]) or "no tests"
    out = [
        f"reliability report: {report['status'].upper()}",
        f"seed {run['seed']}, {run['duration_s']:.1f}s, {summary['total']} tests: {counts}",
    ]
    if summary["collection_errors"]:
        out.append(f"collection errors: {summary['collection_errors']}")
    if run["interruption"]:
        out.append(f"interrupted ({run['interruption']['kind']}): {run['interruption']['reason']}")
    for gate in report["gates"]:
        out.append(f"gate {gate['name']}: {gate['status'].upper()}")
        out += [f"  - {reason}" for reason in gate["reasons"]]
    out += [f"category {n}: {p}/{t} passing" for n, (p, t) in _categories(report).items()]
    out += [f"{name}: {value}" for name, value in _facts_totals(report).items()]
    out += _problems(report)[:_LISTED]
    return "\n".join(out) + "\n"
