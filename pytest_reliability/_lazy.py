"""Module ``__getattr__`` helpers: lazy public names, and deprecated aliases of renamed ones.

A package lists where each public name lives; :func:`lazy_exports` returns the module-level
``__getattr__`` and ``__dir__`` that import the home module on first use, so importing one
submodule (``pytest_reliability.ops.chaos_engine``) does not import its siblings and their
libraries. :func:`deprecated_aliases` keeps an old name working for one release: every access
warns (:class:`DeprecationWarning`) and returns the object under its new name.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["REMOVAL", "deprecated_aliases", "lazy_exports"]

REMOVAL = "0.2.0"
"""The release that drops the deprecated aliases."""


def _missing(module: str) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def deprecated_aliases(
    module: str, renamed: Mapping[str, str], fallback: Callable[[str], Any] | None = None
) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` resolving each old name in ``renamed`` to its new name.

    Names that are not aliases go to ``fallback`` (default: AttributeError).
    """
    aliases = dict(renamed)
    other = fallback if fallback is not None else _missing(module)

    def __getattr__(name: str) -> Any:
        new = aliases.get(name)
        if new is None:
            return other(name)
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed in {REMOVAL}; use {module}.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(sys.modules[module], new)

    return __getattr__


def lazy_exports(
    package: str, homes: Mapping[str, str], *, deprecated: Mapping[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package``.

    ``homes`` maps each public name to the module defining it, relative (``"._engine"``) or
    absolute; ``deprecated`` maps old names to new ones (see :func:`deprecated_aliases`).
    """
    missing = _missing(package)

    def load(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            return missing(name)
        value = getattr(importlib.import_module(home, package), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        # The public names, loaded or not, and the module's own dunders and private names; not
        # the helpers its __init__ imported (TYPE_CHECKING, lazy_exports).
        private = (n for n in vars(sys.modules[package]) if n.startswith("_"))
        return sorted({*homes, *private})

    return deprecated_aliases(package, deprecated or {}, load), __dir__
