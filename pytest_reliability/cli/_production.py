"""``pytest-reliability production``: the steps of ``ci/production-validation.sh``.

``audit-smoke`` writes a few audit events through the real API into a scratch database (the
script then verifies them with ``audit verify``); ``report`` turns the gate results the script
recorded into ``production-validation-report.json``, validated against its schema.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_reliability.errors import ReportError

PRODUCTION_SCHEMA = "production-validation-report.schema.json"
"""File name of the production validation report schema."""
_STATUSES = frozenset({"passed", "failed", "skipped"})


def register(commands: Any) -> None:
    """Add the ``production`` command family to the parser's subcommands."""
    production = commands.add_parser("production", help="steps of the production gate")
    sub = production.add_subparsers(dest="production_command", required=True, metavar="COMMAND")

    smoke = sub.add_parser("audit-smoke", help="append sample audit events to a scratch database")
    smoke.add_argument("--database-url", required=True, metavar="URL")
    smoke.add_argument("--events", type=int, default=3, metavar="N")
    smoke.set_defaults(handler=_audit_smoke)

    report = sub.add_parser("report", help="write the production validation report")
    report.add_argument(
        "--results",
        type=Path,
        required=True,
        metavar="TSV",
        help="one gate a line: name, status, seconds, reason (tab-separated)",
    )
    report.add_argument("--started", required=True, metavar="RFC3339")
    report.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    report.set_defaults(handler=_report)


def _audit_smoke(args: argparse.Namespace) -> int:
    from pytest_reliability.audit import AuditLog
    from pytest_reliability.db import create_schema, make_engine
    from pytest_reliability.tenancy import tenant_scope

    engine = make_engine(args.database_url)
    try:
        create_schema(engine)
        log = AuditLog(engine)
        with tenant_scope("production-gate"):
            for n in range(args.events):
                log.append("gate.check", actor="ci", target=f"check-{n}", outcome="ok")
    finally:
        engine.dispose()
    print(f"audit-smoke: {args.events} events appended")
    return 0


def parse_results(text: str, where: str) -> list[dict[str, Any]]:
    """Parse the script's gate results (``name<TAB>status<TAB>seconds<TAB>reason`` lines)."""
    gates = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split("\t", 3)
        if len(parts) != 4 or parts[1] not in _STATUSES or not parts[2].isdigit():
            raise ReportError(f"{where} line {number}: not 'name, status, seconds, reason'")
        name, status, seconds, reason = parts
        gates.append(
            {"name": name, "status": status, "duration_s": float(seconds), "reason": reason or None}
        )
    return gates


def _report(args: argparse.Namespace) -> int:
    from pytest_reliability.report import write_report

    try:
        text = args.results.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read {args.results}: {exc}") from None
    gates = parse_results(text, str(args.results))
    failed = next((g["name"] for g in gates if g["status"] == "failed"), None)
    finished = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {
        "schema_version": "1.0",
        "status": "failed" if failed else "passed",
        "started_at": args.started,
        "finished_at": finished,
        "failed_gate": failed,
        "gates": gates,
    }
    write_report(args.output, document, schema=PRODUCTION_SCHEMA)
    print(f"production report: {args.output} (status {document['status']})")
    return 0
