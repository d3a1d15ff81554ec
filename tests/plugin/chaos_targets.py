"""Targets for the chaos engine's tests: functions, methods of each kind, a coroutine."""

from __future__ import annotations


def charge(amount: int) -> str:
    """A plain function."""
    return f"charged {amount}"


async def fetch(key: str) -> str:
    """A coroutine function."""
    return f"value of {key}"


class Base:
    """A class whose method subclasses inherit."""

    def status(self) -> str:
        """An instance method."""
        return "ok"

    @staticmethod
    def version() -> str:
        """A static method."""
        return "1"

    @classmethod
    def name(cls) -> str:
        """A class method."""
        return cls.__name__


class Child(Base):
    """Inherits everything from Base."""
