"""Kill switch names, records, the store protocol and the ``OPS_KILL_SWITCH`` parser."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, final

from pytest_reliability.errors import ConfigurationError, InvalidInput
from pytest_reliability.ops._tables import REASON_MAX, SWITCH_NAME_MAX

if TYPE_CHECKING:
    import threading as _threading

    from sqlalchemy.engine import Connection

OPS_KILL_SWITCH_ENV = "OPS_KILL_SWITCH"
"""The environment override: comma-separated switch names, engaged whatever the store says."""

_SWITCH_RE = re.compile(r"[A-Z][A-Z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class KillSwitch(StrEnum):
    """The built-in kill switches (a repository adds more with :func:`register_switch`)."""

    GLOBAL_WRITE = "GLOBAL_WRITE"
    """Blocks every write guard, whatever switch the guard names."""
    BILLING = "BILLING"
    WEBHOOKS = "WEBHOOKS"
    BACKGROUND_JOBS = "BACKGROUND_JOBS"
    EXTERNAL_INTEGRATIONS = "EXTERNAL_INTEGRATIONS"


_registry_lock = threading.Lock()
# Read on the hot path without the lock: replacing a frozenset is atomic under the GIL.
_registered: frozenset[str] = frozenset(KillSwitch)


def register_switch(name: str) -> str:
    """Register a repository's own switch (``[A-Z][A-Z0-9_]*``, at most 64 characters).

    Register before parsing ``OPS_KILL_SWITCH`` (that is, before building :class:`KillSwitches`),
    so the override may name it. Registering twice is a no-op.
    """
    global _registered
    if not isinstance(name, str) or _SWITCH_RE.fullmatch(name) is None:
        raise ConfigurationError(f"kill switch name {name!r} must match [A-Z][A-Z0-9_]*")
    if len(name) > SWITCH_NAME_MAX:
        raise ConfigurationError(f"kill switch name {name!r} is longer than {SWITCH_NAME_MAX}")
    with _registry_lock:
        _registered = _registered | {name}
    return name


def registered_switches() -> frozenset[str]:
    """Return the names of every registered switch."""
    return _registered


def check_switch(switch: str) -> str:
    """Return ``switch`` as a plain name if registered, else raise :class:`ConfigurationError`."""
    if switch in _registered:
        return str(switch)
    raise ConfigurationError(
        f"unknown kill switch {switch!r}; known: {', '.join(sorted(_registered))}"
    )


def parse_override(raw: str | None) -> frozenset[str]:
    """Parse ``OPS_KILL_SWITCH``: names separated by commas, case and spaces tolerated.

    Empty items (``"BILLING,"``) are ignored. A name with other characters, or one that is not
    registered, is a :class:`ConfigurationError`: an override is never silently dropped.
    """
    if raw is None:
        return frozenset()
    names: set[str] = set()
    for item in raw.split(","):
        name = item.strip().upper()
        if not name:
            continue
        if _SWITCH_RE.fullmatch(name) is None:
            raise ConfigurationError(
                f"{OPS_KILL_SWITCH_ENV}={raw!r} is malformed: {item.strip()!r} is not a switch "
                "name (use comma-separated names such as GLOBAL_WRITE,BILLING)"
            )
        if name not in _registered:
            raise ConfigurationError(
                f"{OPS_KILL_SWITCH_ENV} names unknown kill switch {name!r}; "
                f"known: {', '.join(sorted(_registered))}"
            )
        names.add(name)
    return frozenset(names)


def check_reason(reason: object) -> str:
    """Return ``reason`` if it is 1..500 printable characters, else raise :class:`InvalidInput`."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a kill switch flip needs a non-empty reason")
    if len(reason) > REASON_MAX or _CONTROL.search(reason):
        raise InvalidInput(f"a kill switch reason must be at most {REASON_MAX} printable chars")
    return reason


@final
@dataclass(frozen=True, slots=True)
class SwitchRecord:
    """A switch's state as a store holds it: who flipped it last, why and when (epoch seconds)."""

    name: str
    engaged: bool
    reason: str
    actor: str
    changed_at: float
    version: int = 0

    def as_json(self) -> dict[str, Any]:
        """Return the record as a JSON object."""
        return {
            "name": self.name,
            "engaged": self.engaged,
            "reason": self.reason,
            "actor": self.actor,
            "changed_at": self.changed_at,
            "version": self.version,
        }


Source = Literal["env", "store", "stale", "default"]


@final
@dataclass(frozen=True, slots=True)
class SwitchState:
    """What a switch reads as now and why: ``source`` is the rule of precedence that decided.

    ``env`` (the ``OPS_KILL_SWITCH`` override), ``stale`` (the store could not be read within the
    staleness bound: engaged, fail closed), ``store`` (the shared store's record) or ``default``
    (never flipped: released).
    """

    name: str
    engaged: bool
    source: Source
    record: SwitchRecord | None = None


AuditHook = Callable[["Connection | None"], None]


class KillSwitchStore(Protocol):
    """Where switch records live. ``kind`` names the backend (``memory``, ``sqlite``, ...)."""

    kind: str
    shared: bool

    def read_all(self) -> Mapping[str, SwitchRecord]:
        """Return every record; raise on any failure to read (the caller fails closed)."""
        ...

    def write(self, record: SwitchRecord, audit: AuditHook) -> SwitchRecord:
        """Store ``record`` and tell other instances; call ``audit`` so both commit together.

        Returns the stored record (with its new version). Raises
        :class:`~pytest_reliability.errors.StoreUnavailable` when nothing was written.
        """
        ...

    def listen(self, wake: Callable[[], None], stop: _threading.Event) -> None:
        """Call ``wake()`` whenever another instance flips a switch, until ``stop`` is set.

        Stores without push notifications return at once (polling alone keeps them fresh).
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
