"""``pytest-reliability slo``: evaluate an SLO spec over data, render Sloth's rules.

``slo evaluate SPEC --data DATA`` exits 1 when an alert fires (page, or ticket too with
``--fail-on ticket``) or the error budget is spent, so a pipeline can gate a release on an SLO.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_reliability.errors import SLODataError, SlothSpecError

if TYPE_CHECKING:
    from pytest_reliability.ops.slo_engine import SLOStatus
    from pytest_reliability.ops.slo_engine._model import SLIKind


def register(commands: Any) -> None:
    """Add the ``slo`` command family to the parser's subcommands."""
    slo = commands.add_parser("slo", help="SLOs: error budgets, burn rates, alerts")
    sub = slo.add_subparsers(dest="slo_command", required=True, metavar="COMMAND")
    ev = sub.add_parser(
        "evaluate", help="evaluate a Sloth spec over CSV data; exit 1 when an alert fires"
    )
    ev.add_argument("spec", type=Path, metavar="SPEC", help="Sloth prometheus/v1 YAML")
    ev.add_argument(
        "--data",
        type=Path,
        required=True,
        help="CSV with a header: timestamp, good or bad, total (and slo to pick rows per SLO)",
    )
    ev.add_argument("--window", default="30d", help="SLO window: 30d, 4w or calendar-month")
    ev.add_argument(
        "--at", default=None, help="instant (ISO 8601 or Unix seconds); default: last row"
    )
    ev.add_argument("--counters", action="store_true", help="columns are cumulative counters")
    ev.add_argument("--policy", choices=("sloth", "workbook"), default="sloth")
    ev.add_argument("--fail-on", choices=("page", "ticket"), default="ticket")
    ev.add_argument("--format", choices=("text", "json"), default="text")
    ev.set_defaults(handler=_evaluate)
    rules = sub.add_parser("rules", help="print the Prometheus rules Sloth generates for SPEC")
    rules.add_argument("spec", type=Path, metavar="SPEC")
    rules.add_argument("--window", default="30d", help="SLO window: 30d or 4w")
    rules.set_defaults(handler=_rules)


def parse_instant(text: str) -> float:
    """Unix seconds from ISO 8601 (with a zone) or a number; anything else is SLODataError."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SLODataError(f"instant {text!r} is neither ISO 8601 nor Unix seconds") from None
    if when.tzinfo is None:
        raise SLODataError(f"instant {text!r} has no time zone: give UTC (Z or +00:00)")
    return when.timestamp()


def _read_spec(path: Path, window: str) -> Any:
    from pytest_reliability.ops.slo_engine import load_sloth_spec, parse_window

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SlothSpecError(f"cannot read {path}: {exc}", line=None, field="spec") from None
    return load_sloth_spec(text, window=parse_window(window))


def _read_rows(path: Path) -> tuple[SLIKind, list[dict[str, str]]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            fields = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SLODataError(f"cannot read {path}: {exc}") from None
    kinds: list[SLIKind] = [k for k in ("good", "bad") if k in fields]
    if "timestamp" not in fields or "total" not in fields or len(kinds) != 1:
        raise SLODataError(
            f"{path}: the header needs timestamp, total and one of good or bad, "
            f"has {sorted(fields)}"
        )
    return kinds[0], rows


def _number(text: str | None, line: int, column: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise SLODataError(f"line {line}: {column} {text!r} is not a number") from None
    return int(value) if value.is_integer() else value


def status_lines(status: SLOStatus) -> list[str]:
    """The human summary of one SLO's status, a line each."""
    b = status.budget
    sli = "n/a (no traffic)" if status.window.sli is None else f"{status.window.sli:.6%}"
    lines = [
        f"SLO {status.slo.name}: objective {status.slo.objective}% over {status.slo.window}",
        f"  SLI {sli} ({status.window.bad} bad of {status.window.total} events)",
        f"  error budget: {b.consumed:.2%} consumed, {b.remaining:.2%} remaining"
        + (" (EXHAUSTED)" if b.exhausted else ""),
    ]
    if status.time_to_exhaustion is not None:
        lines.append(
            f"  time to exhaustion at the current burn: {status.time_to_exhaustion / 3600:.1f} h"
        )
    for alert in status.alerts:
        state = "FIRING" if alert.firing else "ok"
        lines.append(
            f"  {alert.severity} {alert.name}: {state} (burn {alert.long.burn_rate:.2f} / "
            f"{alert.short.burn_rate:.2f}, threshold {alert.threshold:g})"
        )
    return lines


def gate_failed(status: SLOStatus, fail_on: str) -> bool:
    """True when the budget is spent, a page fires, or a ticket fires with ``fail_on=ticket``."""
    return status.budget.exhausted or status.page or (fail_on == "ticket" and status.ticket)


def _evaluate(args: argparse.Namespace) -> int:
    from pytest_reliability.ops.slo_engine import DEFAULT_POLICY, SLOTH_POLICY, Series, evaluate

    spec = _read_spec(args.spec, args.window)
    kind, rows = _read_rows(args.data)
    policy = SLOTH_POLICY if args.policy == "sloth" else DEFAULT_POLICY
    statuses = []
    for item in spec.slos:
        name = item.slo.name
        mine = [
            (line, r) for line, r in enumerate(rows, start=2) if r.get("slo", name) in (name, "")
        ]
        triples = [
            (
                parse_instant(r["timestamp"]),
                _number(r[kind], line, kind),
                _number(r["total"], line, "total"),
            )
            for line, r in mine
        ]
        build = Series.from_counters if args.counters else Series.from_buckets
        series = build(triples, sli=kind)
        at = parse_instant(args.at) if args.at else series.last
        if at is None:
            raise SLODataError(f"{args.data}: no rows for SLO {name!r} and no --at given")
        slo = dataclasses.replace(item.slo, sli=kind)  # the data says what it counts
        statuses.append(evaluate(slo, series, at, policy=policy))
    failed = [s.slo.name for s in statuses if gate_failed(s, args.fail_on)]
    if args.format == "json":
        print(json.dumps({"failed": failed, "slos": [s.as_dict() for s in statuses]}, indent=1))
    else:
        for status in statuses:
            print("\n".join(status_lines(status)))
        print(f"gate: {'FAILED: ' + ', '.join(failed) if failed else 'passed'}")
    return 1 if failed else 0


def _rules(args: argparse.Namespace) -> int:
    from pytest_reliability.ops.slo_engine import render_sloth_rules

    sys.stdout.write(render_sloth_rules(_read_spec(args.spec, args.window)))
    return 0
