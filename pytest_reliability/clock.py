"""Clocks: the system clock for production and a manual clock for tests.

Every module that needs time takes a :class:`~pytest_reliability.protocols.Clock`, so a test
advances a :class:`ManualClock` rather than sleeping while time passes.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime, timedelta
from typing import final

from pytest_reliability.protocols import Clock

__all__ = ["Clock", "ManualClock", "SystemClock", "system_clock"]


@final
class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic` and :func:`time.sleep`."""

    __slots__ = ()

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def time(self) -> float:
        """Return seconds since the epoch."""
        return _time.time()

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return _time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        _time.sleep(max(0.0, seconds))


system_clock = SystemClock()
"""The shared system clock, the default wherever a clock is optional."""


@final
class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it instead of waiting.

    Thread-safe. Wall-clock and monotonic readings move together.
    """

    __slots__ = ("_lock", "_monotonic", "_now")

    def __init__(self, start: datetime | None = None) -> None:
        start = start if start is not None else datetime(2025, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the clock's current time."""
        with self._lock:
            return self._now

    def time(self) -> float:
        """Return the clock's current time in seconds since the epoch."""
        return self.now().timestamp()

    def monotonic(self) -> float:
        """Return the seconds advanced since the clock was made."""
        with self._lock:
            return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._monotonic += seconds

    def set(self, when: datetime) -> None:
        """Jump the wall clock to ``when`` (may go backwards, to model clock skew)."""
        if when.tzinfo is None:
            raise ValueError("ManualClock.set needs a timezone-aware time")
        with self._lock:
            self._now = when.astimezone(UTC)

    def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` without waiting."""
        self.advance(max(0.0, seconds))


def _check_protocol() -> tuple[Clock, Clock]:
    # Static proof that both implementations satisfy the protocol.
    return SystemClock(), ManualClock()
