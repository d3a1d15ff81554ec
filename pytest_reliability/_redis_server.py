"""What a Redis server must promise before a store acknowledges state kept on it.

A store acknowledges a write (an idempotency completion, an engaged kill switch) and later
decisions rely on it. Redis drops acknowledged data silently in two ordinary configurations: no
append-only file (a restart loses every write since the last RDB snapshot, or everything when
``save`` is off), and a memory limit with an evicting ``maxmemory-policy`` (keys vanish under
memory pressure). :func:`check_durability` asks the server on connect and refuses such a server,
or only warns when the caller explicitly chose ``durability="warn"``.

What the check cannot see (an operator's ``FLUSHALL``, a failover to a replica that had not
received the write) is caught by each store's marker key; see ``docs/idempotency.md``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

from pytest_reliability.errors import ConfigurationError

__all__ = [
    "DURABILITY_MODES",
    "Durability",
    "check_durability",
    "check_mode",
    "durability_problems",
]

Durability = Literal["require", "warn"]
DURABILITY_MODES: tuple[Durability, ...] = ("require", "warn")

_log = logging.getLogger("pytest_reliability.redis")


def check_mode(durability: object) -> Durability:
    """Return ``durability`` if it is ``"require"`` or ``"warn"``, else ConfigurationError."""
    if durability == "require" or durability == "warn":
        return durability
    raise ConfigurationError(f"durability={durability!r}: use 'require' (default) or 'warn'")


def durability_problems(client: Any) -> list[str]:
    """Return why ``client``'s server could drop acknowledged writes (empty: it cannot).

    Connection errors propagate (the caller maps them to its own unavailable error).
    """
    import redis

    try:
        config: dict[str, str] = {}
        for name in ("appendonly", "maxmemory", "maxmemory-policy"):
            for k, v in client.config_get(name).items():
                config[_text(k)] = _text(v)
    except redis.ResponseError as exc:
        # A managed Redis that hides CONFIG: nothing proves the data is kept, so it is unsafe.
        return [f"the server refuses CONFIG GET ({exc}), so its persistence is unknown"]
    problems = []
    if config.get("appendonly") != "yes":
        problems.append(
            "append-only file is off (appendonly no): a restart loses acknowledged writes; "
            "set 'appendonly yes'"
        )
    policy = config.get("maxmemory-policy", "")
    if config.get("maxmemory", "0") != "0" and policy != "noeviction":
        problems.append(
            f"maxmemory-policy {policy} evicts keys under memory pressure; "
            "set 'maxmemory-policy noeviction' (or maxmemory 0)"
        )
    return problems


def check_durability(client: Any, *, durability: Durability, what: str) -> None:
    """Refuse (``require``) or warn about (``warn``) a server that can drop acknowledged state."""
    problems = durability_problems(client)
    if not problems:
        return
    message = f"{what}: this Redis server can silently drop acknowledged state: " + "; ".join(
        problems
    )
    if durability == "require":
        raise ConfigurationError(
            message + ". Fix the server, or pass durability='warn' to accept the risk knowingly"
        )
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    _log.warning("%s (accepted with durability='warn')", message)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
