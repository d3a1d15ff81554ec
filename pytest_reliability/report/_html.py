"""The report for people: one self-contained, offline HTML page, with charts as inline SVG.

Everything is in the one file: styles and a small script inline, charts drawn here as SVG, no
font, image or script fetched from anywhere (a Content-Security-Policy of ``default-src 'none'``
makes sure the browser would refuse to). Every text taken from a report is escaped, so a test
named ``<script>alert(1)</script>`` reads as text. Without the script the page is complete; the
script adds filtering and sorting of the tests table.

Given several reports, the page shows the newest run and, above it, the trend across all of them
(:mod:`pytest_reliability.report._trend`).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_reliability._drill_outcome import (
    MISSED,
    PLANTED,
    drill_counts,
    drill_outcome,
    unplanted_violations,
)
from pytest_reliability.errors import ReportError
from pytest_reliability.report._collector import OUTCOMES
from pytest_reliability.report._tally import tally_facts
from pytest_reliability.report._trend import Trend, build_trend, categories_of

SLOWEST = 10
"""How many of the slowest tests the page lists."""
MAX_LISTED = 100
"""Most warnings, collection errors and flaky tests listed in full."""
SECTION_MAX_CHARS = 20_000
"""Longest JSON shown for one custom report section."""
TREND_SHOWN = 60
"""Most runs the trend shows (the newest), so a page over months of reports stays readable."""

_MARK = {
    "passed": "✓",
    "failed": "✗",
    "error": "!",
    "skipped": "–",
    "xfailed": "x",
    "xpassed": "★",
    "flaky": "↻",
    "interrupted": "■",
    "incomplete": "…",
    "no_tests": "∅",
}
# Worst first: the order the outcome column sorts in.
_SEVERITY = ("error", "failed", "interrupted", "flaky", "xpassed", "passed", "xfailed", "skipped")
_DURATION_BUCKETS = (
    (0.01, "< 10 ms"),
    (0.1, "10–100 ms"),
    (1.0, "0.1–1 s"),
    (10.0, "1–10 s"),
    (60.0, "10–60 s"),
    (float("inf"), "≥ 60 s"),
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _mark(outcome: str) -> str:
    name = str(outcome)
    return (
        f'<span class="o o-{_e(name)}"><span aria-hidden="true">{_MARK.get(name, "?")}</span> '
        f"{_e(name)}</span>"
    )


def _drill_mark(drill: Mapping[str, Any]) -> str:
    """A drill's status, its declared expectation taken into account."""
    outcome = drill_outcome(drill)
    # A planted fault caught reads like an expected failure; one missed, like a failure.
    if outcome == PLANTED:
        return f'<span class="o o-xfailed"><span aria-hidden="true">x</span> {_e(PLANTED)}</span>'
    if outcome == MISSED:
        return f'<span class="o o-failed"><span aria-hidden="true">✗</span> {_e(MISSED)}</span>'
    return _mark(str(drill["status"]))


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def _json_block(value: Any, limit: int = SECTION_MAX_CHARS) -> str:
    text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters in the JSON report)"
    return f"<pre>{_e(text)}</pre>"


# ---------------------------------------------------------------- charts (inline SVG)


def bar_chart(title: str, rows: Sequence[tuple[str, float, str]], unit: str = "") -> str:
    """Return a horizontal bar chart as inline SVG: one (label, value, CSS class) a bar.

    Each bar carries its value as text, so the chart reads without colour, and the whole chart
    has a title and a description for screen readers.
    """
    if not rows:
        return ""
    top = max((value for _, value, _ in rows), default=0.0) or 1.0
    label_w, bar_w, row_h = 150, 190, 22
    height = row_h * len(rows) + 8
    parts = [
        f'<svg class="chart" viewBox="0 0 {label_w + bar_w + 60} {height}" role="img" '
        f'aria-label="{_e(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{_e(title)}</title>",
        "<desc>"
        + _e("; ".join(f"{label}: {_number(value)}{unit}" for label, value, _ in rows))
        + "</desc>",
    ]
    for index, (label, value, css) in enumerate(rows):
        y = 4 + index * row_h
        width = max(bar_w * value / top, 1.0 if value else 0.0)
        shown = label if len(label) <= 24 else "…" + label[-23:]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(shown)}'
            f"<title>{_e(label)}</title></text>"
            f'<rect class="{_e(css)}" x="{label_w}" y="{y + 3}" width="{width:.1f}" '
            f'height="{row_h - 6}"></rect>'
            f'<text x="{label_w + width + 5:.1f}" y="{y + 15}">{_number(value)}{_e(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def line_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    unit: str = "",
    top: float | None = None,
) -> str:
    """Return a line chart as inline SVG, one point a run (a gap where a value is ``None``).

    The vertical axis runs from 0 to ``top`` (default: the largest value).
    """
    known = [v for v in values if v is not None]
    if not known:
        return ""
    top = max(top or 0.0, *known) or 1.0
    width, height, left, bottom = 440, 180, 48, 24
    step = (width - left - 16) / max(len(values) - 1, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        "<desc>"
        + _e(
            "; ".join(
                f"{label}: {'n/a' if v is None else _number(v)}{unit}"
                for label, v in zip(labels, values, strict=True)
            )
        )
        + "</desc>",
        f'<line class="axis" x1="{left}" y1="8" x2="{left}" y2="{height - bottom}"></line>',
        f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - 8}" '
        f'y2="{height - bottom}"></line>',
        f'<text x="{left - 4}" y="14" text-anchor="end">{_number(top)}{_e(unit)}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>',
    ]
    plot_h = height - bottom - 12
    points: list[str] = []
    segments: list[list[str]] = [points]
    for index, value in enumerate(values):
        x = left + index * step
        if value is None:
            points = []
            segments.append(points)
            continue
        y = height - bottom - plot_h * value / top
        points.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>'
            f"{_e(labels[index])}: {_number(value)}{_e(unit)}</title></circle>"
        )
    for segment in segments:
        if len(segment) > 1:
            parts.append(f'<polyline class="line" points="{" ".join(segment)}"></polyline>')
    parts.append(
        f'<text x="{left}" y="{height - 6}">{_e(labels[0])}</text>'
        f'<text x="{width - 8}" y="{height - 6}" text-anchor="end">{_e(labels[-1])}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- sections


def _header(report: Mapping[str, Any], sources: Sequence[str]) -> str:
    run = report["run"]
    status = str(report["status"])
    versions = run.get("versions", {})
    facts = [
        ("project", run.get("project") or "not recorded (report before schema 1.2)"),
        ("run", run["id"]),
        ("started", run["started_at"]),
        ("duration", _seconds(float(run["duration_s"]))),
        ("exit code", run["exit_code"]),
        (
            "versions",
            f"Python {versions.get('python', '?')}, pytest {versions.get('pytest', '?')}, "
            f"plugin {versions.get('plugin', '?')}",
        ),
        ("schema", report["schema_version"]),
    ]
    ci = run.get("ci") or {}
    if ci.get("provider"):
        facts.append(("CI", f"{ci['provider']} {ci.get('branch') or ''} {ci.get('commit') or ''}"))
    if sources:
        facts.append(("from", ", ".join(sources)))
    out = [
        f'<header><h1>Reliability report <span class="badge s-{_e(status)}">'
        f'<span aria-hidden="true">{_MARK.get(status, "?")}</span> {_e(status.upper())}'
        "</span></h1>",
        "<dl class='facts'>",
        *(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts),
        "</dl>",
    ]
    interruption = run.get("interruption")
    if interruption:
        out.append(
            f'<p class="alert" role="alert"><strong>Interrupted ({_e(interruption["kind"])})'
            f"</strong>: {_e(interruption['reason'])}</p>"
        )
    out.append("</header>")
    return "\n".join(out)


def _replay(run: Mapping[str, Any]) -> str:
    flags = []
    if run.get("deterministic_ids"):
        flags.append("--reliability-deterministic-ids")
    if run.get("deterministic_uuid4"):
        flags.append("--reliability-deterministic-uuid4")
    seeds = run.get("seeds") or [run["seed"]]
    commands = [
        " ".join(["pytest -p reliability", f"--reliability-seed {int(seed)}", *flags])
        for seed in seeds
    ]
    shards = " (one per merged shard)" if len(commands) > 1 else ""
    listed = "".join(f"<li><code>{_e(c)}</code></li>" for c in commands[:20])
    return (
        f'<section aria-labelledby="h-replay"><h2 id="h-replay">Seed and replay</h2>'
        f"<p>Seed <strong>{_e(run['seed'])}</strong>. Replay the run with{shards}:</p>"
        f"<ul>{listed}</ul></section>"
    )


def _gates(report: Mapping[str, Any]) -> str:
    gates = report["gates"]
    out = ['<section aria-labelledby="h-gates"><h2 id="h-gates">Gates</h2>']
    if not gates:
        out.append("<p>No gate ran.</p></section>")
        return "".join(out)
    out.append(
        "<table><caption>Each gate's verdict; a gate that did not pass says why.</caption>"
        '<thead><tr><th scope="col">gate</th><th scope="col">status</th>'
        '<th scope="col">why</th></tr></thead><tbody>'
    )
    for gate in sorted(gates, key=lambda g: (g["status"] == "passed", g["name"])):
        reasons = gate["reasons"]
        why = (
            "<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons[:20]) + "</ul>"
            if reasons
            else _e(gate.get("description") or "")
        )
        if len(reasons) > 20:
            why += f"<p>… and {len(reasons) - 20} more</p>"
        out.append(
            f"<tr><th scope='row'>{_e(gate['name'])} <small>({_e(gate['source'])})</small></th>"
            f"<td>{_mark(gate['status'])}</td><td>{why}</td></tr>"
        )
    out.append("</tbody></table></section>")
    return "".join(out)


def _outcomes(report: Mapping[str, Any]) -> str:
    summary = report["summary"]
    tests = report["tests"]
    by_outcome = Counter(t["outcome"] for t in tests)
    rows = [(name, float(by_outcome.get(name, 0)), f"o-{name}") for name in OUTCOMES]
    shown = [r for r in rows if r[1]]
    extra = []
    for key, label in (
        ("collected", "collected"),
        ("deselected", "deselected"),
        ("collection_errors", "collection errors"),
    ):
        if key in summary:
            extra.append(f"<li>{_e(label)}: {int(summary[key])}</li>")
    counts = "".join(
        f"<tr><th scope='row'>{_mark(name)}</th><td class='n'>{int(value)}</td></tr>"
        for name, value, _ in shown
    )
    return (
        '<section aria-labelledby="h-outcomes"><h2 id="h-outcomes">Outcomes</h2>'
        '<div class="pair"><table><caption>Tests by final outcome</caption>'
        '<thead><tr><th scope="col">outcome</th><th scope="col">tests</th></tr></thead>'
        f"<tbody>{counts}<tr><th scope='row'>total</th><td class='n'>{len(tests)}</td></tr>"
        f"</tbody></table>{bar_chart('Tests by outcome', shown)}</div>"
        f"<ul>{''.join(extra)}</ul></section>"
    )


def _durations(report: Mapping[str, Any]) -> str:
    tests = report["tests"]
    if not tests:
        return ""
    slowest = sorted(tests, key=lambda t: -float(t["duration_s"]))[:SLOWEST]
    buckets: Counter[str] = Counter()
    for test in tests:
        duration = float(test["duration_s"])
        for limit, label in _DURATION_BUCKETS:
            if duration < limit:
                buckets[label] += 1
                break
    rows = "".join(
        f"<tr><td><code>{_e(t['nodeid'])}</code></td><td class='n'>"
        f"{_e(_seconds(float(t['duration_s'])))}</td><td>{_mark(t['outcome'])}</td></tr>"
        for t in slowest
    )
    distribution = [(label, float(buckets.get(label, 0)), "bar") for _, label in _DURATION_BUCKETS]
    total = sum(float(t["duration_s"]) for t in tests)
    return (
        '<section aria-labelledby="h-durations"><h2 id="h-durations">Durations</h2>'
        f"<p>All tests together: {_e(_seconds(total))}.</p>"
        f'<h3>The {len(slowest)} slowest tests</h3><table class="wide"><thead><tr>'
        '<th scope="col">test</th><th scope="col">duration</th><th scope="col">outcome</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        "<h3>Duration distribution</h3>"
        f"{bar_chart('Tests by duration', distribution)}</section>"
    )


def _categories(report: Mapping[str, Any]) -> str:
    found = categories_of(report)
    required = list(report["run"].get("required_categories") or [])
    names = sorted(set(found) | set(required))
    if not names:
        return (
            '<section aria-labelledby="h-categories"><h2 id="h-categories">Categories</h2>'
            "<p>No test declared a reliability category, and none was required.</p></section>"
        )
    rows = []
    for name in names:
        passing, total = found.get(name, (0, 0))
        needed = name in required
        if needed and passing:
            verdict = '<span class="o o-passed"><span aria-hidden="true">✓</span> proven</span>'
        elif needed:
            verdict = '<span class="o o-failed"><span aria-hidden="true">✗</span> not proven</span>'
        else:
            verdict = "not required"
        rows.append(
            f"<tr><th scope='row'>{_e(name)}</th><td class='n'>{passing}</td>"
            f"<td class='n'>{total}</td><td>{verdict}</td></tr>"
        )
    chart = bar_chart(
        "Passing tests per category",
        [(n, float(found.get(n, (0, 0))[0]), "o-passed") for n in names],
    )
    return (
        '<section aria-labelledby="h-categories"><h2 id="h-categories">Categories</h2>'
        '<div class="pair"><table><caption>Passing tests against the required categories'
        '</caption><thead><tr><th scope="col">category</th><th scope="col">passing</th>'
        '<th scope="col">tests</th><th scope="col">required</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{chart}</div></section>"
    )


def _facts(report: Mapping[str, Any]) -> str:
    tally = tally_facts(report)
    injected, fired, switches = tally.injected, tally.fired, tally.switches
    idempotency, audit = tally.idempotency, tally.audit
    out = ['<section aria-labelledby="h-facts"><h2 id="h-facts">Reliability facts</h2>']
    later = (_abuse(report), _property_chaos(report), _outage_drills(report))
    if not (injected or switches or idempotency or audit or report.get("backups") or any(later)):
        out.append("<p>No test recorded chaos faults, kill switches, idempotency or audit.</p>")
    if injected:
        rows = "".join(
            f"<tr><th scope='row'>{_e(k)}</th><td class='n'>{injected[k]}</td>"
            f"<td class='n'>{fired[k]}</td></tr>"
            for k in sorted(injected)
        )
        chart = bar_chart(
            "Chaos faults fired by kind", [(k, float(fired[k]), "bar") for k in sorted(injected)]
        )
        out.append(
            '<h3>Chaos faults by kind</h3><div class="pair"><table><thead><tr>'
            '<th scope="col">kind</th><th scope="col">injected</th><th scope="col">fired</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>{chart}</div>"
        )
    if switches:
        rows = "".join(
            f"<tr><th scope='row'>{_e(k)}</th><td class='n'>{switches[k]}</td></tr>"
            for k in sorted(switches)
        )
        out.append(
            '<h3>Kill switches exercised</h3><table><thead><tr><th scope="col">switch</th>'
            f'<th scope="col">tests</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    if idempotency:
        rows = "".join(
            f"<tr><th scope='row'>{_e(k.replace('_', ' '))}</th>"
            f"<td class='n'>{idempotency[k]}</td></tr>"
            for k in sorted(idempotency)
        )
        out.append(
            '<h3>Idempotency</h3><table><thead><tr><th scope="col">measure</th>'
            f'<th scope="col">total</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    if audit:
        ordered = sorted(audit.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(
            "<h3>Audit events by action</h3>"
            + bar_chart("Audit events by action", [(k, float(v), "bar") for k, v in ordered])
        )
    backups = report.get("backups")
    if backups:
        rows = "".join(
            f"<tr><td>{_e(d['backup'])}</td><td>{_e(d['backend'])}</td>"
            f"<td>{_drill_mark(d)}</td><td class='n'>{_e(_seconds(float(d['rto_s'])))}</td>"
            f"<td>{_e(d['reason'] or '')}</td></tr>"
            for d in backups["drills"]
        )
        out.append(
            f"<h3>Restore drills: {drill_counts(backups['drills']).text()}</h3>"
            '<table class="wide"><thead><tr><th scope="col">backup</th>'
            '<th scope="col">backend</th><th scope="col">status</th><th scope="col">RTO</th>'
            f'<th scope="col">reason</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    out.extend(part for part in later if part)
    sections = report.get("sections") or {}
    for name in sorted(sections):
        out.append(f"<details><summary>Section {_e(name)}</summary>")
        out.append(_json_block(sections[name]) + "</details>")
    out.append("</section>")
    return "".join(out)


def _abuse(report: Mapping[str, Any]) -> str:
    """Abuse protection as the ``abuse`` fixture drove it: signals, decisions by tier."""
    totals: Counter[str] = Counter()
    tiers: Counter[str] = Counter()
    for test in report["tests"]:
        found = test["facts"].get("abuse")
        if not found:
            continue
        for key in ("signals", "escalations", "denied"):
            totals[key] += int(found.get(key, 0))
        for tier, count in found.get("decisions_by_tier", {}).items():
            tiers[str(tier)] += int(count)
    if not (totals or tiers):
        return ""
    rows = "".join(
        f"<tr><th scope='row'>{_e(k)}</th><td class='n'>{totals[k]}</td></tr>"
        for k in ("signals", "escalations", "denied")
    )
    order = [t for t in ("NORMAL", "WARN", "THROTTLE", "BLOCK", "UNKNOWN") if t in tiers]
    chart = bar_chart("Abuse decisions by tier", [(t, float(tiers[t]), "bar") for t in order])
    return (
        '<h3>Abuse protection</h3><div class="pair"><table><thead><tr>'
        '<th scope="col">measure</th><th scope="col">total</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>{chart}</div>"
    )


def _property_chaos(report: Mapping[str, Any]) -> str:
    """Property-based chaos: examples, schedules, faults by kind, shrunk schedules."""
    examples = distinct = 0
    fired: Counter[str] = Counter()
    never: Counter[str] = Counter()
    shrunk: list[tuple[str, str]] = []
    for test in report["tests"]:
        found = test["facts"].get("chaos", {}).get("property")
        if not found:
            continue
        examples += int(found["examples"])
        distinct += int(found["distinct_schedules"])
        fired.update({str(k): int(v) for k, v in found["fired_by_kind"].items()})
        never.update({str(k): int(v) for k, v in found["unfired_by_kind"].items()})
        if "shrunk" in found:
            shrunk.append((str(test["nodeid"]), str(found["shrunk"]["python"])))
    if not examples:
        return ""
    kinds = sorted(set(fired) | set(never))
    rows = "".join(
        f"<tr><th scope='row'>{_e(k)}</th><td class='n'>{fired[k]}</td>"
        f"<td class='n'>{never[k]}</td></tr>"
        for k in kinds
    )
    out = [
        f"<h3>Property-based chaos: {examples} examples, {distinct} distinct schedules</h3>",
        '<table><thead><tr><th scope="col">fault kind</th><th scope="col">fired</th>'
        f'<th scope="col">never fired</th></tr></thead><tbody>{rows}</tbody></table>',
    ]
    for nodeid, python in shrunk:
        out.append(
            f"<details open><summary>Shrunk schedule of <code>{_e(nodeid)}</code></summary>"
            f"<pre>{_e(python)}</pre></details>"
        )
    return "".join(out)


def _outage_drills(report: Mapping[str, Any]) -> str:
    """The outage drills: per module, store and fault, the times and the violations."""
    section = report.get("chaos_drills")
    if not section:
        return ""

    def time(value: Any) -> str:
        return "never" if value is None else _seconds(float(value))

    rows = "".join(
        f"<tr><td>{_e(d['module'])}</td><td>{_e(d['store'])}</td><td>{_e(d['fault'])}</td>"
        f"<td>{_drill_mark(d)}</td>"
        f"<td class='n'>{_e(time(d['time_to_fail_closed_s']))}</td>"
        f"<td class='n'>{_e(time(d['time_to_recover_s']))}</td>"
        f"<td class='n'>{int(d['histories_checked'])}</td>"
        f"<td>{'<br>'.join(_e(v) for v in d['violations'])}</td></tr>"
        for d in section["drills"]
    )
    return (
        f"<h3>Outage drills: {drill_counts(section['drills']).text()}, "
        f"{unplanted_violations(section['drills'])} violations</h3>"
        '<table class="wide"><thead><tr><th scope="col">module</th><th scope="col">store</th>'
        '<th scope="col">fault</th><th scope="col">status</th>'
        '<th scope="col">fail closed</th><th scope="col">recovered</th>'
        '<th scope="col">histories</th><th scope="col">violations</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _flaky(report: Mapping[str, Any]) -> str:
    flaky = [t for t in report["tests"] if t["outcome"] == "flaky"]
    if not flaky:
        return ""
    rows = []
    for test in flaky[:MAX_LISTED]:
        attempts = " → ".join(_mark(a["outcome"]) for a in test["attempts"])
        rows.append(
            f"<tr><td><code>{_e(test['nodeid'])}</code></td><td>{attempts}</td>"
            f"<td>{_e(test['failure'] or '')}</td></tr>"
        )
    more = f"<p>… and {len(flaky) - MAX_LISTED} more.</p>" if len(flaky) > MAX_LISTED else ""
    return (
        '<section aria-labelledby="h-flaky"><h2 id="h-flaky">Flaky tests</h2>'
        '<table class="wide"><thead><tr><th scope="col">test</th><th scope="col">attempts</th>'
        f'<th scope="col">failure</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        f"{more}</section>"
    )


def _problems(report: Mapping[str, Any]) -> str:
    out = []
    errors = report["collection_errors"]
    if errors:
        rows = "".join(
            f"<tr><td><code>{_e(e['nodeid'] or '<session>')}</code></td>"
            f"<td>{_e(e['failure'])}</td></tr>"
            for e in errors[:MAX_LISTED]
        )
        out.append(
            '<section aria-labelledby="h-collection"><h2 id="h-collection">Collection errors'
            '</h2><table class="wide"><thead><tr><th scope="col">node</th>'
            f'<th scope="col">error</th></tr></thead><tbody>{rows}</tbody></table></section>'
        )
    warnings = report.get("warnings") or []
    if warnings:
        rows = "".join(
            f"<tr><td>{_e(w['category'])}</td><td>{_e(w['message'])}</td>"
            f"<td><code>{_e(w['nodeid'])}</code></td></tr>"
            for w in warnings[:MAX_LISTED]
        )
        out.append(
            f'<section aria-labelledby="h-warnings"><h2 id="h-warnings">Warnings '
            f'({len(warnings)})</h2><table class="wide"><thead><tr><th scope="col">category'
            '</th><th scope="col">message</th><th scope="col">test</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></section>"
        )
    return "".join(out)


def _test_detail(test: Mapping[str, Any]) -> str:
    parts = []
    if test["failure"]:
        parts.append(f"<pre>{_e(test['failure'])}</pre>")
    crash = test.get("crash")
    if crash:
        line = f":{crash['line']}" if crash.get("line") else ""
        parts.append(f"<p>raised at <code>{_e(crash['path'])}{_e(line)}</code></p>")
    location = test.get("location")
    if location and parts:
        line = f":{location['line']}" if location.get("line") else ""
        parts.append(f"<p>defined at <code>{_e(location['path'])}{_e(line)}</code></p>")
    attempts = test["attempts"]
    if len(attempts) > 1:
        parts.append("<p>attempts: " + " → ".join(_mark(a["outcome"]) for a in attempts) + "</p>")
    if test["facts"]:
        parts.append("<p>facts</p>" + _json_block(test["facts"], 4000))
    if test.get("properties"):
        rows = "".join(
            f"<li>{_e(p['name'])}: {_e(json.dumps(p['value'], ensure_ascii=False))}</li>"
            for p in test["properties"]
        )
        parts.append(f"<p>properties</p><ul>{rows}</ul>")
    if test.get("metadata"):
        parts.append("<p>metadata</p>" + _json_block(test["metadata"], 4000))
    for stream, text in (test.get("captured") or {}).items():
        parts.append(f"<p>captured {_e(stream)}</p><pre>{_e(text)}</pre>")
    if not parts:
        return ""
    return f"<details><summary>details</summary>{''.join(parts)}</details>"


def _tests_table(report: Mapping[str, Any]) -> str:
    """Return every test as a sortable, filterable table.

    ARIA table roles on grid rows rather than a ``<table>``: a browser can skip the layout of a
    row that is off screen (``content-visibility: auto``) but not of a table row, and laying out
    a native table of 10,000 rows took seconds.
    """
    tests = report["tests"]
    outcomes = sorted({t["outcome"] for t in tests}, key=_severity)
    categories = sorted({c for t in tests for c in t["categories"]})
    options = "".join(f'<option value="{_e(o)}">{_e(o)}</option>' for o in outcomes)
    category_options = "".join(f'<option value="{_e(c)}">{_e(c)}</option>' for c in categories)
    rows: list[str] = []
    append = rows.append
    escape = _e
    for test in tests:
        outcome = escape(test["outcome"])
        cats = escape(" ".join(test["categories"]))
        duration = float(test["duration_s"])
        append(
            f'<div role="row" class="r" data-o="{outcome}" data-c=" {cats} " '
            f'data-d="{duration:.6f}"><span role="cell" class="t">{escape(test["nodeid"])}</span>'
            f'<span role="cell" class="o o-{outcome}">{outcome}</span>'
            f'<span role="cell" class="n">{_seconds(duration)}</span>'
            f'<span role="cell">{cats}</span><span role="cell">{_test_detail(test)}</span></div>'
        )
    return (
        '<section aria-labelledby="h-tests"><h2 id="h-tests">All tests</h2>'
        '<form class="controls" role="search" onsubmit="return false">'
        '<label>Outcome <select id="f-outcome"><option value="">any</option>'
        f"{options}</select></label>"
        '<label>Category <select id="f-category"><option value="">any</option>'
        f"{category_options}</select></label>"
        '<label>Search <input id="f-text" type="search" placeholder="test name or failure">'
        "</label></form>"
        f'<p id="f-count" aria-live="polite">{len(tests)} tests</p>'
        '<div id="tests" class="grid" role="table" aria-label="Every test; choose a column '
        'heading to sort" aria-rowcount="' + str(len(tests) + 1) + '">'
        '<div role="rowgroup" class="head"><div role="row" class="h">'
        '<span role="columnheader" aria-sort="ascending"><button type="button" data-k="n">test'
        "</button></span>"
        '<span role="columnheader"><button type="button" data-k="o">outcome</button></span>'
        '<span role="columnheader"><button type="button" data-k="d">duration</button></span>'
        '<span role="columnheader">categories</span>'
        '<span role="columnheader">failure and facts</span></div></div>'
        f'<div role="rowgroup" class="body">{"".join(rows)}</div></div></section>'
    )


def _severity(outcome: str) -> int:
    return _SEVERITY.index(outcome) if outcome in _SEVERITY else len(_SEVERITY)


def _trend_section(trend: Trend) -> str:
    points = trend.points[-TREND_SHOWN:]
    older = len(trend.points) - len(points)
    labels = [f"{p.started_at[:16]} {p.run_id[:8]}" for p in points]
    rates = [None if p.pass_rate is None else round(p.pass_rate * 100, 2) for p in points]
    out = [
        f'<section aria-labelledby="h-trend"><h2 id="h-trend">Trend across {len(points)} runs</h2>',
        f"<p>{older} older runs are not shown.</p>" if older else "",
        "<h3>Pass rate per run</h3>",
        line_chart("Pass rate per run, oldest first", labels, rates, "%", top=100.0),
        "<h3>Duration per run</h3>",
        line_chart("Run duration, oldest first", labels, [p.duration_s for p in points], " s"),
    ]
    rows = []
    for label, point in zip(labels, points, strict=True):
        rate = "n/a" if point.pass_rate is None else f"{point.pass_rate * 100:.1f}%"
        changes = []
        for title, names in (
            ("newly failing", point.newly_failing),
            ("newly flaky", point.newly_flaky),
            ("fixed", point.fixed),
        ):
            if names:
                listed = "".join(f"<li><code>{_e(n)}</code></li>" for n in names[:20])
                more = f"<li>… and {len(names) - 20} more</li>" if len(names) > 20 else ""
                changes.append(
                    f"<details><summary>{len(names)} {title}</summary><ul>{listed}{more}</ul>"
                    "</details>"
                )
        project = f"<br><small>{_e(point.project)}</small>" if trend.mixed and point.project else ""
        rows.append(
            f"<tr><th scope='row'>{_e(label)}{project}</th><td>{_mark(point.status)}</td>"
            f"<td class='n'>{point.total}</td><td class='n'>{_e(rate)}</td>"
            f"<td class='n'>{_e(_seconds(point.duration_s))}</td>"
            f"<td>{''.join(changes) or '–'}</td></tr>"
        )
    out.append(
        '<h3>Runs</h3><table class="wide"><thead><tr><th scope="col">run</th>'
        '<th scope="col">status</th><th scope="col">tests</th><th scope="col">pass rate</th>'
        '<th scope="col">duration</th><th scope="col">changes since the run before</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )
    categories = trend.categories
    if categories:
        head = "".join(f'<th scope="col">{_e(label)}</th>' for label in labels)
        body = []
        for category in categories:
            cells = []
            for point in points:
                passing, total = point.categories.get(category, (0, 0))
                cells.append(f"<td class='n'>{passing}/{total}</td>" if total else "<td>–</td>")
            body.append(f"<tr><th scope='row'>{_e(category)}</th>{''.join(cells)}</tr>")
        out.append(
            "<h3>Category reliability over time</h3><div class='scroll'><table>"
            "<caption>Passing tests / tests per category, oldest run first</caption>"
            f"<thead><tr><th scope='col'>category</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )
    out.append("</section>")
    return "".join(out)


def render_html(
    reports: Sequence[Mapping[str, Any]],
    *,
    sources: Sequence[str] = (),
    title: str | None = None,
) -> str:
    """Return the HTML page for ``reports`` (the newest run, and a trend when several).

    ``sources`` names where the reports came from (shown in the header). Reports of different
    projects, or runs with no test in common, get the page a warning at the top saying so.
    """
    if not reports:
        raise ReportError("an HTML report needs at least one report")
    trend = build_trend(reports) if len(reports) > 1 else None
    newest = max(reports, key=lambda r: str(r["run"]["started_at"]))
    status = str(newest["status"])
    project = newest["run"].get("project")
    heading = title or f"Reliability report: {status.upper()}" + (
        f" ({project})" if project else ""
    )
    body = []
    if trend is not None:
        for warning in trend.warnings():
            body.append(
                f'<p class="alert" role="alert"><strong>Warning</strong>: {_e(warning)}</p>'
            )
    body.append(_header(newest, sources))
    body.append(_nav(trend is not None, newest))
    body.append("<main>")
    body.append(_gates(newest))
    body.append(_replay(newest["run"]))
    if trend is not None:
        body.append(_trend_section(trend))
    for part in (_outcomes, _durations, _categories, _facts, _flaky, _problems, _tests_table):
        body.append(part(newest))
    body.append("</main>")
    footer = (
        "<footer><p>Written by pytest-reliability from schema "
        f"{_e(newest['schema_version'])} reports. Newest run shown; everything else is in "
        "the JSON report.</p></footer>"
    )
    return "".join(
        [
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
            '<link rel="icon" href="data:,">',
            f"<title>{_e(heading)}</title><style>{_CSS}</style></head><body>",
            "\n".join(body),
            footer,
            f"<script>{_SCRIPT}</script></body></html>\n",
        ]
    )


def _nav(trend: bool, report: Mapping[str, Any]) -> str:
    links: Iterable[tuple[str, str]] = [
        ("h-gates", "Gates"),
        *([("h-trend", "Trend")] if trend else []),
        ("h-outcomes", "Outcomes"),
        ("h-durations", "Durations"),
        ("h-categories", "Categories"),
        ("h-facts", "Facts"),
        *([("h-flaky", "Flaky")] if any(t["outcome"] == "flaky" for t in report["tests"]) else []),
        ("h-tests", "All tests"),
    ]
    items = "".join(f'<li><a href="#{anchor}">{_e(text)}</a></li>' for anchor, text in links)
    return f'<nav aria-label="Sections"><ul>{items}</ul></nav>'


_CSS = (
    """
:root{--fg:#1a1a1a;--bg:#fff;--mute:#555;--line:#ccc;--pass:#1a7f37;--fail:#c62828;
--warn:#9a6700;--skip:#6e7781;--bar:#3465a4}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;padding:1rem;max-width:80rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.3rem;margin-top:2rem;
border-bottom:2px solid var(--line)}h3{font-size:1.05rem}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
code{overflow-wrap:anywhere}pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f8fa;
padding:.4rem;margin:.2rem 0;max-height:24rem;overflow:auto}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.5rem 0}
.facts dt{font-weight:600}.facts dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:.1rem .6rem;border-radius:.3rem;color:#fff;
background:var(--skip);font-size:1.1rem;vertical-align:middle}
.s-passed{background:var(--pass)}.s-failed,.s-error{background:var(--fail)}
.s-interrupted,.s-incomplete{background:var(--warn)}
.alert{border-left:6px solid var(--fail);background:#fdecea;padding:.5rem .8rem}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3rem 1rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border-bottom:1px solid var(--line);
padding:.25rem .5rem;text-align:left;vertical-align:top}
td ul,td p{margin:0}td ul{padding-left:1.1rem}
caption{text-align:left;color:var(--mute);font-size:.9em;padding:.2rem 0}
table.wide{width:100%}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.o{white-space:nowrap;font-weight:600}.o-passed,.o-xfailed{color:var(--pass)}
.o-failed,.o-error{color:var(--fail)}.o-flaky,.o-xpassed,.o-interrupted{color:var(--warn)}
.o-skipped{color:var(--skip)}
.pair{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.pair>table{flex:0 0 auto}.pair>svg{flex:1 1 20rem}
svg.chart{width:100%;max-width:34rem;height:auto;font-size:12px}svg text{fill:var(--fg)}
rect.bar,rect.o-passed{fill:var(--bar)}rect.o-failed,rect.o-error{fill:var(--fail)}
rect.o-flaky,rect.o-xpassed,rect.o-interrupted{fill:var(--warn)}
rect.o-skipped,rect.o-xfailed{fill:var(--skip)}
.line{fill:none;stroke:var(--bar);stroke-width:2}.pt{fill:var(--bar)}.axis{stroke:var(--mute)}
.controls{display:flex;flex-wrap:wrap;gap:.5rem 1rem;margin:.5rem 0}
.controls input,.controls select{font:inherit;padding:.2rem}
[role=columnheader] button{font:inherit;font-weight:600;background:none;border:0;padding:0;
cursor:pointer;text-decoration:underline dotted}
.scroll{overflow-x:auto}
.grid .r,.grid .h{display:grid;grid-template-columns:minmax(0,3fr) 7.5rem 6rem minmax(0,1fr)
minmax(0,2fr);gap:0 .6rem;border-bottom:1px solid var(--line);padding:.2rem .3rem}
.grid .h{font-weight:600;border-bottom:2px solid var(--line)}
.grid .r{content-visibility:auto;contain-intrinsic-size:auto 1.9em}
.grid .t{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;overflow-wrap:anywhere}
.grid .n{text-align:right;font-variant-numeric:tabular-nums}
.grid .r[hidden]{display:none}
[role=columnheader][aria-sort=ascending] button::after{content:" ▲"}
[role=columnheader][aria-sort=descending] button::after{content:" ▼"}
:focus-visible{outline:3px solid var(--bar);outline-offset:2px}
@media (max-width:40rem){body{padding:.5rem}.facts{grid-template-columns:1fr}
table{display:block;max-width:100%;overflow-x:auto}th,td{overflow-wrap:anywhere}
.grid .h{display:flex;flex-wrap:wrap;gap:.2rem 1rem}
.grid .h>:nth-child(n+4){position:absolute;left:-9999px}
.grid .r{grid-template-columns:minmax(0,1fr);contain-intrinsic-size:auto 6em;
border-bottom:2px solid var(--line)}.grid .r>.n{text-align:left}
.grid .r>:nth-child(3)::before{content:"duration: "}
.grid .r>:nth-child(4):not(:empty)::before{content:"categories: "}
}
@media print{nav,.controls,#f-count{display:none}body{max-width:none;font-size:11px}
pre{max-height:none}a{color:inherit}}
@media print{details::details-content{content-visibility:visible}
.grid .r{content-visibility:visible}}
""".replace("\n", "")
    + "".join(
        # The grid's outcome cells show their symbol as generated content, hidden from screen
        # readers (the word follows): one element a cell fewer, over thousands of rows.
        f'.r .o-{name}::before{{content:"{mark} " / ""}}'
        for name, mark in _MARK.items()
    )
)

_SCRIPT = """
(function(){
var grid=document.getElementById("tests");if(!grid)return;
var body=grid.querySelector(".body"),rows=[],i,r,els=body.children;
for(i=0;i<els.length;i++){r=els[i];rows.push({el:r,i:i,
t:(r.children[0].textContent+" "+r.children[4].textContent).toLowerCase()});}
var order=["error","failed","interrupted","flaky","xpassed","passed","xfailed","skipped"];
var fo=document.getElementById("f-outcome"),fc=document.getElementById("f-category"),
ft=document.getElementById("f-text"),count=document.getElementById("f-count");
function apply(){var o=fo.value,c=fc.value?" "+fc.value+" ":"",q=ft.value.trim().toLowerCase(),
shown=0;for(var k=0;k<rows.length;k++){var row=rows[k],el=row.el,ok=(!o||el.dataset.o===o)&&
(!c||el.dataset.c.indexOf(c)>=0)&&(!q||row.t.indexOf(q)>=0);if(el.hidden===ok)el.hidden=!ok;
if(ok)shown++;}count.textContent=shown+" of "+rows.length+" tests shown";}
fo.addEventListener("change",apply);fc.addEventListener("change",apply);
ft.addEventListener("input",apply);
var heads=grid.querySelectorAll("[role=columnheader]");
function key(row,k){var d=row.el.dataset;if(k==="d")return parseFloat(d.d);
if(k==="o"){var x=order.indexOf(d.o);return x<0?order.length:x;}return row.i;}
function sort(head,k){var desc=head.getAttribute("aria-sort")==="ascending"&&head.dataset.sorted;
for(var h=0;h<heads.length;h++){heads[h].removeAttribute("aria-sort");
delete heads[h].dataset.sorted;}
head.setAttribute("aria-sort",desc?"descending":"ascending");head.dataset.sorted="1";
var sign=desc?-1:1;rows.sort(function(a,b){var x=key(a,k),y=key(b,k);
return x<y?-sign:x>y?sign:(a.i-b.i)*sign;});
var frag=document.createDocumentFragment();
for(var m=0;m<rows.length;m++)frag.appendChild(rows[m].el);
body.appendChild(frag);}
var buttons=grid.querySelectorAll("[role=columnheader] button");
for(i=0;i<buttons.length;i++){buttons[i].addEventListener("click",function(ev){
var b=ev.currentTarget;sort(b.parentNode,b.dataset.k);});}
heads[0].dataset.sorted="1";
})();
""".strip()
