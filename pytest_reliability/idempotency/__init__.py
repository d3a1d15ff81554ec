"""Exactly-once execution: the idempotency engine, its stores and webhook verification."""

from __future__ import annotations

__all__: list[str] = []
