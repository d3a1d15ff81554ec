"""What a drill asks each module while its store is faulted, and after: fail closed, or serve.

A probe's :meth:`Probe.ask` makes one real call and answers ``closed`` (the module refused, the
way it promises to: readiness not ready with the reason, health failing with it,
``IdempotencyUnavailable`` with no handler run, switches reading engaged, an audit append
raising, a backup refused with nothing left on disk), ``healthy`` (it served) or ``other``
(anything else, with what happened). Every call is bounded by the module's own timeouts.
A probe may also keep its own history of calls (:meth:`Probe.history`), judged after the drill.
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

from harness.drills.history import AbuseDecision, HistoryVerdict, Window, check_abuse_decisions
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

    def history(self, window: Window) -> HistoryVerdict | None:
        """The probe's own history of calls, judged against the fault's window (None: kept
        nowhere; the traffic's history is the one checked)."""
        del window
        return None

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


class AbuseProbe(Probe):
    """Abuse protection on the store under drill (``AbuseProtection.from_url``): a new subject
    each call is allowed, or denied with the "store unavailable" decision (503, ``Retry-After``);
    a subject blocked through another instance before the fault stays blocked (403) from the
    local cache while the store cannot be read; after recovery, decisions follow the store.

    Calls alternate between a new subject and the blocked one, so the first refusal is not
    held up behind a second call. Every decision is kept for :meth:`history`.
    """

    module = "abuse"
    fail_closed_bound_s = STORE_TIMEOUT + 0.5
    """Each store call is bounded by the store timeout; the refusal follows it."""
    on_store_failure: Literal["deny", "local"] = "deny"
    """The policy's choice; ``"local"`` (a bounded local fallback) is the planted fail-open."""
    BLOCK_S = 3600.0
    """The pre-fault block outlives any drill."""

    def __init__(self, url: str, namespace: str) -> None:
        from pytest_reliability.security import AbusePolicy
        from pytest_reliability.tenancy import tenant_scope

        self.url = url
        self.prefix = f"{namespace}:abuse:" if url.startswith("redis") else ""
        self.tenant = f"{namespace}-abuse"
        self.policy = AbusePolicy(on_store_failure=self.on_store_failure)
        self._id = uuid.uuid4().hex[:8]
        self.blocked = f"blocked-{self._id}"
        self._calls = itertools.count()
        self._lost = False
        """The store lost its data (a Redis killed without persistence): the block went too."""
        self.decisions: list[AbuseDecision] = []
        self.protection = self._open(initialize=True)
        try:
            with tenant_scope(self.tenant):
                self._block_elsewhere(self.blocked)
                # Seen blocked once from the store: this instance's cache now knows it.
                decision = self.protection.decide(self._signal(self.blocked))
            if decision.allowed or decision.status != 403:
                raise RuntimeError(f"abuse drill: the blocked subject was answered {decision}")
        except BaseException:
            self.protection.close()
            raise

    def _open(self, *, initialize: bool = False) -> Any:
        from pytest_reliability.security import AbuseProtection

        options: dict[str, Any]
        if self.url.startswith("redis"):
            # The drill's Redis keeps nothing on disk, by design of its image.
            options = {"prefix": self.prefix, "durability": "warn", "initialize": initialize}
            options |= {"socket_timeout": STORE_TIMEOUT}
        else:
            options = {"timeout": STORE_TIMEOUT}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Redis abuse store", RuntimeWarning)
            return AbuseProtection.from_url(self.url, self.policy, **options)

    @staticmethod
    def _signal(subject: str) -> Any:
        from pytest_reliability.security import Signal

        return Signal.request(subject, "/drill")

    def _block_elsewhere(self, subject: str) -> None:
        """Block ``subject`` through another instance on the same store (an operator's)."""
        other = self._open()
        try:
            other.block(subject, self.BLOCK_S, reason="outage drill", actor="drill-operator")
        finally:
            other.close()

    def _decide(self, subject: str, expect_blocked: bool) -> Any:
        from pytest_reliability.tenancy import tenant_scope

        start = time.time()
        with tenant_scope(self.tenant):
            decision = self.protection.decide(self._signal(subject))
        self.decisions.append(
            AbuseDecision(
                start,
                time.time(),
                subject,
                decision.allowed,
                decision.store_unavailable,
                expect_blocked,
            )
        )
        return decision

    def ask(self) -> Answer:
        n = next(self._calls)
        if n % 2:
            return self._ask_blocked()
        d = self._decide(f"s-{self._id}-{n}", expect_blocked=False)
        if d.allowed:
            if d.store_unavailable:
                return "other", "bad: allowed while its store was unavailable (fail-open)"
            return "healthy", ""
        if d.store_unavailable and d.tier is None and d.status == 503 and d.retry_after > 0:
            return "closed", f"503, Retry-After {d.retry_after_header()}: {d.reason}"
        return "other", f"bad: a new subject denied {d.status} ({d.tier}): {d.reason}"

    def _ask_blocked(self) -> Answer:
        lost = self._lost
        d = self._decide(self.blocked, expect_blocked=not lost)
        if d.allowed:
            if d.store_unavailable:
                return "other", "bad: the blocked subject allowed while its store was unavailable"
            if lost:
                return "healthy", ""  # its block went with the store's data, by design
            return "other", "bad: the subject blocked before the fault was allowed"
        if d.status != 403 and not (lost and d.status == 503):
            return "other", f"bad: the blocked subject was answered {d.status}: {d.reason}"
        if d.store_unavailable:
            return "closed", f"{d.status}, blocked subject: {d.reason}"
        return "healthy", ""

    def after_undo(self, container: ManagedContainer, fault: str) -> None:
        if container.kind == "redis" and fault == "kill":
            # Redis restarted empty: every decision fails closed (StoreDataLost) until an
            # operator re-initialises the store, accepting the loss (the documented recovery).
            self._lost = True
            container.wait_ready(timeout=30)
            self._open(initialize=True).close()

    def after_recovery(self) -> list[str]:
        """Block a new subject through another instance: this one must see it blocked; the
        pre-fault block (when the store kept it) is answered by the store again."""
        from pytest_reliability.tenancy import tenant_scope

        problems = []
        late = f"late-{self._id}"
        with tenant_scope(self.tenant):
            self._block_elsewhere(late)
        checks = [(late, "a subject blocked after recovery")]
        if not self._lost:
            checks.append((self.blocked, "the subject blocked before the fault"))
        bound = 2.0
        for subject, what in checks:
            deadline = time.monotonic() + bound
            while True:
                d = self._decide(subject, expect_blocked=True)
                if not d.allowed and d.status == 403 and not d.store_unavailable:
                    break
                if time.monotonic() > deadline:
                    problems.append(
                        f"{what} was not answered blocked by the store within {bound:g} s "
                        f"after recovery (last {d.status}: {d.reason})"
                    )
                    break
                time.sleep(0.02)
        return problems

    def history(self, window: Window) -> HistoryVerdict:
        return check_abuse_decisions(self.decisions, window, bound_s=self.fail_closed_bound_s)

    def close(self) -> None:
        self.protection.close()
