"""The backup manifest: what a backup holds, validated against ``backup-manifest.schema.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

from sqlalchemy.engine import make_url

MANIFEST_SCHEMA = "backup-manifest.schema.json"
MANIFEST_VERSION = "1.0"


@final
@dataclass(frozen=True, slots=True)
class TableContent:
    """One table's row count and order-independent content digest."""

    rows: int
    digest: str


@final
@dataclass(frozen=True, slots=True)
class Content:
    """What a database held at one instant: tables and audit chain heads."""

    tables: dict[str, TableContent]
    audit_heads: dict[str, tuple[int, str]]

    def tables_json(self) -> dict[str, dict[str, Any]]:
        """Return the ``tables`` section of a manifest."""
        return {n: {"rows": t.rows, "digest": t.digest} for n, t in sorted(self.tables.items())}

    def heads_json(self) -> dict[str, dict[str, Any]]:
        """Return the ``audit_heads`` section of a manifest."""
        return {t: {"seq": s, "hash": h} for t, (s, h) in sorted(self.audit_heads.items())}


def redact_url(url: str) -> str:
    """Return ``url`` with its password removed (replaced by nothing, not by a mask)."""
    parsed = make_url(url)
    # URL.set(password=None) means "leave it": replace the field itself.
    return parsed._replace(password=None).render_as_string(hide_password=False)


def manifest_violations(document: Any) -> list[str]:
    """Return why ``document`` is not a valid manifest (empty when it is)."""
    from pytest_reliability._schemas import violations

    return [str(v) for v in violations(document, MANIFEST_SCHEMA)]


def encode_manifest(document: dict[str, Any]) -> bytes:
    """Return the manifest as indented JSON bytes (humans read it too)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and schema-check the manifest at ``path``; raise ValueError naming the problem."""
    try:
        document = json.loads(path.read_bytes())
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name} is not UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name} is not JSON: {exc.msg} at line {exc.lineno}") from None
    problems = manifest_violations(document)
    if problems:
        raise ValueError(f"{path.name} does not match {MANIFEST_SCHEMA}: {problems[0]}")
    result: dict[str, Any] = document
    return result
