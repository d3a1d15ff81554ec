"""Run a callable with a deadline on a daemon thread, so a hung dependency cannot hang a probe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, final

T = TypeVar("T")


@final
@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What happened: a ``value``, an ``error``, or ``timed_out``; ``duration_s`` either way."""

    value: T | None
    error: BaseException | None
    timed_out: bool
    duration_s: float


def run_with_deadline(func: Callable[[], T], timeout: float, name: str = "call") -> Outcome[T]:
    """Run ``func()`` on a daemon thread and wait at most ``timeout`` seconds.

    A call that overruns keeps running in the background (Python cannot kill a thread) but is
    reported as timed out at once; the thread is a daemon, so it never blocks interpreter exit.
    """
    box: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # reported to the caller, never lost on the thread
            box["error"] = exc
        finally:
            done.set()

    start = time.perf_counter()
    thread = threading.Thread(target=target, name=f"deadline-{name}", daemon=True)
    thread.start()
    finished = done.wait(timeout)
    duration = time.perf_counter() - start
    if not finished:
        return Outcome(None, None, True, duration)
    error = box.get("error")
    if isinstance(error, BaseException):
        return Outcome(None, error, False, duration)
    return Outcome(box.get("value"), None, False, duration)  # type: ignore[arg-type]
