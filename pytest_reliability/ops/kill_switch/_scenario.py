"""Kill switch scenarios for tests: flip switches, assert what they block, restore afterwards.

:class:`KillSwitchScenario` is the object behind the ``kill_switches`` fixture, usable on its own.
It owns a :class:`~pytest_reliability.ops.kill_switch.KillSwitches` over any store (a URL, or a
repository's own ``KillSwitchStore`` object), in a namespace of its own (so pytest-xdist workers
sharing one PostgreSQL or Redis never see each other's flips), and an operator allowed to flip
them. Every switch it touches is put back as it found it by :meth:`restore`, and its namespace
is removed from a shared store.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, final

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.errors import KillSwitchEngaged
from pytest_reliability.ops.kill_switch._model import KillSwitchStore, check_switch
from pytest_reliability.ops.kill_switch._switches import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession

Recorder = Callable[[str, str], None]
"""Called as ``recorder(event, switch)``; events: exercised, engaged, released, blocked, allowed."""


def _ignore(event: str, switch: str) -> None:
    return None


@final
class KillSwitchScenario:
    """Flip kill switches inside a test and prove what they block; see the module docstring."""

    def __init__(
        self,
        url: str | KillSwitchStore = "memory://",
        *,
        actor: str = "pytest",
        namespace: str | None = None,
        recorder: Recorder | None = None,
        **options: Any,
    ) -> None:
        self.namespace = namespace or f"pytest-{uuid.uuid4().hex[:16]}"
        self.audit = InMemoryAuditLog()
        """Every permission check and flip the scenario made."""
        authz = AuthorizationEngine()
        self.ctx = OpsContext(actor[:200])
        authz.grant(self.ctx.actor, "ops_operator")
        self.session = OpsSession(authz, self.audit)
        if isinstance(url, str):
            redis = url.startswith(("redis://", "rediss://", "unix://"))
            with warnings.catch_warnings():
                # The namespace is this test's alone and deleted after it: a test Redis without
                # persistence loses nothing anyone relies on.
                warnings.simplefilter("ignore", RuntimeWarning)
                if redis:
                    options.setdefault("durability", "warn")
                self.switches = KillSwitches.from_url(
                    url,
                    namespace=self.namespace,
                    key_prefix=f"{self.namespace}:",
                    session=self.session,
                    **options,
                )
            if redis:
                # A brand-new Redis namespace reads engaged until seeded (see KillSwitches.seed).
                self.switches.seed(reason="new test namespace", actor=self.ctx)
        else:  # a repository's own KillSwitchStore object
            self.switches = KillSwitches(url, session=self.session, **options)
        """The switches: hand them (or their ``guard``) to the code under test."""
        self._record = recorder or _ignore
        self._initial: dict[str, bool] = {}

    def _touch(self, switch: str) -> str:
        name = check_switch(switch)
        if name not in self._initial:
            state = self.switches.state(name)
            self._initial[name] = bool(state.record and state.record.engaged)
        self._record("exercised", name)
        return name

    def engage(self, switch: str, *, reason: str = "test scenario") -> None:
        """Engage ``switch`` (restored by :meth:`restore`)."""
        name = self._touch(switch)
        self.switches.engage(name, reason=reason, actor=self.ctx)
        self._record("engaged", name)

    def release(self, switch: str, *, reason: str = "test scenario") -> None:
        """Release ``switch`` (restored by :meth:`restore`)."""
        name = self._touch(switch)
        self.switches.release(name, reason=reason, actor=self.ctx)
        self._record("released", name)

    def is_engaged(self, switch: str) -> bool:
        """Return whether ``switch`` reads engaged."""
        return self.switches.is_engaged(switch)

    @contextmanager
    def engaged(self, switch: str, *, reason: str = "test scenario") -> Iterator[None]:
        """Engage ``switch`` for the ``with`` block, then put it back as it was."""
        name = self._touch(switch)
        before = self.switches.state(name)
        was_engaged = bool(before.record and before.record.engaged)
        if not was_engaged:
            self.engage(name, reason=reason)
        try:
            yield
        finally:
            if not was_engaged:
                self.release(name, reason=f"end of: {reason}")

    def assert_blocked(
        self, switch: str, func: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> KillSwitchEngaged:
        """Engage ``switch``, call ``func``, and fail unless it raises KillSwitchEngaged."""
        with self.engaged(switch):
            try:
                func(*args, **kwargs)
            except KillSwitchEngaged as exc:
                self._record("blocked", check_switch(switch))
                return exc
        raise AssertionError(
            f"{getattr(func, '__qualname__', func)!r} ran while kill switch {switch} was engaged"
        )

    def assert_allowed(
        self, switch: str, func: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        """Engage ``switch``, call ``func``, fail if a kill switch blocks it; return the result."""
        with self.engaged(switch):
            try:
                result = func(*args, **kwargs)
            except KillSwitchEngaged as exc:
                raise AssertionError(
                    f"{getattr(func, '__qualname__', func)!r} was blocked by kill switch "
                    f"{exc.switch} while only {switch} was engaged"
                ) from exc
        self._record("allowed", check_switch(switch))
        return result

    def restore(self) -> None:
        """Put every touched switch back as it was, then drop the namespace from a shared store."""
        try:
            for name, was_engaged in self._initial.items():
                state = self.switches.state(name)
                now_engaged = bool(state.record and state.record.engaged)
                if now_engaged != was_engaged:
                    flip = self.switches.engage if was_engaged else self.switches.release
                    flip(name, reason="restored after the test", actor=self.ctx)
            self._initial.clear()
            _purge(self.switches)
        finally:
            self.switches.close()


def _purge(switches: KillSwitches) -> None:
    # The namespace was the test's alone: leave nothing behind in a shared database or Redis.
    store: Any = switches.store
    if store.kind in ("sqlite", "postgresql"):
        from pytest_reliability.ops._tables import ops_kill_switches as t

        with store.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.namespace == store.namespace))
    elif store.kind == "redis":
        store._client.delete(store.key, store.versions, store.marker)
