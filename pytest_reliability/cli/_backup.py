"""``pytest-reliability backup create|validate|drill|list|prune``.

Exit codes: 0 ok, 1 the check failed (one-line reason on stderr), 2 usage error (including a
bad URL or setting). The command line acts for whoever holds the database credentials it is
given, so it asks RBAC as an ``ops_admin`` of the platform; every decision is still audited.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from pytest_reliability.errors import ConfigurationError, ReliabilityError

_DURATION_RE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` (one number and one unit)."""
    found = _DURATION_RE.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30d, 12h, 90m")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def register(commands: Any) -> None:
    """Add the ``backup`` command family to the parser's subcommands."""
    backup = commands.add_parser("backup", help="backups, validation and restore drills")
    sub = backup.add_subparsers(dest="backup_command", required=True, metavar="COMMAND")

    def engine_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database-url",
            default=None,
            help="the database backed up (default: $RELIABILITY_DATABASE_URL, "
            "else sqlite:///reliability.db)",
        )
        p.add_argument("--directory", required=True, type=Path, help="the backup directory")
        p.add_argument(
            "--audit-url", default=None, help="where audit events go (default: the database itself)"
        )
        p.add_argument(
            "--actor",
            default=os.environ.get("USER") or "cli",
            help="who acts, for RBAC and audit (default: $USER)",
        )
        p.add_argument(
            "--pg-bin-dir",
            type=Path,
            default=None,
            help="directory of pg_dump/pg_restore/initdb (default: the server's own)",
        )

    create = sub.add_parser("create", help="take a backup now")
    engine_options(create)
    create.add_argument("--reason", required=True, help="why (recorded in manifest and audit)")
    create.set_defaults(handler=_guard(_create))

    validate = sub.add_parser("validate", help="check a backup without touching any database")
    validate.add_argument("path", type=Path)
    validate.add_argument("--pg-bin-dir", type=Path, default=None)
    validate.add_argument("--json", action="store_true", help="print the result as JSON")
    validate.set_defaults(handler=_guard(_validate))

    drill = sub.add_parser("drill", help="restore into a throwaway server and compare")
    drill.add_argument("path", type=Path)
    drill.add_argument(
        "--target",
        default=None,
        help="restore target (refused unless a throwaway this drill started)",
    )
    drill.add_argument("--pg-bin-dir", type=Path, default=None)
    drill.add_argument("--json", action="store_true", help="print the result as JSON")
    drill.set_defaults(handler=_guard(_drill))

    listing = sub.add_parser("list", help="list the backups in a directory")
    engine_options(listing)
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=_guard(_list))

    prune = sub.add_parser("prune", help="delete backups past the retention policy")
    engine_options(prune)
    prune.add_argument("--keep-last", type=_positive, default=None, help="keep the newest N")
    prune.add_argument(
        "--keep-within",
        type=parse_duration,
        default=None,
        help="keep those younger than this (30d, 12h, ...)",
    )
    prune.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    prune.set_defaults(handler=_guard(_prune))


def _guard(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ConfigurationError as exc:
            print(f"pytest-reliability backup: usage error: {exc}", file=sys.stderr)
            return 2
        except ReliabilityError as exc:
            name = type(exc).__name__
            print(f"pytest-reliability backup: {name}: {exc}", file=sys.stderr)
            return 1

    return run


def _engine(args: argparse.Namespace) -> Any:
    from pytest_reliability.audit import AuditLog
    from pytest_reliability.db import create_schema, database_url_from_env, make_engine
    from pytest_reliability.ops.backup_engine import BackupEngine, source_from_url
    from pytest_reliability.ops.rbac import OpsContext

    url = args.database_url or database_url_from_env()
    options = {"pg_bin_dir": args.pg_bin_dir} if args.pg_bin_dir is not None else {}
    source = source_from_url(url, **options)
    audit_engine = make_engine(args.audit_url or url)
    create_schema(audit_engine)
    engine = BackupEngine(source, args.directory, audit=AuditLog(audit_engine))
    return engine, OpsContext(args.actor, roles=frozenset({"ops_admin"}))


def _create(args: argparse.Namespace) -> int:
    engine, ctx = _engine(args)
    backup = engine.create(actor=ctx, reason=args.reason)
    print(f"backup created: {backup.path} ({backup.size_bytes} bytes, sha256 {backup.sha256})")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pytest_reliability.ops.restore_validation import validate

    result = validate(args.path, pg_bin_dir=args.pg_bin_dir)
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(result.path),
                    "ok": result.ok,
                    "reason": None if result.reason is None else str(result.reason),
                    "detail": result.detail,
                    "size_bytes": result.size_bytes,
                    "duration_s": round(result.duration_s, 6),
                }
            )
        )
    else:
        print(str(result), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _drill(args: argparse.Namespace) -> int:
    from pytest_reliability.ops.restore_drill import run_drill

    result = run_drill(args.path, target=args.target, pg_bin_dir=args.pg_bin_dir)
    if args.json:
        print(json.dumps(result.to_json()))
    elif result.ok:
        print(
            f"drill passed: {result.backup.name}: {result.tables_checked} tables, "
            f"{result.rows_checked} rows, {result.audit_events_verified} audit events "
            f"verified, RTO {result.rto_s:.2f}s"
        )
    else:
        print(f"drill FAILED: {result.backup.name}: {result.reason}", file=sys.stderr)
    return 0 if result.ok else 1


def _list(args: argparse.Namespace) -> int:
    engine, ctx = _engine(args)
    backups = engine.list(actor=ctx)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "path": str(b.path),
                        "created_at": b.manifest["created_at"],
                        "size_bytes": b.size_bytes,
                        "sha256": b.sha256,
                    }
                    for b in backups
                ]
            )
        )
    for b in [] if args.json else backups:
        print(f"{b.manifest['created_at']}  {b.size_bytes:>12}  {b.path.name}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from pytest_reliability.ops.backup_engine import RetentionPolicy

    policy = RetentionPolicy(keep_last=args.keep_last, keep_within=args.keep_within)
    engine, ctx = _engine(args)
    result = engine.prune(policy, actor=ctx, reason=args.reason)
    if result.validated is None:
        print(f"prune refused: {result.note}", file=sys.stderr)
        return 1
    print(
        f"pruned {len(result.deleted)} backup(s), kept {len(result.kept)}; "
        f"newest valid: {result.validated.name}"
    )
    return 0
