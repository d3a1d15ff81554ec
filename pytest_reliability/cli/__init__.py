"""The ``pytest-reliability`` command line.

Each command family lives in its own private module that adds a subparser; exit codes: 0 success,
1 the check failed (the reason on one line), 2 usage error.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence

from pytest_reliability._version import __version__
from pytest_reliability.cli import _audit, _backup, _production, _report, _slo
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
    _production.register(commands)
    _slo.register(commands)
    return parser


def _tolerant_streams() -> None:
    # Text from a report may hold lone surrogates or characters the terminal cannot show:
    # print them escaped rather than fail half-way through the output.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    A reader that goes away (``| head``) ends the command quietly with exit 1, as Python's
    documentation recommends for a broken pipe.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _tolerant_streams()
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except ReliabilityError as exc:
        print(f"pytest-reliability: error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Later flushes at exit would raise again: point stdout at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return code


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
