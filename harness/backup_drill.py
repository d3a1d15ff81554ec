"""The backup drill scenario: a throwaway database filled like production, backed up and drilled.

``python -m harness.backup_drill create-db`` prints the URL of a new database on the suite's
PostgreSQL (``harness.services``); ``populate URL`` fills it with audit events in two tenants,
idempotency records and engaged kill switches; ``drop-db URL`` drops it again; ``report`` folds
the CLI's JSON results into the gate's JSON result. The shared server only ever sees databases
this module created (named ``reliability_bk_<hex>``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from harness import services

_OWN_DB = re.compile(r"reliability_bk_[0-9a-f]{12}")


def _admin(url: str) -> object:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def create_db() -> str:
    """Create ``reliability_bk_<hex>`` on the suite's server and return its URL."""
    from sqlalchemy.engine import make_url

    base = make_url(services.postgres_url())
    name = f"reliability_bk_{uuid.uuid4().hex[:12]}"
    with _admin(base.render_as_string(hide_password=False)) as conn:  # type: ignore[attr-defined]
        conn.execute(f"CREATE DATABASE {name}")
    return base.set(database=name).render_as_string(hide_password=False)


def drop_db(url: str) -> None:
    """Drop a database :func:`create_db` made; any other name is refused."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database or ""
    if _OWN_DB.fullmatch(name) is None:
        raise SystemExit(f"refusing to drop {name!r}: not a database this scenario created")
    with _admin(url) as conn:  # type: ignore[attr-defined]
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def populate(url: str, *, events: int = 40) -> dict[str, int]:
    """Fill ``url`` with audit events, idempotency records and engaged kill switches."""
    from pytest_reliability.audit import AuditLog
    from pytest_reliability.db import create_schema, make_engine
    from pytest_reliability.idempotency import IdempotencyEngine
    from pytest_reliability.ops.kill_switch import KillSwitches
    from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession
    from pytest_reliability.tenancy import tenant_scope

    engine = make_engine(url)
    create_schema(engine)
    audit = AuditLog(engine)
    for tenant in ("acme", "globex"):
        with tenant_scope(tenant):
            for i in range(events):
                audit.append("invoice.create", actor="seed", target=f"invoice/{i}", outcome="ok")
    idem = IdempotencyEngine.from_url(url, audit=audit)
    try:
        with tenant_scope("acme"):
            for i in range(events // 2):
                idem.run(
                    operation="charge", key=f"k-{i}", payload={"n": i}, handler=lambda a: {"ok": 1}
                )
    finally:
        idem.close()
    session = OpsSession(AuthorizationEngine(), audit)
    admin = OpsContext("seed", roles=frozenset({"ops_admin"}))
    with KillSwitches.from_url(engine, session=session, env={}, start=False) as switches:
        switches.engage("BILLING", reason="backup drill scenario", actor=admin)
        switches.engage("WEBHOOKS", reason="backup drill scenario", actor=admin)
    engine.dispose()
    return {"audit_events": 2 * events, "idempotency_records": events // 2, "kill_switches": 2}


def write_report(out: Path, status: str, parts: list[Path]) -> None:
    """Write the gate's JSON result from the CLI's ``--json`` outputs (missing ones are null)."""
    document: dict[str, object] = {
        "gate": "backup",
        "status": status,
        "finished_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    for part in parts:
        text = part.read_text(encoding="utf-8").strip() if part.is_file() else ""
        document[part.stem] = json.loads(text) if text else None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    """``create-db``, ``populate URL``, ``drop-db URL`` or ``report OUT STATUS PART...``."""
    parser = argparse.ArgumentParser(prog="python -m harness.backup_drill")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create-db")
    sub.add_parser("populate").add_argument("url")
    sub.add_parser("drop-db").add_argument("url")
    report = sub.add_parser("report")
    report.add_argument("out", type=Path)
    report.add_argument("status", choices=["passed", "failed"])
    report.add_argument("parts", type=Path, nargs="*")
    args = parser.parse_args(argv)
    if args.command == "create-db":
        print(create_db())
    elif args.command == "populate":
        print(json.dumps(populate(args.url)))
    elif args.command == "drop-db":
        drop_db(args.url)
    else:
        write_report(args.out, args.status, args.parts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
