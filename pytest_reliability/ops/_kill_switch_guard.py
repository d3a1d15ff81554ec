"""The guard object: one switch check as a decorator or a context manager."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, final

if TYPE_CHECKING:
    from pytest_reliability.ops.kill_switch import KillSwitches

P = ParamSpec("P")
R = TypeVar("R")


@final
class Guard:
    """Checks one switch on ``with`` entry, or before every call of a decorated function."""

    __slots__ = ("_switches", "switch", "write")

    def __init__(self, switches: KillSwitches, switch: str, write: bool) -> None:
        self._switches = switches
        self.switch = switch
        self.write = write

    def __enter__(self) -> None:
        self._switches.check(self.switch, self.write)

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> None:
        self._switches.check(self.switch, self.write)

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        check = self._switches.check
        switch, write = self.switch, self.write
        if inspect.iscoroutinefunction(func):
            # Check when the coroutine runs, not when it is created, and stay a coroutine
            # function for frameworks that inspect what they are given.
            @functools.wraps(func)
            async def aguarded(*args: Any, **kwargs: Any) -> Any:
                check(switch, write)
                return await func(*args, **kwargs)

            return cast("Callable[P, R]", aguarded)

        @functools.wraps(func)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            check(switch, write)
            return func(*args, **kwargs)

        return guarded
