"""The chaos engine: faults injected on purpose, drawn from a seed, recorded and always removed.

The engine refuses to arm (:class:`~pytest_reliability.errors.ChaosDisabled`) whenever the
environment says production under any spelling (``APP_ENV``, ``NODE_ENV``, ``RAILS_ENV``,
``ENV``, ``STAGE``... set to ``prod``, ``live``, ``prd``, ``production-blue``...), whatever
``CHAOS_ENABLED`` says. Otherwise it arms inside a test (the ``chaos`` fixture passes
``in_test=True``), or outside one when ``CHAOS_ENABLED=true`` and the process is positively in CI
or a named non-production environment (see ``_environment``).

Faults (each returns its :class:`Fault` record)::

    engine.raise_exception("pkg.billing.charge", exc=TimeoutError("upstream"), on_call=2)
    engine.return_value("pkg.flags.Flags.enabled", False, probability=0.3)
    engine.latency("pkg.client.fetch", 0.2)
    engine.timeout("pkg.client.fetch", after=0.05)
    engine.database_error(sa_engine, kind="disconnect", on_call=3)
    engine.refuse_connections("127.0.0.1", 6379)
    engine.inject("payments-api", mode="5xx")    # a target from pytest_reliability_chaos_targets
    engine.proxy("127.0.0.1", 5432)              # a TCP fault proxy (the fixture's engine only)
    with engine.apply(schedule, targets=[...]):  # a FaultSchedule (property-based chaos)
        ...

Triggers: every call (default), only the ``on_call``-th call (1-based), or each call with
``probability``, drawn from a ``random.Random`` seeded by (seed, scope, fault index) so a run with
the same seed fires the same calls. :meth:`ChaosEngine.restore` removes every fault, newest
first; use the engine as a context manager, or the fixture, so that happens even when a test fails.
Patching a dotted path replaces the attribute where it lives: code that copied the function
elsewhere (``from mod import func``) keeps the original, as with ``unittest.mock.patch``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, final

from pytest_reliability.errors import ConfigurationError, InjectedFault
from pytest_reliability.ops.chaos_engine import _apply
from pytest_reliability.ops.chaos_engine import _patch as _chaos_patch
from pytest_reliability.ops.chaos_engine._environment import (
    CHAOS_ENABLED_ENV,
    CI_ENV_VARS,
    NON_PRODUCTION_ENVIRONMENTS,
    PRODUCTION_ENV_VARS,
    PRODUCTION_VALUES,
    check_armable,
    production_environment,
)
from pytest_reliability.ops.chaos_engine._fault import ChaosTarget, Fault, Trigger
from pytest_reliability.protocols import ConnectionFaultProxy

if TYPE_CHECKING:
    from pytest_reliability.ops.chaos_engine._apply import AppliedSchedule, PropertyStats
    from pytest_reliability.ops.chaos_engine._schedule import FaultSchedule, FaultTarget

__all__ = [
    "CHAOS_ENABLED_ENV",
    "CI_ENV_VARS",
    "NON_PRODUCTION_ENVIRONMENTS",
    "PRODUCTION_ENV_VARS",
    "PRODUCTION_VALUES",
    "ChaosEngine",
    "check_armable",
    "production_environment",
]


_NO_DRAWS = random.Random(0)
"""The generator of faults that never draw (every call, or the N-th call)."""


def _exception(exc: BaseException | type[BaseException] | None, target: str) -> BaseException:
    if exc is None:
        return InjectedFault(f"chaos: fault injected into {target}")
    if isinstance(exc, type):
        return exc(f"chaos: fault injected into {target}")
    return exc


@final
class ChaosEngine:
    """Arms faults and removes them all on :meth:`restore` (or on leaving a ``with`` block).

    ``seed`` and ``scope`` (the fixture passes the run's seed and the test's node id) make
    probability faults reproducible. ``targets`` maps names to dotted paths or
    :class:`ChaosTarget` objects. ``sleep`` is the function latency and timeout faults sleep with.
    ``proxy_opener`` opens the TCP fault proxies of :meth:`proxy` (the ``chaos`` fixture passes
    one that closes each proxy after the test and records its faults).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        scope: str = "global",
        in_test: bool = False,
        environ: Mapping[str, str] | None = None,
        targets: Mapping[str, ChaosTarget | str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        proxy_opener: Callable[[str, int], ConnectionFaultProxy] | None = None,
    ) -> None:
        self._environ = environ
        self._in_test = in_test
        check_armable(environ, in_test=in_test)
        self.seed = seed
        self.scope = scope
        self._targets = dict(targets or {})
        self._sleep = sleep
        self._proxy_opener = proxy_opener
        self._faults: list[Fault] = []
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        # Faults a schedule arms are kept apart: one record per example would swamp the report.
        self._sink: list[Fault] | None = None
        self._schedule_undo: dict[int, Callable[[], None]] = {}
        self._active: list[AppliedSchedule] = []
        self._property: PropertyStats | None = None

    @property
    def faults(self) -> tuple[Fault, ...]:
        """Every fault armed so far, in order (removed ones included: they are the record)."""
        return tuple(self._faults)

    def _new_fault(
        self, target: str, kind: str, on_call: int | None, probability: float | None
    ) -> Fault:
        # Re-checked per fault: the environment may have changed since the engine was made. A
        # schedule's faults are armed together, after one check (AppliedSchedule.__enter__).
        if self._sink is None:
            check_armable(self._environ, in_test=self._in_test)
        trigger = Trigger(on_call=on_call, probability=probability)
        index = len(self._faults)
        # Seeding costs a hash; only a probability trigger ever draws from it.
        rng = (
            _NO_DRAWS
            if probability is None
            else random.Random(f"{self.seed}\x1f{self.scope}\x1f{index}")
        )
        return Fault(index, target, kind, trigger, rng)

    def _arm(self, fault: Fault, undo: Callable[[], None]) -> Fault:
        at_example_end = None if self._sink is not None else _apply.example_cleanup()
        with self._lock:
            if self._sink is not None:
                self._sink.append(fault)
                self._schedule_undo[id(fault)] = undo
                return fault
            self._faults.append(fault)
            if at_example_end is None:
                self._undo.append(undo)
            else:
                self._schedule_undo[id(fault)] = undo
        if at_example_end is not None:
            # Armed by hand inside a Hypothesis example: removed when the example ends, so the
            # next example starts clean although the engine (the fixture) lives on.
            at_example_end(lambda: self._disarm([fault]))
        return fault

    @contextlib.contextmanager
    def _collecting(self, armed: list[Fault]) -> Iterator[None]:
        """Send the faults armed inside the block to ``armed`` (a schedule's), not the record.

        Checks once that chaos may arm here; the faults armed inside are not checked again.
        """
        check_armable(self._environ, in_test=self._in_test)
        previous, self._sink = self._sink, armed
        try:
            yield
        finally:
            self._sink = previous

    def _disarm(self, faults: Iterable[Fault]) -> None:
        """Remove the schedule faults ``faults``, newest first; every undo runs, come what may."""
        faults = list(faults)
        with self._lock:
            steps = [self._schedule_undo.pop(id(f)) for f in faults if id(f) in self._schedule_undo]
        for fault in faults:
            fault.observer = None
        first: BaseException | None = None
        for step in reversed(steps):
            try:
                step()
            except BaseException as exc:  # keep undoing: a half-restored process is worse
                first = first or exc
        if first is not None:
            raise first

    def _activate(self, applied: AppliedSchedule) -> None:
        with self._lock:
            self._active.append(applied)

    def _deactivate(self, applied: AppliedSchedule) -> bool:
        with self._lock:
            if applied in self._active:
                self._active.remove(applied)
                return True
            return False

    def apply(
        self,
        schedule: FaultSchedule,
        *,
        targets: Iterable[FaultTarget] | Mapping[str, FaultTarget] = (),
    ) -> AppliedSchedule:
        """Return a context manager that arms ``schedule`` on entry and removes it on exit.

        ``targets`` declares the schedule's targets (:class:`FaultTarget`): which kinds each
        allows, the SQLAlchemy engine or address behind a name. A fault whose target is not
        declared must be a call kind at a dotted path or alias, or a ``connection_refused`` at
        ``HOST:PORT``. The whole schedule is checked here, before anything is armed: an unknown
        or unpatchable target, a disallowed kind or an unknown exception class raises
        :class:`~pytest_reliability.errors.FaultScheduleError`. Each entry arms fresh faults
        (call counters at zero), so it is safe inside ``@given`` with a fixture that lives for the
        whole test. Apply from one thread at a time.
        """
        from pytest_reliability.ops.chaos_engine._apply import (
            AppliedSchedule,
            PropertyStats,
            prepare,
        )

        arms = prepare(self, schedule, targets)
        with self._lock:
            if self._property is None:
                self._property = PropertyStats()
            stats = self._property
        return AppliedSchedule(self, schedule, arms, stats)

    @property
    def property_stats(self) -> PropertyStats | None:
        """What the schedules applied so far add up to (``None`` before the first apply)."""
        return self._property

    def _dotted(self, target: str) -> str:
        alias = self._targets.get(target)
        return alias if isinstance(alias, str) else target

    def _patch(
        self,
        target: str,
        kind: str,
        on_call: int | None,
        probability: float | None,
        faulty: Callable[[Fault, Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any],
    ) -> Fault:
        path = self._dotted(target)
        owner, name = _chaos_patch.resolve(path)
        fault = self._new_fault(path, kind, on_call, probability)

        def action(
            original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if fault.should_fire():
                return faulty(fault, original, args, kwargs)
            return original(*args, **kwargs)

        return self._arm(fault, _chaos_patch.patch(owner, name, action))

    def raise_exception(
        self,
        target: str,
        exc: BaseException | type[BaseException] | None = None,
        *,
        on_call: int | None = None,
        probability: float | None = None,
    ) -> Fault:
        """Make the callable at ``target`` raise ``exc`` (default :class:`InjectedFault`)."""
        error = _exception(exc, target)

        def faulty(
            _f: Fault, _o: Callable[..., Any], _a: tuple[Any, ...], _k: dict[str, Any]
        ) -> Any:
            raise error

        return self._patch(target, "exception", on_call, probability, faulty)

    def return_value(
        self,
        target: str,
        value: Any,
        *,
        on_call: int | None = None,
        probability: float | None = None,
    ) -> Fault:
        """Make the callable at ``target`` return ``value`` without running."""

        def faulty(
            _f: Fault, _o: Callable[..., Any], _a: tuple[Any, ...], _k: dict[str, Any]
        ) -> Any:
            return value

        return self._patch(target, "return_value", on_call, probability, faulty)

    def latency(
        self,
        target: str,
        seconds: float,
        *,
        on_call: int | None = None,
        probability: float | None = None,
    ) -> Fault:
        """Delay calls to ``target`` by ``seconds`` (coroutines sleep without blocking the loop)."""
        if seconds < 0:
            raise ConfigurationError(f"latency must not be negative, not {seconds!r}")
        is_async = _chaos_patch.is_async(*_chaos_patch.resolve(self._dotted(target)))

        def faulty(
            _f: Fault, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if is_async:
                return _chaos_patch.async_sleep_then(seconds, lambda: original(*args, **kwargs))
            if seconds:  # a latency of 0 (a schedule shrunk to "no delay") does not yield
                self._sleep(seconds)
            return original(*args, **kwargs)

        return self._patch(target, "latency", on_call, probability, faulty)

    def timeout(
        self,
        target: str,
        *,
        after: float = 0.0,
        exc: BaseException | type[BaseException] | None = None,
        on_call: int | None = None,
        probability: float | None = None,
    ) -> Fault:
        """Make calls to ``target`` wait ``after`` seconds, then raise ``exc`` (TimeoutError)."""
        error = _exception(exc if exc is not None else TimeoutError, target)
        is_async = _chaos_patch.is_async(*_chaos_patch.resolve(self._dotted(target)))

        def fail() -> Any:
            raise error

        def faulty(
            _f: Fault, _o: Callable[..., Any], _a: tuple[Any, ...], _k: dict[str, Any]
        ) -> Any:
            if is_async:
                return _chaos_patch.async_sleep_then(after, fail)
            self._sleep(after)
            return fail()

        return self._patch(target, "timeout", on_call, probability, faulty)

    def database_error(
        self,
        engine: Any,
        *,
        kind: str = "operational",
        on_call: int | None = None,
        probability: float | None = None,
    ) -> Fault:
        """Make statements on the SQLAlchemy ``engine`` fail (``on_call``: the N-th statement).

        ``kind`` is ``operational`` (``sqlalchemy.exc.OperationalError``) or ``disconnect`` (the
        same, with the connection invalidated as after a lost server).
        """
        if kind not in ("operational", "disconnect"):
            raise ConfigurationError(
                f"database fault kind must be operational or disconnect, not {kind!r}"
            )
        from pytest_reliability.ops.chaos_engine._sql import fail_statements

        label = f"sqlalchemy:{engine.url.render_as_string(hide_password=True)}"
        fault = self._new_fault(label, f"database_{kind}", on_call, probability)
        undo = fail_statements(
            engine, disconnect=kind == "disconnect", should_fail=fault.should_fire, label=label
        )
        return self._arm(fault, undo)

    def refuse_connections(
        self, host: str, port: int, *, on_call: int | None = None, probability: float | None = None
    ) -> Fault:
        """Make TCP connections to ``host:port`` (and its resolved addresses) fail as refused."""
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"port must be 1..65535, not {port!r}")
        fault = self._new_fault(f"{host}:{port}", "connection_refused", on_call, probability)
        hosts = _chaos_patch.addresses_of(host, port)
        return self._arm(fault, _chaos_patch.refuse(hosts, port, fault.should_fire))

    def inject(
        self,
        name: str,
        *,
        on_call: int | None = None,
        probability: float | None = None,
        **params: Any,
    ) -> Fault:
        """Arm the custom target ``name`` (from ``pytest_reliability_chaos_targets``)."""
        target = self._targets.get(name)
        if not isinstance(target, ChaosTarget):
            known = ", ".join(sorted(k for k, v in self._targets.items() if not isinstance(v, str)))
            raise ConfigurationError(f"no custom chaos target {name!r} (known: {known or 'none'})")
        fault = self._new_fault(name, str(params.pop("kind", "custom")), on_call, probability)
        return self._arm(fault, target.install(fault, params))

    def proxy(self, host: str, port: int) -> ConnectionFaultProxy:
        """Open a TCP fault proxy on 127.0.0.1 in front of ``host:port`` and return it.

        Point the code under test at ``proxy.host`` and ``proxy.port``, then break its
        connections: ``latency(s)``, ``bandwidth(bps)``, ``reset_after(n)``, ``cut()``,
        ``half_open()``, ``restore()``. This reaches drivers that open their sockets in C
        (libpq), which :meth:`refuse_connections` cannot. With the ``chaos`` fixture the proxy is
        closed after the test and its faults recorded with the engine's; an engine made without
        a ``proxy_opener`` raises ConfigurationError (use ``chaos_infra.FaultProxy`` directly).
        """
        check_armable(self._environ, in_test=self._in_test)
        if self._proxy_opener is None:
            raise ConfigurationError(
                "this chaos engine opens no proxies: use the chaos fixture, or "
                "pytest_reliability.chaos_infra.FaultProxy directly"
            )
        return self._proxy_opener(host, port)

    def restore(self) -> None:
        """Remove every armed fault, newest first; every undo runs even if one raises.

        Schedules still applied (a ``with`` block never left) and faults of a Hypothesis
        example that never ended go first.
        """
        with self._lock:
            undo, self._undo = self._undo, []
            active, self._active = self._active, []
        first: BaseException | None = None
        for applied in reversed(active):
            try:
                self._disarm(applied.faults)
            except BaseException as exc:  # keep undoing: a half-restored process is worse
                first = first or exc
        with self._lock:
            undo += self._schedule_undo.values()
            self._schedule_undo = {}
        for step in reversed(undo):
            try:
                step()
            except BaseException as exc:  # keep undoing: a half-restored process is worse
                first = first or exc
        if first is not None:
            raise first

    def facts(self, *, failed: bool = False) -> dict[str, Any]:
        """Return the ``chaos`` facts section: every fault, how many armed, how many fired.

        After :meth:`apply`, also ``property``: examples, distinct schedules, faults fired and
        never fired by kind, and when the test ``failed`` the shrunk schedule.
        """
        faults = [f.as_dict() for f in self._faults]
        found: dict[str, Any] = {
            "faults": faults,
            "injected": len(faults),
            "fired": sum(f.fired for f in self._faults),
        }
        if self._property is not None:
            found["property"] = self._property.as_facts(failed=failed)
        return found

    def __enter__(self) -> ChaosEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()
