"""The guard object: one switch check as a decorator or a context manager."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar, final

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

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        check = self._switches.check
        switch, write = self.switch, self.write

        @functools.wraps(func)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            check(switch, write)
            return func(*args, **kwargs)

        return guarded
