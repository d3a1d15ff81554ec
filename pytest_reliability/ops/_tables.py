"""The ops control plane's tables (kill switches, RBAC), on the package's shared metadata."""

from __future__ import annotations

from pytest_reliability.db._schema import metadata  # noqa: F401  # tables are defined on it
