"""Signed checkpoints find what the chain alone cannot: attacks by someone who can disable triggers.

Each attack is committed for real on SQLite and on the real PostgreSQL: rewrite an event and
recompute every later hash and the head; cut a tail and rewind the head; delete a tenant's events
and head together. ``verify()`` without a checkpoint reports all three intact (the documented
limit of a self-contained chain); with the checkpoint signed before, each is a break.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection, Engine

from pytest_reliability.audit import AuditLog
from pytest_reliability.audit._chain import ChainRow, event_hash
from pytest_reliability.audit._checkpoint import (
    SIGNING_KEY_ENV,
    VERIFY_KEY_ENV,
    generate_key_pair,
    load_signing_key,
    load_verify_key,
)
from pytest_reliability.db import create_schema
from pytest_reliability.errors import AuditCheckpointError, ConfigurationError
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.audit

_SQLITE_TRIGGERS = (
    "audit_events_no_update",
    "audit_events_no_delete",
    "audit_events_extend_head",
    "audit_events_advance_head",
    "audit_heads_forward_only",
    "audit_heads_no_delete",
    "audit_heads_start_at_one",
)
_COLUMNS = ", ".join(ChainRow._fields)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "audit-signing.pem", tmp_path / "audit-verify.pem"
    generate_key_pair(private, public)
    return private, public


@pytest.fixture
def chain(engine: Engine) -> AuditLog:
    create_schema(engine)
    log = AuditLog(engine)
    for tenant, count in (("acme", 8), ("globex", 3)):
        with tenant_scope(tenant):
            for i in range(count):
                log.append("invoice.create", actor="user:1", target=f"i/{i}", outcome="ok")
    return log


def _as_attacker(engine: Engine, attack: Callable[[Connection], None]) -> None:
    """Disable the append-only triggers (as a superuser could) and commit ``attack``."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for name in _SQLITE_TRIGGERS:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        attack(conn)


def _rows(conn: Connection, tenant: str) -> list[ChainRow]:
    found = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM audit_events WHERE tenant_id = :t ORDER BY seq"),
        {"t": tenant},
    )
    return [ChainRow(*r) for r in found]


def rewrite_and_rehash(conn: Connection) -> None:
    """Change event 3 and recompute every later hash and the head: a consistent forgery."""
    prev = None
    for row in _rows(conn, "acme"):
        if row.seq < 3:
            prev = row.hash
            continue
        actor = "mallory" if row.seq == 3 else row.actor
        partial = (*row[:5], actor, *row[6:10], prev)
        new_hash = event_hash(partial)
        conn.execute(
            sa.text(
                "UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h "
                "WHERE tenant_id = 'acme' AND seq = :s"
            ),
            {"a": actor, "p": prev, "h": new_hash, "s": row.seq},
        )
        prev = new_hash
    conn.execute(
        sa.text("UPDATE audit_heads SET last_hash = :h WHERE tenant_id = 'acme'"), {"h": prev}
    )


def truncate_and_rewind(conn: Connection) -> None:
    """Delete events 6 to 8 and rewind the head to event 5."""
    fifth = _rows(conn, "acme")[4]
    conn.execute(sa.text("DELETE FROM audit_events WHERE tenant_id = 'acme' AND seq > 5"))
    conn.execute(
        sa.text("UPDATE audit_heads SET last_seq = 5, last_hash = :h WHERE tenant_id = 'acme'"),
        {"h": fifth.hash},
    )


def delete_tenant(conn: Connection) -> None:
    """Delete every event of globex and its head."""
    conn.execute(sa.text("DELETE FROM audit_events WHERE tenant_id = 'globex'"))
    conn.execute(sa.text("DELETE FROM audit_heads WHERE tenant_id = 'globex'"))


ATTACKS = {
    "rewrite": (rewrite_and_rehash, ("acme", 8, "changed")),
    "truncate": (truncate_and_rewind, ("acme", 6, "deleted")),
    "delete-tenant": (delete_tenant, ("globex", 1, "deleted")),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attacks_pass_the_chain_and_fail_the_checkpoint(
    chain: AuditLog, keys: tuple[Path, Path], tmp_path: Path, name: str
) -> None:
    private, public = keys
    checkpoints = tmp_path / "checkpoints.jsonl"
    signed = chain.checkpoint(checkpoints, key=load_signing_key(private))
    assert [(h.tenant, h.seq) for h in signed.heads] == [("acme", 8), ("globex", 3)]
    assert chain.verify(checkpoint=checkpoints, public_key=load_verify_key(public)).ok
    attack, (tenant, seq, kind) = ATTACKS[name]
    _as_attacker(chain.engine, attack)

    assert chain.verify().ok, "without a checkpoint the forgery is self-consistent"
    result = chain.verify(checkpoint=checkpoints, public_key=load_verify_key(public))
    assert result.break_ is not None
    assert (result.break_.tenant_id, result.break_.sequence, result.break_.kind) == (
        tenant,
        seq,
        kind,
    ), str(result.break_)
    assert "checkpoint signed at" in result.break_.reason
    assert result.checkpoints_checked == 1

    url = chain.engine.url.render_as_string(hide_password=False)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_reliability",
            "audit",
            "verify",
            "--database-url",
            url,
            "--checkpoint",
            str(checkpoints),
            "--public-key",
            str(public),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr
    assert "BROKEN" in out.stdout
    assert f"tenant {tenant!r}" in out.stdout


def test_appends_after_a_checkpoint_still_verify(
    chain: AuditLog, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    checkpoints = tmp_path / "checkpoints.jsonl"
    chain.checkpoint(checkpoints, key=load_signing_key(private))
    with tenant_scope("acme"):
        chain.append("later", actor="x", target="y", outcome="ok")
    with tenant_scope("initech"):
        chain.append("new.tenant", actor="x", target="y", outcome="ok")
    chain.checkpoint(checkpoints, key=load_signing_key(private), tenant="acme")
    result = chain.verify(checkpoint=checkpoints, public_key=load_verify_key(public))
    assert result.ok, result.break_
    assert (result.events_checked, result.checkpoints_checked) == (13, 2)


def test_a_stream_destination_and_keys_from_the_environment(
    chain: AuditLog, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = keys
    with pytest.raises(ConfigurationError, match=SIGNING_KEY_ENV):
        chain.checkpoint(io.StringIO())
    monkeypatch.setenv(SIGNING_KEY_ENV, str(private))
    monkeypatch.setenv(VERIFY_KEY_ENV, str(public))
    stream = io.StringIO()
    chain.checkpoint(stream)
    line = stream.getvalue()
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert '"type":"pytest-reliability/audit-checkpoint"' in line
    assert chain.verify(checkpoint=io.StringIO(line)).ok


def test_an_altered_or_foreign_checkpoint_is_refused(
    chain: AuditLog, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    checkpoints = tmp_path / "checkpoints.jsonl"
    chain.checkpoint(checkpoints, key=load_signing_key(private))
    genuine = checkpoints.read_text()
    # Someone who rewound the chain to 5 events also "fixes" the checkpoint.
    checkpoints.write_text(
        genuine.replace('"seq":8', '"seq":5').replace('"events":11', '"events":8')
    )
    with pytest.raises(AuditCheckpointError, match=r"line 1: .*signature does not verify"):
        chain.verify(checkpoint=checkpoints, public_key=load_verify_key(public))
    # A checkpoint signed with the attacker's own key is not accepted either.
    forged = tmp_path / "forged.jsonl"
    chain.checkpoint(forged, key=Ed25519PrivateKey.generate())
    with pytest.raises(AuditCheckpointError, match="not by the given key"):
        chain.verify(checkpoint=forged, public_key=load_verify_key(public))
    for bad in ("", "not json\n"):
        checkpoints.write_text(bad)
        with pytest.raises(AuditCheckpointError):
            chain.verify(checkpoint=checkpoints, public_key=load_verify_key(public))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_reliability",
            "audit",
            "verify",
            "--database-url",
            chain.engine.url.render_as_string(hide_password=False),
            "--checkpoint",
            str(forged),
            "--public-key",
            str(public),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert "cannot use the checkpoints" in out.stderr


def test_the_command_line_signs_and_checks(
    sqlite_engine: Engine, sqlite_url: str, tmp_path: Path
) -> None:
    create_schema(sqlite_engine)
    with tenant_scope("acme"):
        AuditLog(sqlite_engine).append("a", actor="x", target="y", outcome="ok")
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest_reliability", "audit", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert cli("keygen", "--private-key", str(private), "--public-key", str(public)).returncode == 0
    assert private.stat().st_mode & 0o777 == 0o600
    assert cli("keygen", "--private-key", str(private), "--public-key", str(public)).returncode == 2
    out = cli("checkpoint", "--database-url", sqlite_url, "--key", str(private))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 1
    file = tmp_path / "cp.jsonl"
    file.write_text(out.stdout)
    ok = cli(
        "verify",
        "--database-url",
        sqlite_url,
        "--checkpoint",
        str(file),
        "--public-key",
        str(public),
    )
    assert ok.returncode == 0, ok.stderr
    assert "held to 1 signed checkpoints" in ok.stdout
