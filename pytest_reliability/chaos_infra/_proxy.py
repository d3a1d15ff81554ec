"""A TCP fault proxy on 127.0.0.1 in front of any server, in the manner of Toxiproxy.

Point the client at the proxy instead of the server and the faults reach every driver, also the
ones that open sockets in C (libpq under psycopg), which patching Python's ``socket`` cannot.
Faults change while connections are open, so a test can let traffic flow, break it, and heal it:

=====================  =====================================================================
``latency(s)``          every chunk waits ``s`` seconds before it is forwarded (one direction)
``bandwidth(bps)``      forwarding is limited to ``bps`` bytes a second (one direction)
``cut()``               every open connection is reset, and new ones are refused
``half_open()``         new connections are accepted and never answered; open ones go silent
``reset_after(n)``      a connection is reset once ``n`` more bytes have crossed it
``restore()``           every fault is removed; the proxy listens on the same port again
=====================  =====================================================================

Directions: ``downstream`` is server to client (the default: a request's answer comes late),
``upstream`` client to server, ``both``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Any, Literal, final

from pytest_reliability.errors import ConfigurationError

Direction = Literal["downstream", "upstream", "both"]
_CHUNK = 65536
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on with zero timeout: close() sends a RST


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
    # A pump thread may be blocked in recv() on this socket, and close() alone would wait for
    # it (the kernel keeps the socket while a call uses it): SHUT_RD wakes the reader, and the
    # last close then sends the RST.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class _Fault:
    __slots__ = ("direction", "fired", "kind", "value")

    def __init__(self, kind: str, value: float, direction: Direction) -> None:
        self.kind, self.value, self.direction, self.fired = kind, value, direction, 0

    def applies(self, upstream: bool) -> bool:
        return self.direction == "both" or (self.direction == "upstream") == upstream


class _Link:
    """One proxied connection: the client's socket and the server's."""

    __slots__ = ("budget", "client", "pumps", "server")

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.budget: int | None = None  # bytes left before a reset_after fault resets it
        self.pumps = 2  # directions still forwarding

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.server)


@final
class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``, with faults switched at will.

    ``port`` 0 (the default) picks a free port; read :attr:`port` after.
    Every fault is recorded (:meth:`faults`); :meth:`close` resets every connection and stops.
    """

    def __init__(
        self, target_host: str, target_port: int, *, port: int = 0, connect_timeout: float = 5.0
    ) -> None:
        if not 0 < target_port < 65536:
            raise ConfigurationError(f"target port must be within 1..65535, not {target_port!r}")
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._held: list[socket.socket] = []
        self._faults: list[_Fault] = []  # in force now
        self._history: list[_Fault] = []  # every fault ever armed, for the report
        self._flowing = threading.Event()
        self._flowing.set()
        self._mode = "open"  # "open", "cut" (not listening) or "half_open"
        self._closed = False
        self._listener = self._listen(port)
        self.port: int = self._listener.getsockname()[1]
        """The port on 127.0.0.1 that clients connect to."""

    def _listen(self, port: int) -> socket.socket:
        try:
            listener = socket.create_server((self.host, port), reuse_port=False, backlog=128)
        except OSError as exc:
            raise ConfigurationError(
                f"fault proxy cannot listen on 127.0.0.1:{port}: {exc}"
            ) from exc
        threading.Thread(
            target=self._accept, args=(listener,), name="fault-proxy-accept", daemon=True
        ).start()
        return listener

    def _stop_listening(self) -> None:
        # close() alone leaves the socket listening while accept() blocks on it in another
        # thread; shutdown() wakes accept() and stops the kernel taking connections.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()

    # -- forwarding ------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._mode == "half_open":
                    self._held.append(client)
                    self._count("half_open")
                    continue
            try:
                server = socket.create_connection(self.target, timeout=self._connect_timeout)
                server.settimeout(None)
                server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                _reset(client)  # the server is gone: the client sees what it would see direct
                continue
            link = _Link(client, server)
            with self._lock:
                if self._closed:
                    link.reset()
                    return
                self._links.add(link)
                budget = self._active("reset_after")
                link.budget = int(budget.value) if budget else None
            for src, dst, up in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump, args=(link, src, dst, up), name="fault-proxy", daemon=True
                ).start()

    def _active(self, kind: str, upstream: bool | None = None) -> _Fault | None:
        for fault in reversed(self._faults):
            if fault.kind == kind and (upstream is None or fault.applies(upstream)):
                return fault
        return None

    def _count(self, kind: str) -> None:
        fault = self._active(kind)
        if fault is not None:
            fault.fired += 1

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while True:
                size = _CHUNK
                # Unlocked read: a fault armed meanwhile applies from the next chunk on.
                if self._faults:
                    with self._lock:
                        limit = self._active("bandwidth", upstream)
                    if limit is not None:
                        size = max(1, min(_CHUNK, int(limit.value / 20)))
                data = src.recv(size)
                if not data:
                    break
                if not self._faults and self._flowing.is_set():
                    dst.sendall(data)  # no fault armed: the fast path, nothing to decide
                elif not self._forward_faulted(link, dst, data, upstream):
                    return
            # A clean end of stream one way: pass the half-close on, as TCP would.
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            link.reset()
        finally:
            with self._lock:
                link.pumps -= 1
                if link.pumps == 0:
                    self._links.discard(link)
                    done = True
                else:
                    done = False
            if done:
                with contextlib.suppress(OSError):
                    link.client.close()
                with contextlib.suppress(OSError):
                    link.server.close()

    def _forward_faulted(
        self, link: _Link, dst: socket.socket, data: bytes, upstream: bool
    ) -> bool:
        """Forward ``data`` under the faults in force; return ``False`` once the link is reset."""
        self._flowing.wait()  # half-open: hold the data, answer nothing
        with self._lock:
            delay = self._active("latency", upstream)
            limit = self._active("bandwidth", upstream)
            for fault in (delay, limit):
                if fault is not None:
                    fault.fired += 1
            budget = link.budget
            if budget is not None:
                link.budget = budget - len(data)
        wait = (delay.value if delay else 0.0) + (len(data) / limit.value if limit else 0.0)
        if wait:
            time.sleep(wait)
        if budget is not None and budget <= len(data):
            dst.sendall(data[: max(budget, 0)])
            with self._lock:
                self._count("reset_after")
            link.reset()
            return False
        dst.sendall(data)
        return True

    # -- faults ----------------------------------------------------------------------------

    def _add(self, kind: str, value: float, direction: Direction) -> _Fault:
        if direction not in ("downstream", "upstream", "both"):
            raise ConfigurationError(
                f"direction must be downstream, upstream or both: {direction!r}"
            )
        fault = _Fault(kind, value, direction)
        with self._lock:
            self._faults.append(fault)
            self._history.append(fault)
        return fault

    def latency(self, seconds: float, direction: Direction = "downstream") -> None:
        """Delay every chunk crossing in ``direction`` by ``seconds``."""
        if not seconds >= 0:
            raise ConfigurationError(f"latency must be 0 or more seconds, not {seconds!r}")
        self._add("latency", float(seconds), direction)

    def bandwidth(self, bytes_per_second: float, direction: Direction = "downstream") -> None:
        """Limit forwarding in ``direction`` to ``bytes_per_second``."""
        if not bytes_per_second > 0:
            raise ConfigurationError(f"bandwidth must be above 0, not {bytes_per_second!r}")
        self._add("bandwidth", float(bytes_per_second), direction)

    def reset_after(self, n_bytes: int) -> None:
        """Reset each open and new connection once ``n_bytes`` more bytes crossed it."""
        if isinstance(n_bytes, bool) or not isinstance(n_bytes, int) or n_bytes < 0:
            raise ConfigurationError(
                f"reset_after takes a byte count of 0 or more, not {n_bytes!r}"
            )
        self._add("reset_after", n_bytes, "both")
        with self._lock:
            for link in self._links:
                link.budget = n_bytes

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until :meth:`restore`."""
        fault = self._add("cut", 0, "both")
        with self._lock:
            self._mode = "cut"
            links, self._links = self._links, set()
            fault.fired = len(links)
        self._stop_listening()
        for link in links:
            link.reset()

    def half_open(self) -> None:
        """Accept new connections and never answer them; open connections stop forwarding."""
        self._add("half_open", 0, "both")
        with self._lock:
            self._mode = "half_open"
            self._flowing.clear()

    def restore(self) -> None:
        """Remove every fault: forward again, listen again on the same port."""
        with self._lock:
            mode, self._mode = self._mode, "open"
            held, self._held = self._held, []
            self._faults = []
            for link in self._links:
                link.budget = None
        self._flowing.set()
        for sock in held:
            _reset(sock)  # what a peer finally sees of a black-holed connection
        if mode == "cut" and not self._closed:
            self._listener = self._listen(self.port)

    # -- bookkeeping -----------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """How many connections are being forwarded now."""
        with self._lock:
            return len(self._links)

    def faults(self) -> list[dict[str, Any]]:
        """Return every fault armed, as ``{target, kind, trigger, fired}`` records.

        ``fired`` counts what the fault did: chunks delayed or throttled, connections reset,
        refused or held.
        """
        target = f"proxy:{self.target[0]}:{self.target[1]}"
        with self._lock:
            return [
                {"target": target, "kind": f"proxy_{f.kind}", "trigger": "always", "fired": f.fired}
                for f in self._history
            ]

    def close(self) -> None:
        """Stop listening and reset every connection, forwarded or held. Safe to call twice."""
        with self._lock:
            self._closed = True
            links, self._links = self._links, set()
            held, self._held = self._held, []
        self._flowing.set()
        self._stop_listening()
        for link in links:
            link.reset()
        for sock in held:
            _reset(sock)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
