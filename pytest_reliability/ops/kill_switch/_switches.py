"""The switch set: switches shared by every instance of a service, failing closed when unsure.

Precedence, first match wins: the ``OPS_KILL_SWITCH`` environment override (engaged); a store
that could not be read within ``staleness`` seconds (every switch engaged, fail closed); the
store's record; released.

The hot path (:meth:`KillSwitches.is_engaged`, :meth:`~KillSwitches.guard`) reads an in-process
snapshot and never does I/O. A daemon thread refreshes the snapshot every ``poll_interval``
seconds, and at once when the store announces a flip (PostgreSQL ``LISTEN/NOTIFY``, Redis
pub/sub). Stores are chosen by URL: ``memory://``, a SQLAlchemy URL (``sqlite:///...``,
``postgresql://...``) or ``redis://``.

Every :meth:`~KillSwitches.engage` and :meth:`~KillSwitches.release` goes through RBAC
(:func:`~pytest_reliability.ops.rbac.require_ops_permission`) and into the audit log with the
actor and the reason; on a SQL store the audit event commits in the flip's transaction.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, final

from pytest_reliability import stores
from pytest_reliability.audit import AuditLog, InMemoryAuditLog
from pytest_reliability.clock import system_clock
from pytest_reliability.errors import (
    ConfigurationError,
    KillSwitchEngaged,
    StoreDataLost,
    StoreUnavailable,
)
from pytest_reliability.ops._guard import Guard
from pytest_reliability.ops.kill_switch import _model
from pytest_reliability.ops.kill_switch._model import (
    OPS_KILL_SWITCH_ENV,
    KillSwitchStore,
    SwitchRecord,
    SwitchState,
    check_reason,
    check_switch,
    parse_override,
    registered_switches,
)
from pytest_reliability.ops.kill_switch._registry import STORE_KIND, sql_factory
from pytest_reliability.ops.kill_switch._store_common import check_namespace
from pytest_reliability.ops.rbac import (
    AuthorizationEngine,
    OpsContext,
    OpsSession,
    Permission,
    require_ops_permission,
)
from pytest_reliability.protocols import Clock
from pytest_reliability.tenancy import tenant_scope

__all__ = ["DEFAULT_POLL_INTERVAL", "DEFAULT_STALENESS", "KillSwitches"]

DEFAULT_POLL_INTERVAL = 1.0
"""Seconds between two reads of a shared store (the backstop when notifications are lost)."""
DEFAULT_STALENESS = 10.0
"""Seconds without a successful read after which every switch reads engaged."""

_GLOBAL_WRITE = "GLOBAL_WRITE"  # a plain str: hashing it is cheaper than the enum member's

ENGAGE_ACTION = "ops.kill_switch.engage"
RELEASE_ACTION = "ops.kill_switch.release"
SEED_ACTION = "ops.kill_switch.seed"


@final
class KillSwitches:
    """A set of kill switches over one store. Thread-safe; use as a context manager or close().

    ``session`` supplies RBAC and the audit sink; without one, every flip is denied (deny by
    default) and reads still work. ``env`` is where ``OPS_KILL_SWITCH`` is read (default
    :data:`os.environ`); an unknown or malformed name there raises ConfigurationError now.
    ``start=False`` runs no background thread: the snapshot changes only through :meth:`refresh`
    and this instance's own flips, and a shared store goes stale after ``staleness`` seconds
    (for tests that drive time with a manual clock).
    """

    def __init__(
        self,
        store: KillSwitchStore,
        *,
        session: OpsSession | None = None,
        clock: Clock | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        staleness: float = DEFAULT_STALENESS,
        env: Mapping[str, str] | None = None,
        start: bool = True,
    ) -> None:
        if not (poll_interval > 0 and 2 * poll_interval <= staleness and math.isfinite(staleness)):
            raise ConfigurationError(
                f"need 0 < poll_interval ({poll_interval}) <= staleness ({staleness}) / 2"
            )
        environ = os.environ if env is None else env
        self._override = parse_override(environ.get(OPS_KILL_SWITCH_ENV))
        self.store = store
        self.session = session or OpsSession(AuthorizationEngine(), InMemoryAuditLog())
        self.poll_interval = poll_interval
        self.staleness = staleness
        self._clock: Clock = clock if clock is not None else system_clock
        # The hot path calls this directly: time.monotonic itself for the system clock.
        self._monotonic: Callable[[], float] = (
            time.monotonic if self._clock is system_clock else self._clock.monotonic
        )
        self._guards: dict[tuple[str, bool], Guard] = {}
        self._lock = threading.Lock()
        self._records: dict[str, SwitchRecord] = {}
        # Read without the lock on the hot path; each is replaced whole, never mutated.
        self._blocked: frozenset[str] = self._override
        self._fresh_until = math.inf if not store.shared else -math.inf
        self.last_error: str | None = None
        # Counts this instance's own flips: a read that overlapped none is the store's truth.
        self._flips = 0
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.refresh()
        if start and store.shared:
            self._spawn(self._refresh_loop, "refresh")
            self._spawn(lambda: store.listen(self._wake.set, self._stop), "listen")

    @classmethod
    def from_url(
        cls,
        url: Any,
        *,
        namespace: str = "default",
        key_prefix: str = "",
        channel: str | None = None,
        durability: str = "require",
        store_timeout: float | None = None,
        **kwargs: Any,
    ) -> KillSwitches:
        """Build switches over the store ``url`` names (or a SQLAlchemy engine).

        The scheme is looked up in :mod:`pytest_reliability.stores` (kind ``kill_switch``):
        ``memory://``, ``redis://``, ``sqlite://``, ``postgresql://`` or one a repository
        registered; an unknown scheme raises ConfigurationError naming the known ones.

        ``namespace`` separates independent sets of switches in one store; ``key_prefix``
        prefixes Redis keys and channels; ``channel`` fixes the PostgreSQL NOTIFY channel.
        ``durability`` (Redis only): ``"require"`` refuses a server that can drop acknowledged
        state (no append-only file, an evicting ``maxmemory-policy``); ``"warn"`` accepts it
        with a warning. ``store_timeout`` bounds every store call in seconds (default: 5 s on
        SQL, 2 s on Redis); a flip past it raises StoreUnavailable and a read past it counts
        as a failed read. Other keyword arguments go to the constructor.
        """
        check_namespace(namespace)
        options: dict[str, Any] = {
            "namespace": namespace,
            "key_prefix": key_prefix,
            "channel": channel,
            "durability": durability,
            "store_timeout": store_timeout,
        }
        store: KillSwitchStore
        if isinstance(url, str):
            store = stores.store_from_url(STORE_KIND, url, **options)
        else:  # an Engine or a sqlalchemy URL object: the SQL store, whatever its dialect
            store = sql_factory(url, **options)
        try:
            return cls(store, **kwargs)
        except BaseException:
            store.close()  # a bad setting must not leave a connection pool behind
            raise

    # -- the hot path: no I/O, no locks --------------------------------------------------------

    def is_engaged(self, switch: str) -> bool:
        """Return whether ``switch`` itself reads engaged (GLOBAL_WRITE is not folded in)."""
        if switch not in _model._registered:
            check_switch(switch)
        return switch in self._blocked or self._monotonic() > self._fresh_until

    def check(self, switch: str, write: bool = True) -> None:
        """Raise :class:`KillSwitchEngaged` if ``switch`` (or GLOBAL_WRITE, for a write) is on."""
        # One test on the fast path; the slow path below works out which rule refused.
        blocked = self._blocked
        if (
            switch in blocked
            or (write and _GLOBAL_WRITE in blocked)
            or self._monotonic() > self._fresh_until
            or switch not in _model._registered
        ):
            self._refuse(switch, write)

    def _refuse(self, switch: str, write: bool) -> None:
        name = check_switch(switch)
        blocked = self._blocked
        if name in blocked:
            raise KillSwitchEngaged(f"kill switch {name} is engaged", switch=name)
        if write and _GLOBAL_WRITE in blocked:
            raise KillSwitchEngaged(
                f"kill switch GLOBAL_WRITE is engaged (blocks {name})", switch=_GLOBAL_WRITE
            )
        if self._monotonic() > self._fresh_until:
            raise KillSwitchEngaged(
                f"kill switch {name} reads engaged: store unreadable ({self.last_error})",
                switch=name,
            )

    def guard(self, switch: str, *, write: bool = True) -> Guard:
        """A decorator and context manager that calls :meth:`check` before the guarded code.

        ``write=True`` (the default) makes it a write guard: GLOBAL_WRITE blocks it too. Guards
        are cached per (switch, write), so building one inside a hot ``with`` costs a lookup.
        """
        key = (switch, write)
        guard = self._guards.get(key)
        if guard is None:
            name = check_switch(switch)
            check = functools.partial(self.check, name, write)
            guard = self._guards[key] = Guard(check, f"kill switch {name} (write={write})")
        return guard

    # -- state and flips ------------------------------------------------------------------------

    def state(self, switch: str) -> SwitchState:
        """Return what ``switch`` reads as, which rule decided, and the record behind it.

        For the service's own code (no RBAC); an ops endpoint that shows switches to people
        serves :meth:`status`, which checks ``ops.kill_switch.read``.
        """
        name = check_switch(switch)
        record = self._records.get(name)
        if name in self._override:
            return SwitchState(name, True, "env", record)
        if self._monotonic() > self._fresh_until:
            return SwitchState(name, True, "stale", record)
        if record is not None:
            return SwitchState(name, record.engaged, "store", record)
        return SwitchState(name, False, "default", None)

    def status(self, ctx: OpsContext) -> dict[str, SwitchState]:
        """Every switch's state with records (actors, reasons): needs ``ops.kill_switch.read``."""
        require_ops_permission(self.session, ctx, Permission.KILL_SWITCH_READ, target="kill_switch")
        return {name: self.state(name) for name in sorted(registered_switches())}

    def stale(self) -> bool:
        """Return whether the store has not been read within the staleness bound."""
        return self._monotonic() > self._fresh_until

    def engaged(self) -> frozenset[str]:
        """Return the names of every switch that reads engaged now."""
        if self.stale():
            return registered_switches()
        return self._blocked

    def engage(self, switch: str, *, reason: str, actor: OpsContext | str) -> SwitchState:
        """Engage ``switch`` for every instance; RBAC ``ops.kill_switch.engage``, audited."""
        return self._flip(switch, True, reason, actor)

    def release(self, switch: str, *, reason: str, actor: OpsContext | str) -> SwitchState:
        """Release ``switch`` in the store; RBAC ``ops.kill_switch.release``, audited.

        The returned state still reads engaged when ``OPS_KILL_SWITCH`` names the switch.
        """
        return self._flip(switch, False, reason, actor)

    def _flip(
        self, switch: str, engaged: bool, reason: str, actor: OpsContext | str
    ) -> SwitchState:
        name = check_switch(switch)
        check_reason(reason)
        ctx = actor if isinstance(actor, OpsContext) else OpsContext(actor)
        permission = Permission.KILL_SWITCH_ENGAGE if engaged else Permission.KILL_SWITCH_RELEASE
        action = ENGAGE_ACTION if engaged else RELEASE_ACTION
        target = f"kill_switch:{name}"
        require_ops_permission(self.session, ctx, permission, target=target)
        record = SwitchRecord(name, engaged, reason, ctx.actor, self._clock.time())
        sink = self.session.audit
        details = {"reason": reason, "store": self.store.kind}

        def audit(conn: Any) -> None:
            with tenant_scope(ctx.tenant):
                if conn is not None and isinstance(sink, AuditLog) and _same_db(sink, conn):
                    sink.append(
                        action, actor=ctx.actor, target=target, outcome="success",
                        details=details, connection=conn,
                    )  # fmt: skip
                else:
                    sink.append(
                        action, actor=ctx.actor, target=target, outcome="success", details=details
                    )

        try:
            stored = self.store.write(record, audit)
        except StoreUnavailable as exc:
            with tenant_scope(ctx.tenant):
                sink.append(
                    action, actor=ctx.actor, target=target, outcome="error",
                    details={**details, "error": str(exc)[:500]},
                )  # fmt: skip
            raise
        with self._lock:
            self._flips += 1
            current = self._records.get(name)
            if current is None or current.version <= stored.version:
                self._apply({**self._records, name: stored})
        return self.state(name)

    def seed(
        self, engaged: Iterable[str] = (), *, reason: str, actor: OpsContext | str
    ) -> SwitchState:
        """Seed a new Redis store, or re-seed one that lost its data: the operator states the
        switches; those in ``engaged`` are engaged, every other one released, in one atomic step.

        Until then a store without its marker reads every switch engaged. Needs both
        ``ops.kill_switch.release`` and ``ops.kill_switch.engage``; audited as
        ``ops.kill_switch.seed``. Returns the state of ``GLOBAL_WRITE`` after a refresh.
        """
        names = sorted({check_switch(n) for n in engaged})
        check_reason(reason)
        ctx = actor if isinstance(actor, OpsContext) else OpsContext(actor)
        seed = getattr(self.store, "seed", None)
        if seed is None:
            raise ConfigurationError(f"a {self.store.kind} kill switch store has nothing to seed")
        for permission in (Permission.KILL_SWITCH_RELEASE, Permission.KILL_SWITCH_ENGAGE):
            require_ops_permission(self.session, ctx, permission, target="kill_switch:*")
        now = self._clock.time()
        records = [SwitchRecord(n, True, reason, ctx.actor, now) for n in names]
        details = {"reason": reason, "store": self.store.kind, "engaged": names}

        def audit(_conn: Any) -> None:
            with tenant_scope(ctx.tenant):
                self.session.audit.append(
                    SEED_ACTION, actor=ctx.actor, target="kill_switch:*", outcome="success",
                    details=details,
                )  # fmt: skip

        seed(records, audit)
        self.refresh()
        return self.state(_GLOBAL_WRITE)

    # -- refreshing -----------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Read the store now; on failure keep the old snapshot and record why. Returns success."""
        flips = self._flips
        try:
            records = dict(self.store.read_all())
        except StoreDataLost as exc:
            # The store forgot what it had acknowledged: engaged at once, not after staleness.
            self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            self._fresh_until = -math.inf
            return False
        except Exception as exc:  # any failure to read means "unknown": fail closed, never raise
            self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            return False
        with self._lock:
            if self._flips != flips:
                # A read that began before our own flip committed must not undo it locally.
                # Only then: otherwise the store's state wins whole, so every instance converges
                # on it (even after a store reset restarted its versions).
                for name, mine in self._records.items():
                    theirs = records.get(name)
                    if theirs is None or theirs.version < mine.version:
                        records[name] = mine
            self._apply(records)
        if self.store.shared:
            self._fresh_until = self._monotonic() + self.staleness
        self.last_error = None
        return True

    def _apply(self, records: dict[str, SwitchRecord]) -> None:
        changed = records != self._records
        self._records = records
        self._blocked = self._override | {n for n, r in records.items() if r.engaged}
        if changed:
            for listener in tuple(self._listeners):
                listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (from the refresher thread) whenever the snapshot changes."""
        self._listeners.append(listener)

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if not self._stop.is_set():
                self.refresh()

    def _spawn(self, target: Callable[[], None], role: str) -> None:
        thread = threading.Thread(target=target, name=f"kill-switches-{role}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        """Stop the background threads and release the store's connections."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self.store.close()

    def __enter__(self) -> KillSwitches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _same_db(sink: AuditLog, conn: Any) -> bool:
    # Joining the flip's transaction is only safe (and only atomic) on the same database.
    return bool(sink.engine.url.render_as_string() == conn.engine.url.render_as_string())
