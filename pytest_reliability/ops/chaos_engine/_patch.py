"""Replacing a dotted callable (or a socket method) with a wrapper, and putting it back."""

from __future__ import annotations

import asyncio
import errno
import functools
import importlib
import inspect
import socket
import types
from collections.abc import Callable
from typing import Any

from pytest_reliability.errors import ConfigurationError

Undo = Callable[[], None]
Action = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]
"""What a fault does instead of (or around) a call: ``action(original, args, kwargs)``."""


_MODULE_CUT: dict[str, int] = {}


def resolve(target: str) -> tuple[Any, str]:
    """Return ``(owner, attribute)`` for ``pkg.mod.func``, ``pkg.mod.Cls.meth`` or ``pkg.mod:a.b``.

    The longest importable module prefix wins when there is no colon.
    """
    if not target or target.strip() != target:
        raise ConfigurationError(f"chaos target {target!r} is not a dotted path")
    if ":" in target:
        module_name, _, attr_path = target.partition(":")
        module = _import(module_name, target)
        parts = attr_path.split(".")
    else:
        parts = target.split(".")
        module = None
        # Where the module part ended last time: a schedule resolves its targets in every
        # example, and each failed import of a longer prefix costs tens of microseconds.
        known = _MODULE_CUT.get(target)
        cuts = range(len(parts) - 1, 0, -1) if known is None else (known,)
        for cut in cuts:
            try:
                module = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            _MODULE_CUT[target] = cut
            parts = parts[cut:]
            break
        if module is None and known is not None:
            _MODULE_CUT.pop(target, None)
            return resolve(target)  # the module went away: search again from the longest
        if module is None:
            raise ConfigurationError(f"chaos target {target!r}: no importable module in the path")
    owner: Any = module
    for part in parts[:-1]:
        try:
            owner = getattr(owner, part)
        except AttributeError:
            raise ConfigurationError(f"chaos target {target!r}: no attribute {part!r}") from None
    name = parts[-1]
    if not name or not hasattr(owner, name):
        raise ConfigurationError(f"chaos target {target!r}: no attribute {name!r}")
    return owner, name


def _import(module_name: str, target: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"chaos target {target!r}: cannot import {module_name}: {exc}"
        ) from None


def _wrapper(function: Callable[..., Any], action: Action) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            result = action(function, args, kwargs)
            while inspect.isawaitable(result):
                result = await result
            return result

        return async_wrapper

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return action(function, args, kwargs)

    return wrapper


def _static(owner: Any, name: str) -> Any:
    """``inspect.getattr_static(owner, name)``, read straight from a module's namespace.

    A module attribute is its namespace entry (modules have no descriptors of their own), and
    reading it directly spares the MRO walk on a path a schedule takes in every example.
    """
    if isinstance(owner, types.ModuleType):
        namespace = owner.__dict__
        if name in namespace:
            return namespace[name]
    return inspect.getattr_static(owner, name)


def patch(owner: Any, name: str, action: Action) -> Undo:
    """Replace ``owner.name`` by a wrapper running ``action``; return the undo function."""
    raw = _static(owner, name)
    own = name in getattr(owner, "__dict__", {})
    if isinstance(raw, staticmethod):
        replacement: Any = staticmethod(_wrapper(raw.__func__, action))
    elif isinstance(raw, classmethod):
        replacement = classmethod(_wrapper(raw.__func__, action))
    elif callable(raw):
        replacement = _wrapper(raw, action)
    else:
        raise ConfigurationError(f"chaos target {owner!r}.{name} is not callable")
    setattr(owner, name, replacement)

    def undo() -> None:
        if own:
            setattr(owner, name, raw)
        else:
            # The attribute was inherited: removing our override uncovers it again.
            delattr(owner, name)

    return undo


def is_async(owner: Any, name: str) -> bool:
    """Return whether ``owner.name`` is a coroutine function."""
    raw = _static(owner, name)
    function = getattr(raw, "__func__", raw)
    return inspect.iscoroutinefunction(function)


async def async_sleep_then(seconds: float, then: Callable[[], Any]) -> Any:
    """Sleep without blocking the event loop, then return ``then()`` (awaited if needed)."""
    await asyncio.sleep(seconds)
    result = then()
    while inspect.isawaitable(result):
        result = await result
    return result


def addresses_of(host: str, port: int) -> frozenset[str]:
    """Return ``host`` and every address it resolves to (a name that does not resolve: itself)."""
    found = {host}
    try:
        for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return frozenset(found)


def refuse(hosts: frozenset[str], port: int, should_refuse: Callable[[], bool]) -> Undo:
    """Make sockets refuse ``(host, port)`` when ``should_refuse()`` says so; return the undo."""

    def matches(address: Any) -> bool:
        return (
            isinstance(address, tuple)
            and len(address) >= 2
            and address[1] == port
            and str(address[0]) in hosts
        )

    def connect(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if len(args) >= 2 and matches(args[1]) and should_refuse():
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"chaos: connection to {args[1][0]}:{port} refused"
            )
        return original(*args, **kwargs)

    def connect_ex(
        original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if len(args) >= 2 and matches(args[1]) and should_refuse():
            return errno.ECONNREFUSED
        return original(*args, **kwargs)

    undo_connect = patch(socket.socket, "connect", connect)
    undo_connect_ex = patch(socket.socket, "connect_ex", connect_ex)

    def undo() -> None:
        try:
            undo_connect_ex()
        finally:
            undo_connect()

    return undo
