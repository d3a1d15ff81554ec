"""Signed checkpoints: the audit chain's heads, anchored outside the database.

The hash chain proves order and integrity only against the database's own record of its heads,
and whoever can disable the triggers can rewrite both. A checkpoint is a statement of the heads
(tenant, sequence, hash; how many; when; by which key) signed with an Ed25519 key the database
never sees, written where the operator chooses (an append-only file, ``sys.stdout`` for a log
shipper). :meth:`AuditLog.verify` given checkpoints finds any rewrite, truncation or deletion
made before the latest of them, as transparency logs do with signed tree heads (RFC 9162).

One checkpoint is one line of canonical JSON::

    {"count":2,"events":11,"heads":[{"hash":"...","seq":8,"tenant":"acme"},...],
     "key_id":"3f2a...","scope":null,"signature":"<base64>","time":"2030-05-01T12:00:00.000000Z",
     "type":"pytest-reliability/audit-checkpoint","version":1}

The signature covers the canonical JSON of every other field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection

from pytest_reliability._canonical_json import canonical_json
from pytest_reliability.audit._dialect import AuditDialect
from pytest_reliability.errors import AuditCheckpointError, ConfigurationError

CHECKPOINT_TYPE = "pytest-reliability/audit-checkpoint"
CHECKPOINT_VERSION = 1
SIGNING_KEY_ENV = "RELIABILITY_AUDIT_SIGNING_KEY"
"""Path of the PEM private key :meth:`AuditLog.checkpoint` signs with, when none is passed."""
VERIFY_KEY_ENV = "RELIABILITY_AUDIT_VERIFY_KEY"
"""Path of the PEM public key that checks checkpoints, when none is passed."""

SigningKey = Ed25519PrivateKey
VerifyKey = Ed25519PublicKey
CheckpointDestination = str | os.PathLike[str] | TextIO


@dataclass(frozen=True, slots=True)
class CheckpointHead:
    """One tenant's head as signed: its last sequence number and that event's hash."""

    tenant: str
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of audit heads. ``scope`` is the one tenant signed, or None for all.

    A checkpoint of all tenants also states that no other tenant had events then, so a tenant
    deleted with its head is found.
    """

    key_id: str
    time: datetime
    scope: str | None
    heads: tuple[CheckpointHead, ...]
    signature: str

    @property
    def count(self) -> int:
        """How many tenants' heads it signs."""
        return len(self.heads)

    def payload(self) -> dict[str, Any]:
        """Every field but the signature, as signed."""
        return {
            "type": CHECKPOINT_TYPE,
            "version": CHECKPOINT_VERSION,
            "key_id": self.key_id,
            "time": self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "scope": self.scope,
            "count": self.count,
            "events": sum(h.seq for h in self.heads),
            "heads": [{"tenant": h.tenant, "seq": h.seq, "hash": h.hash} for h in self.heads],
        }

    def to_line(self) -> str:
        """The checkpoint as one line of canonical JSON (no newline)."""
        return canonical_json({**self.payload(), "signature": self.signature})

    def check_signature(self, key: VerifyKey) -> None:
        """Raise :class:`AuditCheckpointError` unless ``key`` signed exactly this checkpoint."""
        if self.key_id != key_id(key):
            raise AuditCheckpointError(
                f"checkpoint of {self.payload()['time']} was signed by key {self.key_id}, "
                f"not by the given key {key_id(key)}"
            )
        try:
            key.verify(base64.b64decode(self.signature), canonical_json(self.payload()).encode())
        except (InvalidSignature, binascii.Error, ValueError):
            raise AuditCheckpointError(
                f"checkpoint of {self.payload()['time']}: the signature does not verify "
                "(the checkpoint was altered or forged)"
            ) from None


def key_id(key: SigningKey | VerifyKey) -> str:
    """A short id of a key pair: the first 16 hex digits of SHA-256 of the raw public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair(
    private_path: str | os.PathLike[str], public_path: str | os.PathLike[str]
) -> str:
    """Write a new Ed25519 key pair as PEM files and return its key id.

    The private key (PKCS#8, unencrypted) is created with mode 0600 and never overwritten;
    keep it off the database host. The public key (SubjectPublicKeyInfo) is for verifiers.
    """
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(
            f"{os.fspath(private_path)} exists; not overwriting a key"
        ) from None
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    Path(public_path).write_bytes(public_pem)
    return key_id(key)


def _key_path(path: str | os.PathLike[str] | None, env: str, what: str) -> Path:
    if path is None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ConfigurationError(f"no {what} given and {env} is not set")
        path = value
    return Path(path)


def load_signing_key(path: str | os.PathLike[str] | None = None) -> SigningKey:
    """Load an Ed25519 private key from a PEM file (default: ``$RELIABILITY_AUDIT_SIGNING_KEY``)."""
    file = _key_path(path, SIGNING_KEY_ENV, "signing key")
    try:
        key = serialization.load_pem_private_key(file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot load the signing key {file}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{file} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_verify_key(path: str | os.PathLike[str] | None = None) -> VerifyKey:
    """Load an Ed25519 public key from a PEM file (default: ``$RELIABILITY_AUDIT_VERIFY_KEY``)."""
    file = _key_path(path, VERIFY_KEY_ENV, "public key")
    try:
        key = serialization.load_pem_public_key(file.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot load the public key {file}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{file} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def read_heads(dialect: AuditDialect, conn: Connection, tenant: str | None) -> list[CheckpointHead]:
    """The recorded heads, every tenant's or one, sorted by tenant."""
    heads = dialect.heads(conn.connection.driver_connection)
    return [
        CheckpointHead(t, h.last_seq, h.last_hash)
        for t, h in sorted(heads.items())
        if tenant is None or t == tenant
    ]


def sign_heads(
    heads: Iterable[CheckpointHead], *, key: SigningKey, now: datetime, tenant: str | None
) -> Checkpoint:
    """Sign ``heads`` as of ``now`` with ``key``."""
    unsigned = Checkpoint(key_id(key), now, tenant, tuple(heads), "")
    signature = key.sign(canonical_json(unsigned.payload()).encode())
    return Checkpoint(
        unsigned.key_id, now, tenant, unsigned.heads, base64.b64encode(signature).decode()
    )


def write_checkpoint(checkpoint: Checkpoint, destination: CheckpointDestination) -> None:
    """Append ``checkpoint`` as one line to a file (fsynced) or write it to a text stream."""
    line = checkpoint.to_line() + "\n"
    if isinstance(destination, io.TextIOBase) or hasattr(destination, "write"):
        stream: Any = destination
        stream.write(line)
        stream.flush()
        return
    path = Path(os.fspath(destination))
    created = not path.exists()
    with path.open("a", encoding="utf-8") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())
    if created:
        # The new name must survive a crash too, not only the bytes.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def parse_checkpoint(line: str) -> Checkpoint:
    """Parse one checkpoint line; :meth:`Checkpoint.check_signature` checks its signature."""
    try:
        data = json.loads(line)
        if data.get("type") != CHECKPOINT_TYPE or data.get("version") != CHECKPOINT_VERSION:
            raise ValueError("not a version 1 audit checkpoint")
        heads = tuple(
            CheckpointHead(_str(h["tenant"]), _int(h["seq"]), _str(h["hash"]))
            for h in data["heads"]
        )
        time = datetime.strptime(data["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        scope = data["scope"]
        checkpoint = Checkpoint(
            _str(data["key_id"]),
            time,
            None if scope is None else _str(scope),
            heads,
            _str(data["signature"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AuditCheckpointError(f"malformed audit checkpoint: {exc}") from exc
    if data.get("count") != checkpoint.count or data.get("events") != sum(h.seq for h in heads):
        raise AuditCheckpointError("malformed audit checkpoint: count or events do not add up")
    return checkpoint


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if type(value) is not int or value < 1:
        raise TypeError(f"expected a positive integer, got {value!r}")
    return value


def read_checkpoints(source: str | os.PathLike[str] | TextIO, key: VerifyKey) -> list[Checkpoint]:
    """Read every checkpoint line of a file or stream, each checked against ``key``.

    Blank lines are skipped; any other line that is not a checkpoint signed by ``key`` raises
    :class:`AuditCheckpointError` naming the line (fail closed: an altered anchor is not ignored).
    A source with no checkpoint at all raises too.
    """
    if isinstance(source, str | os.PathLike):
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditCheckpointError(f"cannot read checkpoints from {source}: {exc}") from exc
        name = os.fspath(source)
    else:
        text, name = source.read(), "the stream"
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            checkpoint = parse_checkpoint(line)
            checkpoint.check_signature(key)
        except AuditCheckpointError as exc:
            raise AuditCheckpointError(f"{name} line {number}: {exc}") from None
        found.append(checkpoint)
    if not found:
        raise AuditCheckpointError(f"{name} holds no audit checkpoint")
    return found
