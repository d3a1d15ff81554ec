"""Is the server behind a port ready? Asked on the wire, so no database driver is needed.

A published Docker port accepts a TCP connection before the server inside listens (the proxy
answers for it, then closes), so "the port is open" proves nothing: each probe completes a real
exchange: ``PING`` -> ``+PONG`` for Redis, a startup packet -> ``ReadyForQuery`` for PostgreSQL.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable

from pytest_reliability.errors import DockerUnavailable

_PG_PROTOCOL_3 = 196608


def redis_ready(host: str, port: int, timeout: float = 1.0) -> bool:
    """Return whether a Redis server at ``host:port`` answers ``PING`` within ``timeout``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def postgres_ready(host: str, port: int, timeout: float = 1.0, user: str = "postgres") -> bool:
    """Return whether PostgreSQL at ``host:port`` lets ``user`` in (trust auth) within ``timeout``.

    ``False`` while the server starts up, shuts down or recovers: it answers those with an error
    message instead of ``ReadyForQuery``.
    """
    params = f"user\0{user}\0database\0postgres\0\0".encode()
    packet = struct.pack("!ii", 8 + len(params), _PG_PROTOCOL_3) + params
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(packet)
            buffer = b""
            while True:
                if len(buffer) >= 5:
                    kind = buffer[:1]
                    if kind == b"E":
                        return False
                    if kind == b"Z":
                        with contextlib.suppress(OSError):
                            sock.sendall(b"X\0\0\0\4")  # Terminate, politely
                        return True
                    (length,) = struct.unpack("!i", buffer[1:5])
                    if len(buffer) >= 1 + length:
                        buffer = buffer[1 + length :]
                        continue
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                buffer += chunk
    except OSError:
        return False


PROBES: dict[str, Callable[[str, int, float], bool]] = {
    "postgres": postgres_ready,
    "redis": redis_ready,
}


def wait_ready(kind: str, host: str, port: int, timeout: float) -> float:
    """Wait until the ``kind`` server at ``host:port`` is ready; return the seconds it took.

    Raises :class:`DockerUnavailable` when it is not ready within ``timeout`` seconds.
    """
    probe = PROBES[kind]
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if probe(host, port, min(1.0, max(0.05, deadline - time.monotonic()))):
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise DockerUnavailable(
                f"{kind} container on {host}:{port} not ready within {timeout:g} s"
            )
        time.sleep(0.05)
