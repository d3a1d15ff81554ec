"""The ops control plane: kill switches, RBAC, health, readiness, degradation, chaos."""

from __future__ import annotations

__all__: list[str] = []
