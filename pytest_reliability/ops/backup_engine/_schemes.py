"""Which backup source a URL names.

Kept apart on purpose: the project's one-home scheme registry will own this mapping; until it
lands, :func:`source_from_url` is the single place that knows the schemes.
"""

from __future__ import annotations

from typing import Any

from pytest_reliability.errors import ConfigurationError
from pytest_reliability.ops.backup_engine._sources import (
    BackupSource,
    PostgresSource,
    SqliteSource,
)

KNOWN_SCHEMES = ("sqlite", "postgresql", "postgres")


def source_from_url(url: str, **options: Any) -> BackupSource:
    """Return the :class:`BackupSource` for ``url``; an unknown scheme is a ConfigurationError."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"backup source {url!r} is not a URL (scheme://...)")
    scheme = url.split("://", 1)[0]
    backend, _, driver = scheme.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if options:
            raise ConfigurationError(f"SQLite backups take no options, got {sorted(options)}")
        return SqliteSource(url)
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return PostgresSource(url, **options)
    raise ConfigurationError(
        f"unknown backup source scheme {scheme!r}; known schemes: {', '.join(KNOWN_SCHEMES)}"
    )
