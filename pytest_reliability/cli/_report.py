"""``pytest-reliability report``: validate, summarise, diff and merge reliability reports.

Every command reads regular files only, within the limits of
:mod:`pytest_reliability.report._read` (``--max-bytes`` or ``RELIABILITY_REPORT_MAX_BYTES``),
and answers a bad file with exit 1 and one line naming the file and the problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from pytest_reliability.errors import ReportError


def _limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=None,
        metavar="N",
        help="largest report read, in bytes (default: $RELIABILITY_REPORT_MAX_BYTES, else 256 MiB)",
    )


def register(commands: Any) -> None:
    """Add the ``report`` command family to the parser's subcommands."""
    report = commands.add_parser("report", help="reliability reports")
    sub = report.add_subparsers(dest="report_command", required=True, metavar="COMMAND")

    validate = sub.add_parser(
        "validate", help="check reports against the schema; exit 0 all valid, 1 otherwise"
    )
    validate.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    _limits(validate)
    validate.set_defaults(handler=_validate)

    summary = sub.add_parser("summary", help="print a human summary of a report")
    summary.add_argument("path", type=Path, metavar="PATH")
    summary.add_argument("--format", choices=("markdown", "text"), default="markdown")
    summary.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="REGEX",
        help="also mask matches of REGEX (secret-looking environment variables always are)",
    )
    _limits(summary)
    summary.set_defaults(handler=_summary)

    gates = sub.add_parser(
        "gates", help="print the status, the interruption and each gate that did not pass"
    )
    gates.add_argument("path", type=Path, metavar="PATH")
    _limits(gates)
    gates.set_defaults(handler=_gates)

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
    _limits(diff)
    diff.set_defaults(handler=_diff)

    merge = sub.add_parser("merge", help="merge the reports of sharded runs into one")
    merge.add_argument("paths", type=Path, nargs="+", metavar="REPORT")
    merge.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="a new path or a regular file (replaced atomically); '-' for standard output",
    )
    _limits(merge)
    merge.set_defaults(handler=_merge)

    from pytest_reliability.cli import _report_slo

    _report_slo.register(sub)

    from pytest_reliability.cli import _report_views

    _report_views.register(sub)


def _read(path: Path, args: argparse.Namespace, *, validate: bool = True) -> dict[str, Any]:
    from pytest_reliability.report._read import read_report

    if args.max_bytes is not None and args.max_bytes < 1:
        raise ReportError(f"--max-bytes {args.max_bytes} is not a positive number of bytes")
    return read_report(path, validate=validate, max_bytes=args.max_bytes)


def _validate(args: argparse.Namespace) -> int:
    from pytest_reliability.report import violations

    failed = 0
    for path in args.paths:
        try:
            document = _read(path, args, validate=False)
        except ReportError as exc:
            print(f"{exc}", file=sys.stderr)
            failed += 1
            continue
        found = violations(document)
        if found:
            print(f"{path}: INVALID ({len(found)} errors)", file=sys.stderr)
            for violation in found:
                print(f"  {violation}", file=sys.stderr)
            failed += 1
            continue
        print(
            f"{path}: valid (schema {document['schema_version']}, "
            f"{len(document['tests'])} tests, status {document['status']})"
        )
    return 1 if failed else 0


def _summary(args: argparse.Namespace) -> int:
    from pytest_reliability.report import summary_markdown, summary_text
    from pytest_reliability.report._mask import Masker, compile_patterns

    try:
        patterns = compile_patterns(args.redact, "--redact")
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    document = _read(args.path, args)
    masker = Masker.from_environ(os.environ, patterns)
    if masker:
        document = masker.document(document)
    render = summary_markdown if args.format == "markdown" else summary_text
    sys.stdout.write(render(document))
    return 0


def _gates(args: argparse.Namespace) -> int:
    document = _read(args.path, args)
    print(f"status: {document['status']}")
    interruption = document["run"]["interruption"]
    if interruption:
        print(f"interrupted ({interruption['kind']}): {interruption['reason']}")
    for gate in document["gates"]:
        if gate["status"] != "passed":
            print(f"gate {gate['name']} {gate['status']}: " + "; ".join(gate["reasons"][:10]))
    return 0


def _diff(args: argparse.Namespace) -> int:
    from pytest_reliability.report import diff_reports

    result = diff_reports(
        _read(args.old, args),
        _read(args.new, args),
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
    from pytest_reliability.report import merge_reports
    from pytest_reliability.report._io import encode_report, write_bytes
    from pytest_reliability.report._schema import validate_report

    if not args.output:
        raise ReportError("-o: the output path is empty (give a path, or '-' for stdout)")
    merged = merge_reports([_read(path, args) for path in args.paths])
    payload = encode_report(merged, proven=validate_report(merged))
    if args.output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return 0
    write_bytes(Path(args.output), payload, devices=False)
    print(
        f"merged {len(args.paths)} reports into {args.output}: "
        f"{merged['summary']['total']} tests, status {merged['status']}"
    )
    return 0
