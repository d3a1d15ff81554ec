"""``pytest-reliability report html|trend|metrics|annotations``: views of reports for people and CI.

Each reads reports as the other ``report`` commands do (regular files, bounded, schema 1.x,
validated) and masks them with the environment it runs in (and ``--redact``) before showing
anything, as ``report summary`` does. Output goes to standard output or, with ``-o``, to a file
written atomically (a new path or a regular file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_reliability.errors import ReportError


def _common(parser: argparse.ArgumentParser, *, output_required: bool = False) -> None:
    parser.add_argument(
        "-o",
        "--output",
        required=output_required,
        default=None,
        metavar="OUT",
        help="a new path or a regular file (replaced atomically)"
        + ("" if output_required else "; default standard output"),
    )
    parser.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="REGEX",
        help="also mask matches of REGEX (secret-looking environment variables always are)",
    )
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=None,
        metavar="N",
        help="largest report read, in bytes (default: $RELIABILITY_REPORT_MAX_BYTES, else 256 MiB)",
    )


def register(sub: Any) -> None:
    """Add ``html``, ``trend``, ``metrics`` and ``annotations`` to the ``report`` family."""
    page = sub.add_parser(
        "html", help="write a self-contained HTML report (a trend too, given several reports)"
    )
    page.add_argument("paths", type=Path, nargs="+", metavar="REPORT")
    page.add_argument("--title", default=None, help="the page title (default: status, project)")
    _common(page, output_required=True)
    page.set_defaults(handler=_html)

    trend = sub.add_parser(
        "trend", help="pass rate, duration, new failures and flakiness across several runs"
    )
    trend.add_argument("paths", type=Path, nargs="+", metavar="REPORT")
    trend.add_argument("--format", choices=("text", "json", "html"), default="text")
    trend.add_argument(
        "--allow-mixed",
        action="store_true",
        help="accept reports of different projects (the output says so)",
    )
    _common(trend)
    trend.set_defaults(handler=_trend)

    metrics = sub.add_parser(
        "metrics", help="the report's figures in the Prometheus text exposition format"
    )
    metrics.add_argument("path", type=Path, metavar="REPORT")
    _common(metrics)
    metrics.set_defaults(handler=_metrics)

    notes = sub.add_parser(
        "annotations",
        help="failed tests and gates as GitHub Actions commands or a GitLab code-quality report",
    )
    notes.add_argument("path", type=Path, metavar="REPORT")
    notes.add_argument("--format", choices=("github", "gitlab"), required=True)
    notes.add_argument(
        "--gate-path",
        default="pyproject.toml",
        metavar="PATH",
        help="the file GitLab shows a failed gate at (default pyproject.toml)",
    )
    _common(notes)
    notes.set_defaults(handler=_annotations)


def _read_all(args: argparse.Namespace, paths: list[Path]) -> list[dict[str, Any]]:
    from pytest_reliability.report._mask import Masker, compile_patterns
    from pytest_reliability.report._read import read_report

    if args.max_bytes is not None and args.max_bytes < 1:
        raise ReportError(f"--max-bytes {args.max_bytes} is not a positive number of bytes")
    try:
        patterns = compile_patterns(args.redact, "--redact")
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    masker = Masker.from_environ(os.environ, patterns)
    reports = []
    for path in paths:
        document = read_report(path, max_bytes=args.max_bytes)
        reports.append(masker.document(document) if masker else document)
    return reports


def _emit(args: argparse.Namespace, text: str, what: str) -> None:
    from pytest_reliability.report._io import write_bytes

    if args.output is None or args.output == "-":
        sys.stdout.write(text)
        return
    if not args.output:
        raise ReportError("-o: the output path is empty")
    write_bytes(Path(args.output), text.encode("utf-8"), devices=False)
    print(f"wrote {what} to {args.output}")


def _not_an_input(args: argparse.Namespace, paths: list[Path]) -> None:
    """Refuse an output path that is one of the reports read (it would be overwritten)."""
    if args.output in (None, "", "-"):
        return
    out = Path(args.output).resolve()
    for path in paths:
        if path.resolve() == out:
            raise ReportError(f"-o {args.output} is one of the reports read: it would be replaced")


def _html(args: argparse.Namespace) -> int:
    from pytest_reliability.report._html import render_html

    _not_an_input(args, args.paths)
    reports = _read_all(args, args.paths)
    page = render_html(reports, sources=[str(p) for p in args.paths], title=args.title)
    _emit(args, page, f"the HTML report of {len(reports)} report(s)")
    return 0


def _check_projects(trend: Any, allow: bool) -> None:
    if trend.mixed and not allow:
        raise ReportError(
            "the reports come from different projects ("
            + ", ".join(trend.projects)
            + "); pass --allow-mixed to see their trend anyway"
        )


def _trend(args: argparse.Namespace) -> int:
    from pytest_reliability.report._trend import build_trend, trend_text

    _not_an_input(args, args.paths)
    reports = _read_all(args, args.paths)
    trend = build_trend(reports)
    _check_projects(trend, args.allow_mixed)
    if args.format == "json":
        text = json.dumps(trend.as_dict(), indent=1, ensure_ascii=False) + "\n"
    elif args.format == "html":
        from pytest_reliability.report._html import render_html

        text = render_html(reports, sources=[str(p) for p in args.paths])
    else:
        text = trend_text(trend)
    _emit(args, text, f"the trend of {len(reports)} runs")
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from pytest_reliability.report._metrics import metrics_text

    _not_an_input(args, [args.path])
    report: Mapping[str, Any] = _read_all(args, [args.path])[0]
    _emit(args, metrics_text(report), "the metrics")
    return 0


def _annotations(args: argparse.Namespace) -> int:
    from pytest_reliability.report._annotations import annotations_text

    _not_an_input(args, [args.path])
    report = _read_all(args, [args.path])[0]
    _emit(args, annotations_text(report, args.format, args.gate_path), "the annotations")
    return 0
