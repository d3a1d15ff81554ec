"""``pytest-reliability audit``: verify the chain, sign checkpoints, make a signing key.

``verify`` examines evidence, so it never changes it: SQLite is opened read-only through a
``mode=ro`` URI with no pragma that writes (a WAL file with no writer attached is read as
immutable, so not even ``-wal``/``-shm`` files appear), and PostgreSQL sessions are read-only.
Exit codes: 0 intact, 1 broken (the reason on one line), 2 nothing could be checked (no such
file, unknown tenant, a checkpoint that is malformed or not signed by the given key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_reliability.errors import AuditCheckpointError, ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

_CANNOT_CHECK = 2


class _CannotCheck(Exception):
    """Nothing could be checked; the message says why (exit 2)."""


def register(commands: Any) -> None:
    """Add the ``audit`` command family to the parser's subcommands."""
    audit = commands.add_parser("audit", help="the immutable audit log")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    url_help = (
        "SQLAlchemy URL of the database (default: $RELIABILITY_DATABASE_URL, "
        "else sqlite:///reliability.db)"
    )
    verify = sub.add_parser(
        "verify",
        help="verify the hash chain (read-only); exit 0 intact, 1 broken, 2 nothing to check",
    )
    verify.add_argument("--database-url", default=None, help=url_help)
    verify.add_argument("--tenant", default=None, help="verify one tenant only")
    verify.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="signed checkpoints to hold the chain to ('-' reads stdin)",
    )
    verify.add_argument(
        "--public-key",
        default=None,
        metavar="PEM",
        help="Ed25519 public key of the checkpoints (default: $RELIABILITY_AUDIT_VERIFY_KEY)",
    )
    verify.set_defaults(handler=_verify)
    checkpoint = sub.add_parser("checkpoint", help="sign the current heads and write them out")
    checkpoint.add_argument("--database-url", default=None, help=url_help)
    checkpoint.add_argument("--tenant", default=None, help="sign one tenant's head only")
    checkpoint.add_argument(
        "--key",
        default=None,
        metavar="PEM",
        help="Ed25519 private key (default: $RELIABILITY_AUDIT_SIGNING_KEY)",
    )
    checkpoint.add_argument(
        "--output", default="-", metavar="FILE", help="append to FILE (default '-': stdout)"
    )
    checkpoint.set_defaults(handler=_checkpoint)
    keygen = sub.add_parser("keygen", help="write a new Ed25519 key pair for checkpoints")
    keygen.add_argument("--private-key", required=True, metavar="PEM", help="created, mode 0600")
    keygen.add_argument("--public-key", required=True, metavar="PEM")
    keygen.set_defaults(handler=_keygen)


def _scope(tenant: str | None) -> str | None:
    from pytest_reliability.tenancy import PLATFORM_SCOPE

    # The platform chain is named on the command line by its stored id.
    return PLATFORM_SCOPE if tenant == str(PLATFORM_SCOPE) else tenant


def read_only_engine(url: str | None) -> Engine:
    """An engine that reads the database at ``url`` without writing anything to it.

    Raises :class:`_CannotCheck` for a SQLite file that does not exist or an in-memory URL.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from pytest_reliability.db import database_url_from_env, is_memory_sqlite, normalize_url

    parsed = normalize_url(url if url is not None else database_url_from_env())
    if parsed.get_backend_name() != "sqlite":
        options = f"{parsed.query.get('options', '')} -c default_transaction_read_only=on"
        return sa.create_engine(
            parsed.update_query_dict({"options": options.strip()}), poolclass=NullPool
        )
    if is_memory_sqlite(parsed):
        raise _CannotCheck("an in-memory SQLite database has nothing to verify")
    path = Path(str(parsed.database)).absolute()
    if not path.is_file():
        raise _CannotCheck(f"no such database file: {path}")
    uri = f"{path.as_uri()}?mode=ro"
    with path.open("rb") as file:
        wal_header = file.read(20)[18:20] == b"\x02\x02"  # format versions 2: WAL
    if wal_header and not Path(f"{path}-wal").exists():
        # No writer is attached (it would hold a -wal file). Reading a WAL database read-only
        # would still create -wal and -shm files beside it, and cannot in a read-only
        # directory; immutable reads the file alone.
        uri += "&immutable=1"
    return sa.create_engine(f"sqlite+pysqlite:///{uri}&uri=true", poolclass=NullPool)


def _verify(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from pytest_reliability.audit import AuditLog
    from pytest_reliability.audit._checkpoint import load_verify_key

    try:
        key = None
        if args.checkpoint is not None:
            key = load_verify_key(args.public_key)
        engine = read_only_engine(args.database_url)
    except _CannotCheck as exc:
        print(f"audit verify: {exc}", file=sys.stderr)
        return _CANNOT_CHECK
    tenant = _scope(args.tenant)
    try:
        if "audit_events" not in sa.inspect(engine).get_table_names():
            print("audit log not found: the database has no audit_events table", file=sys.stderr)
            return 1
        source: Any = args.checkpoint
        if source == "-":
            source = sys.stdin
        result = AuditLog(engine).verify(tenant, checkpoint=source, public_key=key)
    except AuditCheckpointError as exc:
        print(f"audit verify: cannot use the checkpoints: {exc}", file=sys.stderr)
        return _CANNOT_CHECK
    except sa.exc.DBAPIError as exc:
        print(f"audit verify failed: cannot read the database: {exc.orig}", file=sys.stderr)
        return _CANNOT_CHECK
    finally:
        engine.dispose()
    if result.break_ is not None:
        print(f"audit log BROKEN: {result.break_}")
        return 1
    if tenant is not None and result.events_checked == 0:
        print(f"audit verify: tenant {tenant!r} has no audit log here", file=sys.stderr)
        return _CANNOT_CHECK
    anchored = f", held to {result.checkpoints_checked} signed checkpoints" if key else ""
    print(
        f"audit log intact: {result.events_checked} events in {result.tenants_checked} tenants"
        + anchored
    )
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    from pytest_reliability.audit import AuditLog
    from pytest_reliability.audit._checkpoint import load_signing_key

    key = load_signing_key(args.key)
    try:
        engine = read_only_engine(args.database_url)
    except _CannotCheck as exc:
        print(f"audit checkpoint: {exc}", file=sys.stderr)
        return _CANNOT_CHECK
    try:
        destination: Any = sys.stdout if args.output == "-" else args.output
        signed = AuditLog(engine).checkpoint(destination, key=key, tenant=_scope(args.tenant))
    finally:
        engine.dispose()
    if args.output != "-":
        print(f"checkpoint of {signed.count} heads appended to {args.output}", file=sys.stderr)
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from pytest_reliability.audit._checkpoint import generate_key_pair

    try:
        kid = generate_key_pair(args.private_key, args.public_key)
    except ConfigurationError as exc:
        print(f"audit keygen: {exc}", file=sys.stderr)
        return _CANNOT_CHECK
    print(
        f"key {kid}: private {args.private_key} (keep it off the database host), "
        f"public {args.public_key}"
    )
    return 0
