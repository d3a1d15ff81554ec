"""The one guard: a check run on ``with`` / ``async with`` entry or before each decorated call.

The kill switch guard and the degradation guard are both this object over their own check (a
callable that raises to refuse), so a change to how guards wrap functions is made once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast, final

__all__ = ["Guard"]

P = ParamSpec("P")
R = TypeVar("R")


@final
class Guard:
    """Calls ``check()`` on ``with`` entry, or before every call of a decorated function.

    ``check`` raises to refuse (``KillSwitchEngaged``, ``OperationRefused``); it is built once,
    usually as a :func:`functools.partial`, so the hot path is one call. ``name`` is for ``repr``.
    """

    __slots__ = ("check", "name")

    def __init__(self, check: Callable[[], object], name: str) -> None:
        self.check = check
        self.name = name

    def __enter__(self) -> None:
        self.check()

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> None:
        self.check()

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        check = self.check
        if inspect.iscoroutinefunction(func):
            # Check when the coroutine runs, not when it is created, and stay a coroutine
            # function for frameworks that inspect what they are given.
            @functools.wraps(func)
            async def aguarded(*args: Any, **kwargs: Any) -> Any:
                check()
                return await func(*args, **kwargs)

            return cast("Callable[P, R]", aguarded)

        @functools.wraps(func)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            check()
            return func(*args, **kwargs)

        return guarded

    def __repr__(self) -> str:
        return f"<Guard {self.name}>"
