"""``pytest-reliability report slo``: a history of reliability reports read as an SLI.

Each report is one event batch at its run's start instant: good = tests that passed (or failed
as expected, ``xfailed``), total = tests that ran (everything but ``skipped``), per category and
over all tests (``all``). ``failed``, ``error``, ``xpassed`` and ``flaky`` are bad: a flaky test
is a reliability problem even when a rerun passed. Reports are points in time, not intervals, so
every window of the policy can be read whatever the spacing of the runs.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_reliability.errors import ReportError

GOOD = frozenset({"passed", "xfailed"})
NOT_RUN = frozenset({"skipped"})
ALL = "all"


def register(sub: Any) -> None:
    """Add ``report slo`` to the ``report`` command's subcommands."""
    slo = sub.add_parser(
        "slo", help="evaluate a test-suite reliability SLO over a history of reports"
    )
    slo.add_argument("paths", type=Path, nargs="+", metavar="REPORT")
    slo.add_argument("--objective", type=float, default=99.0, help="percent (99.0)")
    slo.add_argument("--window", default="30d", help="SLO window: 30d, 7d or calendar-month")
    slo.add_argument(
        "--category", action="append", default=None, help="only these categories (repeatable)"
    )
    slo.add_argument("--at", default=None, help="instant (ISO 8601); default: the latest run")
    slo.add_argument("--fail-on", choices=("page", "ticket"), default="page")
    slo.add_argument("--format", choices=("text", "json"), default="text")
    slo.set_defaults(handler=_report_slo)


def report_buckets(documents: list[dict[str, Any]]) -> dict[str, list[tuple[float, int, int]]]:
    """Return ``{category: [(run start, good, total), ...]}`` with an ``all`` entry."""
    out: dict[str, list[tuple[float, int, int]]] = {}
    for document in documents:
        try:
            started = datetime.fromisoformat(document["run"]["started_at"]).timestamp()
        except (KeyError, TypeError, ValueError):
            raise ReportError(
                f"report {document.get('run', {}).get('id')!r}: no started_at"
            ) from None
        counts: dict[str, list[int]] = {}
        for test in document["tests"]:
            if test["outcome"] in NOT_RUN:
                continue
            good = int(test["outcome"] in GOOD)
            for category in (ALL, *test["categories"]):
                pair = counts.setdefault(category, [0, 0])
                pair[0] += good
                pair[1] += 1
        for category, (good, total) in counts.items():
            out.setdefault(category, []).append((started, good, total))
    return out


def _report_slo(args: argparse.Namespace) -> int:
    from pytest_reliability.cli._slo import gate_failed, parse_instant, status_lines
    from pytest_reliability.ops.slo_engine import SLO, Series, evaluate, parse_window
    from pytest_reliability.report import read_report

    buckets = report_buckets([read_report(path) for path in args.paths])
    wanted = args.category or sorted(buckets)
    statuses = []
    for category in wanted:
        if category not in buckets:
            raise ReportError(f"no test in these reports has the category {category!r}")
        series = Series.from_buckets(buckets[category], step=0.0)
        at = parse_instant(args.at) if args.at else series.last
        assert at is not None
        slo = SLO(f"tests:{category}", args.objective, parse_window(args.window))
        statuses.append(evaluate(slo, series, at))
    failed = [s.slo.name for s in statuses if gate_failed(s, args.fail_on)]
    if args.format == "json":
        print(json.dumps({"failed": failed, "slos": [s.as_dict() for s in statuses]}, indent=1))
    else:
        print(f"{len(args.paths)} reports")
        for status in statuses:
            print("\n".join(status_lines(status)))
        print(f"gate: {'FAILED: ' + ', '.join(failed) if failed else 'passed'}")
    return 1 if failed else 0
