"""``pytest-reliability report``: validate, summarise, diff and merge reliability reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add the ``report`` command family to the parser's subcommands."""
    report = commands.add_parser("report", help="reliability reports")
    sub = report.add_subparsers(dest="report_command", required=True, metavar="COMMAND")

    validate = sub.add_parser(
        "validate", help="check a report against the schema; exit 0 valid, 1 invalid"
    )
    validate.add_argument("path", type=Path, metavar="PATH")
    validate.set_defaults(handler=_validate)

    summary = sub.add_parser("summary", help="print a human summary of a report")
    summary.add_argument("path", type=Path, metavar="PATH")
    summary.add_argument("--format", choices=("markdown", "text"), default="markdown")
    summary.set_defaults(handler=_summary)

    diff = sub.add_parser(
        "diff", help="newly failing, fixed, newly flaky and slower tests between two reports"
    )
    diff.add_argument("old", type=Path, metavar="OLD")
    diff.add_argument("new", type=Path, metavar="NEW")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument(
        "--slower-ratio", type=float, default=1.5, help="slowdown factor that counts (1.5)"
    )
    diff.add_argument(
        "--slower-min", type=float, default=0.1, help="seconds a slowdown must add (0.1)"
    )
    diff.add_argument("--check", action="store_true", help="exit 1 when anything regressed")
    diff.set_defaults(handler=_diff)

    merge = sub.add_parser("merge", help="merge the reports of sharded runs into one")
    merge.add_argument("paths", type=Path, nargs="+", metavar="REPORT")
    merge.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    merge.set_defaults(handler=_merge)

    from pytest_reliability.cli import _report_slo

    _report_slo.register(sub)


def _validate(args: argparse.Namespace) -> int:
    from pytest_reliability.report import read_report, violations

    document = read_report(args.path, validate=False)
    found = violations(document)
    if found:
        print(f"{args.path}: INVALID ({len(found)} errors)", file=sys.stderr)
        for violation in found:
            print(f"  {violation}", file=sys.stderr)
        return 1
    tests = len(document["tests"])
    print(
        f"{args.path}: valid (schema {document['schema_version']}, "
        f"{tests} tests, status {document['status']})"
    )
    return 0


def _summary(args: argparse.Namespace) -> int:
    from pytest_reliability.report import read_report, summary_markdown, summary_text

    document = read_report(args.path)
    render = summary_markdown if args.format == "markdown" else summary_text
    sys.stdout.write(render(document))
    return 0


def _diff(args: argparse.Namespace) -> int:
    from pytest_reliability.report import diff_reports, read_report

    result = diff_reports(
        read_report(args.old),
        read_report(args.new),
        slower_ratio=args.slower_ratio,
        slower_min_s=args.slower_min,
    )
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=1))
    else:
        old, new = result.status_change
        print(f"status: {old} -> {new}")
        sections = (
            ("newly failing", result.newly_failing),
            ("fixed", result.fixed),
            ("newly flaky", result.newly_flaky),
            ("gates newly failing", result.gates_newly_failing),
            ("added", result.added),
            ("removed", result.removed),
        )
        for title, names in sections:
            print(f"{title}: {len(names)}")
            for name in names:
                print(f"  {name}")
        print(f"slower: {len(result.slower)}")
        for slow in result.slower:
            print(f"  {slow.nodeid}: {slow.old_s:.3f}s -> {slow.new_s:.3f}s ({slow.ratio:.1f}x)")
    return 1 if args.check and result.regressed else 0


def _merge(args: argparse.Namespace) -> int:
    from pytest_reliability.report import merge_reports, read_report, write_report

    merged = merge_reports([read_report(path) for path in args.paths])
    write_report(args.output, merged)
    print(
        f"merged {len(args.paths)} reports into {args.output}: "
        f"{merged['summary']['total']} tests, status {merged['status']}"
    )
    return 0
