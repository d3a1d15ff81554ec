"""Process signals for health: pid, uptime, resident memory, threads, open files.

Read from ``/proc/self`` on Linux with the standard library only; ``psutil`` is used when it is
installed (other platforms). A signal that cannot be read is ``None``, never a guess.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from dataclasses import dataclass
from typing import final

_START_MONOTONIC = time.monotonic()


@final
@dataclass(frozen=True, slots=True)
class ProcessSignals:
    """One reading of the process's vital signs."""

    pid: int
    uptime_s: float | None
    rss_bytes: int | None
    threads: int | None
    open_files: int | None


def _proc_uptime() -> float | None:
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            # Field 22 (starttime, clock ticks since boot) follows the parenthesised command name,
            # which may itself contain spaces: split after the last ')'.
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        with open("/proc/uptime", encoding="ascii") as f:
            boot_uptime = float(f.read().split()[0])
        return max(0.0, boot_uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def _proc_rss() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _proc_open_files() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _proc_threads() -> int:
    # /proc counts every OS thread (C extensions' too); threading only knows Python's own.
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def read_process_signals() -> ProcessSignals:
    """Read the signals now (a few small reads of ``/proc``; no subprocess)."""
    if os.path.isdir("/proc/self/fd"):
        return ProcessSignals(
            pid=os.getpid(),
            uptime_s=_proc_uptime(),
            rss_bytes=_proc_rss(),
            threads=_proc_threads(),
            open_files=_proc_open_files(),
        )
    try:
        import psutil
    except ImportError:
        # ru_maxrss is the peak, in KiB on Linux and bytes on macOS: better than nothing, labelled.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return ProcessSignals(
            os.getpid(),
            time.monotonic() - _START_MONOTONIC,
            peak if sys.platform == "darwin" else peak * 1024,
            threading.active_count(),
            None,
        )
    proc = psutil.Process()
    with proc.oneshot():
        return ProcessSignals(
            pid=proc.pid,
            uptime_s=max(0.0, time.time() - proc.create_time()),
            rss_bytes=int(proc.memory_info().rss),
            threads=proc.num_threads(),
            open_files=proc.num_fds() if hasattr(proc, "num_fds") else len(proc.open_files()),
        )
