"""Correlation ids and every other generated id, deterministic on demand.

In production every id is a random UUID4. With ``DETERMINISTIC_TEST_IDS=true`` (also ``1``,
``yes``, ``on``; ``false``/``0``/``no``/``off``/unset mean off; any other value raises
:class:`~pytest_reliability.errors.ConfigurationError` rather than silently going random), ids are
derived from three things only:

* the seed: ``RELIABILITY_SEED`` (a non-negative integer), else :data:`DEFAULT_SEED`; the plugin
  overrides both through :func:`configure` with the run's seed;
* the scope name set by :func:`id_scope` (the plugin passes the test's node id), else ``"global"``;
* the id's kind (``"correlation"``, ``"audit-event"``, ...) and a counter per (scope, kind).

So one scope yields the same sequence in any process, test order or pytest-xdist worker layout,
and two scopes never share an id (each id is the first 122 bits of a SHA-256 of the three). The
derived ids are shaped as UUID4 so code that validates UUIDs accepts them.

The current correlation id is carried in a context variable (:func:`correlation_scope`,
:func:`current_correlation_id`) for log records (:class:`CorrelationIdFilter`) and audit events.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pytest_reliability.errors import ConfigurationError

__all__ = [
    "DEFAULT_SEED",
    "DETERMINISTIC_ENV",
    "SEED_ENV",
    "CorrelationIdFilter",
    "configure",
    "correlation_scope",
    "current_correlation_id",
    "current_overrides",
    "current_seed",
    "derive_uuid",
    "deterministic_ids_enabled",
    "id_scope",
    "new_correlation_id",
    "new_id",
    "parse_bool",
    "parse_seed",
    "reset_configuration",
]

DETERMINISTIC_ENV = "DETERMINISTIC_TEST_IDS"
"""Environment variable that switches deterministic ids on."""
SEED_ENV = "RELIABILITY_SEED"
"""Environment variable holding the seed for deterministic ids."""
DEFAULT_SEED = 1011
"""The seed of deterministic mode when neither :func:`configure` nor the environment sets one."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_GLOBAL_SCOPE = "global"


def parse_bool(name: str, raw: str | None) -> bool:
    """Parse a boolean setting named ``name``; unset is false, anything unknown raises."""
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(
        f"{name}={raw!r} is not a boolean: use true/1/yes/on or false/0/no/off"
    )


def parse_seed(name: str, raw: str) -> int:
    """Parse a seed setting named ``name``: a non-negative integer, else ConfigurationError."""
    try:
        seed = int(raw.strip(), 10)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer seed") from None
    if seed < 0:
        raise ConfigurationError(f"{name}={raw!r} must not be negative")
    return seed


class _Overrides:
    # A plain class, as every record on the plugin's load path: a dataclass execs generated
    # source at import, a few million instructions each, paid by every run of every suite.
    __slots__ = ("deterministic", "seed")

    def __init__(self) -> None:
        self.seed: int | None = None
        self.deterministic: bool | None = None


_overrides = _Overrides()


def configure(*, seed: int | None = None, deterministic: bool | None = None) -> None:
    """Override the environment for this process (the plugin passes the run's seed here).

    ``None`` leaves a setting to the environment.
    """
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise ConfigurationError(f"seed must be a non-negative int, not {seed!r}")
    _overrides.seed = seed
    _overrides.deterministic = deterministic


def current_overrides() -> tuple[int | None, bool | None]:
    """Return the ``(seed, deterministic)`` overrides set by :func:`configure`; None where unset.

    Lets a caller that nests runs (pytester inside pytest) put the outer run's settings back.
    """
    return _overrides.seed, _overrides.deterministic


def reset_configuration() -> None:
    """Drop every override set by :func:`configure`."""
    _overrides.seed = None
    _overrides.deterministic = None


def deterministic_ids_enabled() -> bool:
    """Return whether ids are derived from the seed (override first, then the environment)."""
    if _overrides.deterministic is not None:
        return _overrides.deterministic
    return parse_bool(DETERMINISTIC_ENV, os.environ.get(DETERMINISTIC_ENV))


def current_seed() -> int:
    """Return the seed deterministic ids derive from."""
    if _overrides.seed is not None:
        return _overrides.seed
    raw = os.environ.get(SEED_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_SEED
    return parse_seed(SEED_ENV, raw)


class _Scope:
    __slots__ = ("counters", "lock", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.counters: dict[str, int] = {}
        self.lock = threading.Lock()

    def next(self, kind: str) -> int:
        with self.lock:
            n = self.counters.get(kind, 0)
            self.counters[kind] = n + 1
            return n


_global_scope = _Scope(_GLOBAL_SCOPE)
_scope: ContextVar[_Scope | None] = ContextVar("pytest_reliability_id_scope", default=None)
_correlation: ContextVar[str | None] = ContextVar("pytest_reliability_correlation", default=None)


@contextmanager
def id_scope(name: str) -> Iterator[None]:
    """Derive deterministic ids inside the block from ``name``, with fresh counters."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError("an id scope needs a non-empty name")
    token = _scope.set(_Scope(name))
    try:
        yield
    finally:
        _scope.reset(token)


def derive_uuid(seed: int, scope: str, kind: str, n: int) -> uuid.UUID:
    """Return the UUID4-shaped id number ``n`` of ``kind`` in ``scope`` under ``seed``."""
    # Imported here: loading OpenSSL's hashes is a sixth of what loading the plugin costs,
    # and most runs never derive an id.
    from hashlib import sha256

    digest = sha256(f"{seed}\x1f{scope}\x1f{kind}\x1f{n}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def new_id(kind: str = "id") -> str:
    """Return a new id string of ``kind``: random, or derived in deterministic mode."""
    if not deterministic_ids_enabled():
        return str(uuid.uuid4())
    scope = _scope.get() or _global_scope
    return str(derive_uuid(current_seed(), scope.name, kind, scope.next(kind)))


def new_correlation_id() -> str:
    """Return a new correlation id (a UUID string)."""
    return new_id("correlation")


@contextmanager
def correlation_scope(correlation_id: str | None = None) -> Iterator[str]:
    """Make ``correlation_id`` (or a new one) the current correlation id inside the block."""
    cid = correlation_id if correlation_id is not None else new_correlation_id()
    token = _correlation.set(cid)
    try:
        yield cid
    finally:
        _correlation.reset(token)


def current_correlation_id() -> str | None:
    """Return the current correlation id, or ``None`` outside :func:`correlation_scope`."""
    return _correlation.get()


class CorrelationIdFilter(logging.Filter):
    """A logging filter that sets ``record.correlation_id`` (``"-"`` when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record`` and keep it."""
        record.correlation_id = _correlation.get() or "-"
        return True
