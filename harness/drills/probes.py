"""What a drill asks each module while its store is faulted, and after: fail closed, or serve.

A probe's :meth:`Probe.ask` makes one real call and answers ``closed`` (the module refused, the
way it promises to: readiness not ready with the reason, health failing with it,
``IdempotencyUnavailable`` with no handler run, switches reading engaged, an audit append
raising, a backup refused with nothing left on disk), ``healthy`` (it served) or ``other``
(anything else, with what happened). Every call is bounded by the module's own timeouts.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Literal

from pytest_reliability.chaos_infra import ManagedContainer

Answer = tuple[Literal["closed", "healthy", "other"], str]

STORE_TIMEOUT = 0.5
"""Seconds the probes' stores, audit log and gates get per call."""
LIBPQ_MIN_CONNECT_S = 2.0
"""libpq's connect timeout counts whole seconds and treats anything under 2 as 2."""
POLL_INTERVAL = 0.25
STALENESS = 1.0
"""The probe's kill switches: read every 0.25 s, engaged once unreadable for 1 s."""


def _admin() -> tuple[Any, Any]:
    from pytest_reliability.audit import InMemoryAuditLog
    from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession

    authz = AuthorizationEngine()
    actor = OpsContext("drill-operator", roles=frozenset({"ops_admin"}))
    return OpsSession(authz, InMemoryAuditLog()), actor


def open_switches(url: str, namespace: str, key_prefix: str, **options: Any) -> Any:
    """Kill switches on ``url`` with the probes' timing and an operator's session.

    On Redis with ``durability="warn"``, silenced: the drill's Redis container keeps nothing on
    disk (its image allows no append-only file), which is the risk the kill drill exercises.
    """
    from pytest_reliability.ops.kill_switch import KillSwitches

    session, _ = _admin()
    settings: dict[str, Any] = {
        "namespace": namespace,
        "key_prefix": key_prefix,
        "store_timeout": STORE_TIMEOUT / 2,
        "poll_interval": POLL_INTERVAL,
        "staleness": STALENESS,
        "env": {},
        "session": session,
        **options,
    }
    if url.startswith("redis"):
        settings["durability"] = "warn"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Redis kill switch store", RuntimeWarning)
        return KillSwitches.from_url(url, **settings)


def seed_switches(url: str, namespace: str, key_prefix: str) -> None:
    """Seed (or re-seed, after it lost its data) a Redis store: every switch released."""
    _, actor = _admin()
    with open_switches(url, namespace, key_prefix, start=False) as seeder:
        seeder.seed(reason="outage drill: store (re)seeded", actor=actor)


class Probe:
    """One module's view of the store under drill."""

    module = "probe"
    fail_closed_bound_s = 1.0
    recover_bound_s = 30.0
    pace_s = 0.02
    """Seconds between two calls."""

    def ask(self) -> Answer:
        """Make one call; say whether the module failed closed or served."""
        raise NotImplementedError

    def after_undo(self, container: ManagedContainer, fault: str) -> None:
        """What an operator does once the fault is undone (nothing, for most modules)."""
        del container, fault

    def after_recovery(self) -> list[str]:
        """Checks once the module serves again; returns violations."""
        return []

    def close(self) -> None:
        """Release what the probe opened."""


class ReadinessProbe(Probe):
    """Readiness on the PostgreSQL under drill: not ready, with the failing gates' reasons."""

    module = "readiness"

    def __init__(self, url: str, switches: Any) -> None:
        from pytest_reliability.db import make_engine
        from pytest_reliability.ops.rbac import OpsSession

        self.engine = make_engine(url, connect_args={"connect_timeout": 2})
        base, _ = _admin()
        self.session = OpsSession(base.authz, base.audit, self.engine, kill_switches=switches)

    def ask(self) -> Answer:
        from pytest_reliability.ops.readiness_gates import run_readiness_gates

        result = run_readiness_gates(self.session, timeout=STORE_TIMEOUT)
        if result.ready:
            return "healthy", ""
        failed = result.failed()
        if failed and all(g.reason for g in failed):
            return "closed", "; ".join(f"{g.name}: {g.reason}" for g in failed)
        return "other", "bad: not ready without a reason"

    def close(self) -> None:
        self.engine.dispose()


class HealthProbe(Probe):
    """The health snapshot: ``fail``, with the database check's reason in its output."""

    module = "health"

    def __init__(self, readiness: ReadinessProbe) -> None:
        self.session = readiness.session

    def ask(self) -> Answer:
        from pytest_reliability.ops.health_checks import get_health_snapshot

        snapshot = get_health_snapshot(self.session, db_timeout=STORE_TIMEOUT)
        database = snapshot.check("database:responseTime")
        if database.status == "fail":
            if snapshot.status == "fail" and database.output and snapshot.output:
                return "closed", database.output
            return "other", "bad: the database check failed without a reason or a failed status"
        if snapshot.status == "pass" or (snapshot.status == "warn" and database.status == "pass"):
            return "healthy", ""
        return "other", f"snapshot {snapshot.status}: {snapshot.output}"


class IdempotencyProbe(Probe):
    """A charge through the engine: ``IdempotencyUnavailable`` with no handler run, or served."""

    module = "idempotency"
    fail_closed_bound_s = STORE_TIMEOUT + 2 * LIBPQ_MIN_CONNECT_S + 0.5
    """A call cut by its deadline loses its connection; the key is then settled, and the next
    call claims, each on a new connection, which libpq bounds by its connect timeout (whole
    seconds, never under 2): the first refusal can come that late, though it usually comes
    after the store timeout."""

    def __init__(self, config: Any, tenant: str) -> None:
        from dataclasses import replace

        from harness.drills.traffic import open_idempotency

        self.engine = open_idempotency(replace(config, store_timeout=STORE_TIMEOUT))
        if (config.idempotency_url or config.database_url).startswith("redis"):
            # Every reply and connect bounded by the socket timeout; a refused call may settle.
            self.fail_closed_bound_s = 3 * STORE_TIMEOUT + 0.5
        self.tenant = tenant
        self._keys = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]

    def ask(self) -> Answer:
        from pytest_reliability.errors import IdempotencyUnavailable
        from pytest_reliability.tenancy import tenant_scope

        ran: list[bool] = []
        key = f"probe-{self._prefix}-{next(self._keys)}"
        try:
            with tenant_scope(self.tenant):
                self.engine.run(
                    operation="drill.probe", key=key, payload={}, handler=lambda a: ran.append(True)
                )
        except IdempotencyUnavailable as exc:
            # The handler may have run when its claim committed just before the fault: its
            # rows share the completion's transaction, so they went with it.
            return "closed", f"{'after the handler ran: ' if ran else ''}{str(exc)[:200]}"
        except Exception as exc:  # judged by the caller: only IdempotencyUnavailable is closed
            return "other", f"{type(exc).__name__}: {str(exc)[:160]}"
        return ("healthy", "") if ran else ("other", "bad: served without running the handler")

    def close(self) -> None:
        self.engine.close()


class AuditProbe(Probe):
    """An audit append: raises (loudly) within its timeout, or is committed."""

    module = "audit"
    fail_closed_bound_s = STORE_TIMEOUT + 0.5

    def __init__(self, url: str, tenants: list[str]) -> None:
        from pytest_reliability.audit import AuditLog
        from pytest_reliability.db import make_engine

        self.engine = make_engine(url)
        self.log = AuditLog(self.engine, timeout=STORE_TIMEOUT)
        self.tenants = tenants

    def ask(self) -> Answer:
        from pytest_reliability.errors import AuditError, StoreUnavailable
        from pytest_reliability.tenancy import tenant_scope

        try:
            with tenant_scope(self.tenants[0]):
                self.log.append("drill.probe", actor="drill", target="probe", outcome="ok")
        except (StoreUnavailable, AuditError) as exc:
            return "closed", f"{type(exc).__name__}: {str(exc)[:160]}"
        except Exception as exc:  # an untyped error is not "failing loudly" as promised
            return "other", f"bad: {type(exc).__name__}: {str(exc)[:160]}"
        return "healthy", ""

    def after_recovery(self) -> list[str]:
        from pytest_reliability.tenancy import tenant_scope

        problems = []
        for tenant in self.tenants:
            with tenant_scope(tenant):
                result = self.log.verify(tenant)
            if not result.ok:
                problems.append(f"audit chain of {tenant} broken after recovery: {result}")
        return problems

    def close(self) -> None:
        self.engine.dispose()


class KillSwitchProbe(Probe):
    """A switch set on the store under drill: engaged once stale, following the store after."""

    module = "kill_switch"
    fail_closed_bound_s = STALENESS + POLL_INTERVAL + STORE_TIMEOUT + 0.25

    def __init__(self, url: str, namespace: str, key_prefix: str) -> None:
        self.url = url
        self.namespace = namespace
        self.key_prefix = key_prefix
        self.switches = open_switches(url, namespace, key_prefix)

    def ask(self) -> Answer:
        state = self.switches.state("BILLING")
        if state.engaged and state.source in ("stale", "env"):
            return "closed", f"BILLING reads engaged ({state.source}): {self.switches.last_error}"
        if not state.engaged and state.source in ("store", "default"):
            return "healthy", ""
        return "other", f"BILLING engaged={state.engaged} from {state.source}"

    def after_undo(self, container: ManagedContainer, fault: str) -> None:
        if container.kind == "redis" and fault == "kill":
            # Redis restarted empty: the store lost its marker, and reads engaged until an
            # operator re-seeds it (the module's documented recovery).
            container.wait_ready(timeout=30)
            seed_switches(self.url, self.namespace, self.key_prefix)

    def after_recovery(self) -> list[str]:
        """Flip BILLING through another instance: this one must follow the store again."""
        _, actor = _admin()
        bound = 2 * POLL_INTERVAL + 1.0
        problems = []
        with open_switches(self.url, self.namespace, self.key_prefix, start=False) as other:
            for engage in (True, False):
                flip = other.engage if engage else other.release
                flip("BILLING", reason="outage drill: follow the store", actor=actor)
                deadline = time.monotonic() + bound
                while self.switches.state("BILLING").engaged != engage:
                    if time.monotonic() > deadline:
                        problems.append(
                            f"did not follow the store ({'engage' if engage else 'release'}) "
                            f"within {bound:g} s after recovery"
                        )
                        break
                    time.sleep(0.02)
        return problems

    def close(self) -> None:
        self.switches.close()


class BackupProbe(Probe):
    """A backup of the PostgreSQL under drill: refused with nothing left behind, or taken; and
    after recovery, a backup that the restore drill (:mod:`pytest_reliability.ops.restore_drill`)
    restores whole into a throwaway cluster."""

    module = "backup"
    fail_closed_bound_s = 12.0
    """pg_dump's connection gets the backup module's 10 s connect timeout; a frozen server
    answers nothing, so the refusal comes after it."""
    recover_bound_s = 60.0
    pace_s = 0.5

    def __init__(self, url: str) -> None:
        from pytest_reliability.audit import InMemoryAuditLog
        from pytest_reliability.ops.backup_engine import BackupEngine

        self.directory = Path(tempfile.mkdtemp(prefix="drill-backups-"))
        _, self.actor = _admin()
        # An in-memory audit sink: the drill is of the dump, not of the audit log's store.
        self.engine = BackupEngine.from_url(url, directory=self.directory, audit=InMemoryAuditLog())

    def ask(self) -> Answer:
        from pytest_reliability.errors import BackupError

        before = set(self.directory.iterdir())
        try:
            backup = self.engine.create(actor=self.actor, reason="outage drill")
        except BackupError as exc:
            left = sorted(p.name for p in set(self.directory.iterdir()) - before)
            if left:
                return "other", f"bad: a failed backup left files behind: {left}"
            return "closed", f"{type(exc).__name__}: {str(exc)[:160]}"
        except Exception as exc:  # judged by the caller: a backup error is the promise
            return "other", f"bad: {type(exc).__name__}: {str(exc)[:160]}"
        self._remove(backup.path)
        return "healthy", ""

    def _remove(self, archive: Path) -> None:
        for path in self.directory.glob(f"{archive.name}*"):
            path.unlink(missing_ok=True)

    def after_recovery(self) -> list[str]:
        """A backup taken after recovery restores whole (tables, rows, audit chains)."""
        from pytest_reliability.ops.restore_drill import run_drill

        backup = self.engine.create(actor=self.actor, reason="outage drill: after recovery")
        try:
            result = run_drill(backup.path)
        finally:
            self._remove(backup.path)
        if not result.ok:
            return [f"the backup taken after recovery did not restore: {result.reason}"]
        return []

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
