"""``pytest-reliability audit verify``: check the audit chain of a database."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pytest_reliability.errors import ConfigurationError, StoreUnavailable


def register(commands: Any) -> None:
    """Add the ``audit`` command family to the parser's subcommands."""
    audit = commands.add_parser("audit", help="the immutable audit log")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = sub.add_parser(
        "verify",
        help="verify the hash chain; exit 0 when intact, 1 with the reason when not",
    )
    verify.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL of the database (default: $RELIABILITY_DATABASE_URL, "
        "else sqlite:///reliability.db)",
    )
    verify.add_argument("--tenant", default=None, help="verify one tenant only")
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from pytest_reliability.audit import AuditLog
    from pytest_reliability.db import make_engine

    engine = make_engine(args.database_url)
    try:
        if "audit_events" not in sa.inspect(engine).get_table_names():
            print("audit log not found: the database has no audit_events table", file=sys.stderr)
            return 1
        result = AuditLog(engine).verify(args.tenant)
    except (StoreUnavailable, ConfigurationError):
        raise
    except sa.exc.DBAPIError as exc:
        print(f"audit verify failed: cannot read the database: {exc.orig}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if result.break_ is not None:
        print(f"audit log BROKEN: {result.break_}")
        return 1
    print(f"audit log intact: {result.events_checked} events in {result.tenants_checked} tenants")
    return 0
