"""The one registry of stores by URL scheme, per kind of store.

Every module that keeps state in a pluggable store (idempotency records, kill switches, and the
modules still to come) picks its backend here, from the scheme of a URL, as ``limits`` does with
its ``storage_from_string``::

    register_store("idempotency", "memory", _memory)
    register_store("idempotency", "redis", _redis, extra="redis", requires=("redis",))
    store = store_from_url("idempotency", "redis://127.0.0.1:6379/0", lease_ms=500)

A *kind* is a module's name for its stores; each kind has its own schemes. A scheme matches the
text before ``://``, lower-cased; a SQLAlchemy driver suffix falls back to its backend
(``postgresql+psycopg`` finds ``postgresql``). An unknown scheme is always a
:class:`~pytest_reliability.errors.ConfigurationError` naming the known schemes and the extra each
needs; a known scheme whose extra is not installed is one naming the extra to install.

A repository adds a backend by registering a scheme for an existing kind before it builds the
store; the factory is called with the URL and the module's keyword options. This module is on the
base floor: it imports nothing of the package but :mod:`pytest_reliability.errors`.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, final

from pytest_reliability.errors import ConfigurationError

__all__ = [
    "StoreBackend",
    "StoreFactory",
    "known_schemes",
    "register_standard_stores",
    "register_store",
    "store_backend",
    "store_from_url",
    "unregister_store",
    "url_scheme",
]

StoreFactory = Callable[..., Any]
"""``factory(url, **options)`` returns a store; it imports its backend's libraries itself."""

_PACKAGE = "pytest-reliability"


@final
@dataclass(frozen=True, slots=True)
class StoreBackend:
    """One registered scheme: its factory, the extra it needs and the modules that extra brings."""

    kind: str
    scheme: str
    factory: StoreFactory
    extra: str | None = None
    requires: tuple[str, ...] = ()

    def describe(self) -> str:
        """Return ``scheme://`` with the extra it needs, as error messages list it."""
        return f"{self.scheme}:// ({_PACKAGE}[{self.extra}])" if self.extra else f"{self.scheme}://"


_lock = threading.Lock()
_kinds: dict[str, dict[str, StoreBackend]] = {}


def _check_name(what: str, value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or value != value.lower()
        or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in value)
    ):
        raise ConfigurationError(f"a store {what} must be lower-case [a-z0-9_.-]+, not {value!r}")
    return value


def register_store(
    kind: str,
    scheme: str,
    factory: StoreFactory,
    *,
    extra: str | None = None,
    requires: Sequence[str] = (),
    replace: bool = False,
) -> StoreBackend:
    """Make ``scheme://`` URLs of ``kind`` build their store with ``factory(url, **options)``.

    ``extra`` names the distribution extra that brings the backend's libraries and ``requires``
    the modules it brings (probed, not imported, when a URL is resolved). Registering the same
    factory again is a no-op; another factory for a taken scheme needs ``replace=True``.
    """
    backend = StoreBackend(
        _check_name("kind", kind), _check_name("scheme", scheme), factory, extra, tuple(requires)
    )
    with _lock:
        schemes = _kinds.setdefault(kind, {})
        taken = schemes.get(scheme)
        if taken is not None and taken != backend and not replace:
            raise ConfigurationError(
                f"{kind} store scheme {scheme}:// is already registered to {taken.factory!r}; "
                "pass replace=True to replace it"
            )
        schemes[scheme] = backend
    return backend


def register_standard_stores(
    kind: str, *, memory: StoreFactory, redis: StoreFactory, sql: StoreFactory
) -> None:
    """Register the package's usual backends for ``kind``, with the extras each needs.

    ``memory://``; ``redis://``, ``rediss://`` and ``unix://`` (extra ``redis``); ``sqlite://``;
    ``postgresql://`` and ``postgres://`` (extra ``postgres``, psycopg 3).
    """
    register_store(kind, "memory", memory)
    for scheme in ("redis", "rediss", "unix"):
        register_store(kind, scheme, redis, extra="redis", requires=("redis",))
    register_store(kind, "sqlite", sql)
    for scheme in ("postgresql", "postgres"):
        register_store(kind, scheme, sql, extra="postgres", requires=("psycopg",))


def unregister_store(kind: str, scheme: str) -> bool:
    """Forget ``scheme`` for ``kind`` (a plugin's teardown); return whether it was registered."""
    with _lock:
        return _kinds.get(kind, {}).pop(scheme, None) is not None


def url_scheme(url: str) -> str:
    """Return the lower-cased scheme of ``url`` (the text before ``://``), or ``""``."""
    head, sep, _ = url.partition("://")
    return head.strip().lower() if sep else ""


def known_schemes(kind: str) -> tuple[str, ...]:
    """Return the schemes registered for ``kind``, sorted."""
    with _lock:
        return tuple(sorted(_kinds.get(kind, {})))


def store_backend(kind: str, url: str) -> StoreBackend:
    """Return the backend registered for ``url``'s scheme, its extra checked to be installed.

    Raises :class:`ConfigurationError` for a URL that is not a string, an unknown scheme (naming
    every known one and its extra) or a missing extra (naming it).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a {kind} store URL must be a string, not {type(url).__name__}")
    scheme = url_scheme(url)
    with _lock:
        schemes = dict(_kinds.get(kind, {}))
    backend = schemes.get(scheme) or schemes.get(scheme.partition("+")[0])
    if backend is None:
        known = ", ".join(b.describe() for _, b in sorted(schemes.items())) or "none registered"
        raise ConfigurationError(
            f"unsupported {kind} store URL scheme {scheme or url!r}: known schemes are {known}; "
            f"install the extra a scheme names with pip install '{_PACKAGE}[EXTRA]'"
        )
    missing = [name for name in backend.requires if importlib.util.find_spec(name) is None]
    if missing:
        extra = f"'{_PACKAGE}[{backend.extra}]'" if backend.extra else " ".join(missing)
        raise ConfigurationError(
            f"the {scheme}:// {kind} store needs {', '.join(missing)}: pip install {extra}"
        )
    return backend


def store_from_url(kind: str, url: str, **options: Any) -> Any:
    """Build the ``kind`` store that ``url`` names, passing ``options`` to its factory."""
    return store_backend(kind, url).factory(url, **options)
