"""Verifying a stored audit log: every chain in one read snapshot, then the signed checkpoints.

Memory stays flat whatever the length of a chain: rows are streamed (a cursor on SQLite,
chunked rows or ``COPY ... TO STDOUT`` on PostgreSQL), the pass keeps only the previous hash,
and telling what kind a break is takes a few point reads (:class:`_StoredLookup`), never the
whole chain.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO, cast

from sqlalchemy.engine import Connection

from pytest_reliability.audit._chain import ChainBreak, ChainRow, VerifyResult, verify_tenant
from pytest_reliability.audit._checkpoint import (
    Checkpoint,
    VerifyKey,
    load_verify_key,
    read_checkpoints,
)
from pytest_reliability.audit._dialect import AuditDialect

CheckpointSource = Checkpoint | Iterable[Checkpoint] | str | os.PathLike[str] | TextIO


@dataclass(frozen=True, slots=True)
class _StoredLookup:
    """Point reads into one tenant's stored chain (see :class:`ChainLookup`)."""

    dialect: AuditDialect
    dbapi: Any
    tenant: str

    def at_seq(self, seq: int) -> list[ChainRow]:
        rows = self.dialect.query(self.dbapi, self.dialect.at_seq_sql, (self.tenant, seq))
        return [ChainRow(*r) for r in rows]

    def seq_of_hash(self, hash_: str) -> int | None:
        rows = self.dialect.query(self.dbapi, self.dialect.hash_sql, (self.tenant, hash_))
        return int(rows[0][0]) if rows else None

    def seq_of_prev(self, hash_: str) -> int | None:
        rows = self.dialect.query(self.dbapi, self.dialect.prev_sql, (self.tenant, hash_))
        return int(rows[0][0]) if rows else None


def load_checkpoints(source: CheckpointSource, key: VerifyKey | None) -> list[Checkpoint]:
    """Checkpoints from a file, a stream or objects, every signature checked against ``key``.

    ``key`` defaults to the PEM file named by ``$RELIABILITY_AUDIT_VERIFY_KEY``; without one
    this raises :class:`~pytest_reliability.errors.ConfigurationError` (an unchecked checkpoint
    proves nothing).
    """
    verify_key = key if key is not None else load_verify_key()
    if isinstance(source, Checkpoint):
        found = [source]
    elif isinstance(source, str | os.PathLike) or hasattr(source, "read"):
        return read_checkpoints(cast("str | os.PathLike[str] | TextIO", source), verify_key)
    else:
        found = list(source)
    for checkpoint in found:
        checkpoint.check_signature(verify_key)
    return found


def _signed_heads(
    checkpoints: Sequence[Checkpoint], tenant: str | None
) -> dict[str, dict[int, tuple[str, Checkpoint]]]:
    """Per tenant: every signed (sequence -> hash, checkpoint), and the empty tenants implied."""
    signed: dict[str, dict[int, tuple[str, Checkpoint]]] = {}
    for checkpoint in checkpoints:
        for head in checkpoint.heads:
            if tenant is None or head.tenant == tenant:
                signed.setdefault(head.tenant, {})[head.seq] = (head.hash, checkpoint)
    return signed


def _against_checkpoints(
    dialect: AuditDialect,
    dbapi: Any,
    tenant: str,
    found: int,
    signed: dict[int, tuple[str, Checkpoint]],
) -> ChainBreak | None:
    """Compare an intact chain of ``found`` events with what was signed for it."""
    for seq in sorted(signed, reverse=True):
        hash_, checkpoint = signed[seq]
        when = checkpoint.payload()["time"]
        if seq > found:
            what = (
                "the tenant's events and head are gone"
                if found == 0
                else f"the chain ends at sequence {found}"
            )
            return ChainBreak(
                tenant,
                found + 1,
                "deleted",
                f"the checkpoint signed at {when} records {seq} events; {what}",
            )
        rows = dialect.query(dbapi, dialect.hash_at_sql, (tenant, seq))
        if [r[0] for r in rows] != [hash_]:
            return ChainBreak(
                tenant,
                seq,
                "changed",
                f"event {seq} differs from the checkpoint signed at {when}: the chain was "
                "rewritten and its hashes recomputed",
            )
    return None


def verify_database(
    dialect: AuditDialect,
    conn: Connection,
    tenant: str | None,
    checkpoints: Sequence[Checkpoint] = (),
) -> VerifyResult:
    """Verify every chain (or ``tenant``'s) read through ``conn``, then the checkpoints."""
    dbapi = conn.connection.driver_connection
    dialect.begin_read(dbapi)
    heads = dialect.heads(dbapi)
    signed = _signed_heads(checkpoints, tenant)
    if tenant is None:
        tenants = sorted(dialect.tenants(dbapi) | heads.keys() | signed.keys())
    else:
        tenants = [tenant]
    total = 0
    for t in tenants:
        lookup = _StoredLookup(dialect, dbapi, t)
        checked, broken = verify_tenant(t, dialect.chain(dbapi, t), heads.get(t), lookup)
        if broken is None and t in signed:
            broken = _against_checkpoints(dialect, dbapi, t, checked, signed[t])
        total += checked
        if broken is not None:
            return VerifyResult(total, len(tenants), broken, tuple(tenants), len(checkpoints))
    return VerifyResult(total, len(tenants), None, tuple(tenants), len(checkpoints))
