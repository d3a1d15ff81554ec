"""The ``pytest-reliability`` command line.

Each command family lives in its own private module that adds a subparser; exit codes: 0 success,
1 the check failed (the reason on one line), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_reliability._version import __version__
from pytest_reliability.cli import _audit, _backup, _report, _slo
from pytest_reliability.errors import ReliabilityError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command family registered."""
    parser = argparse.ArgumentParser(
        prog="pytest-reliability",
        description="Reliability reports, audit log verification and ops tooling.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _audit.register(commands)
    _backup.register(commands)
    _report.register(commands)
    _slo.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ReliabilityError as exc:
        print(f"pytest-reliability: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
