"""The history check after a drill, in the style of Jepsen: what callers saw against what stuck.

Every request the traffic workers made is in their logs (handler starts, acknowledgements,
refusals); every effect that became durable is a row of the effects table, every audited action
an audit event. Per key, the idempotency checker's model
(:func:`pytest_reliability.testing.exactly_once_violation`) says whether it was exactly-once:
no duplicated effect, no acknowledged effect lost, every acknowledgement the same response.
On top of it, the drill's own rules: no acknowledged action without its audit event, no handler
started while the store could not be claimed, no request let through a kill switch whose store
was unreadable for longer than the staleness bound. A request that failed otherwise (the
handler's own statement cut by a killed server) is no violation: it was not acknowledged.

Abuse protection answers a decision, not an effect: :func:`check_abuse_decisions` judges the
abuse probe's own history (no request allowed while its store was unreadable, no subject known
blocked ever let through).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_reliability.testing import exactly_once_violation

MAX_LISTED = 5
"""Violations of one kind listed by key; the rest are counted."""


@dataclass(frozen=True, slots=True)
class Window:
    """When the fault was in force (wall-clock seconds, comparable across processes).

    ``fault_at`` is when the fault call returned (the container frozen, killed or cut off),
    ``undo_at`` when its undoing began, ``undone_at`` when that call returned: recovery is timed
    from there.
    """

    fault_at: float
    undo_at: float
    undone_at: float


@dataclass(slots=True)
class HistoryVerdict:
    """What the check found: violations per module (``idempotency``, ``audit``, ``kill_switch``)."""

    requests: int = 0
    keys: int = 0
    acknowledged: int = 0
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, module: str, kind: str, keys: list[str]) -> None:
        """Record that ``keys`` broke the rule ``kind`` (listed up to :data:`MAX_LISTED`)."""
        if keys:
            shown = ", ".join(sorted(keys)[:MAX_LISTED])
            more = f" and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
            self.violations[module].append(f"{kind}: {len(keys)} ({shown}{more})")


def check_history(
    entries: Iterable[Mapping[str, Any]],
    effects: Mapping[str, int],
    audit_events: Mapping[str, int] | None,
    window: Window,
    *,
    claim_grace_s: float | None,
    switch_bound_s: float | None,
) -> HistoryVerdict:
    """Judge every request in ``entries`` (the workers' logs) against the durable state.

    ``effects`` and ``audit_events`` count rows per key (``audit_events`` None: the effects
    went where no audit event can join them, and the audit rule is not checked). With
    ``claim_grace_s`` (the faulted store is the idempotency store), a handler that started
    later than that after the fault and before it was undone ran without a claim. With
    ``switch_bound_s``, a request that found the kill switch open later than that after the
    fault (and before the undo) went through a switch that should have read engaged.
    """
    verdict = HistoryVerdict()
    acked: dict[str, list[Any]] = defaultdict(list)
    keys: set[str] = set()
    unclaimed: list[str] = []
    through_switch: list[str] = []
    errors: Counter[str] = Counter()
    for entry in entries:
        key = str(entry.get("key"))
        ev = entry.get("ev")
        t = float(entry.get("t", 0.0))
        if ev == "handler":
            if claim_grace_s is not None and window.fault_at + claim_grace_s < t < window.undo_at:
                unclaimed.append(key)
        elif ev == "early_ack":
            acked[key].append(entry.get("response"))
        elif ev == "done":
            keys.add(key)
            verdict.requests += 1
            outcome = entry.get("outcome")
            start = float(entry.get("start", t))
            if outcome == "ack":
                verdict.acknowledged += 1
                acked[key].append(entry.get("response"))
            elif outcome == "refused":
                verdict.refused += 1
            else:
                errors[str(entry.get("error"))] += 1
            if (
                switch_bound_s is not None
                and entry.get("switch") == "open"
                and window.fault_at + switch_bound_s < start < window.undo_at
            ):
                through_switch.append(key)
    verdict.keys = len(keys | set(acked))
    duplicated: list[str] = []
    lost: list[str] = []
    differing: list[str] = []
    unaudited: list[str] = []
    for key in sorted(keys | set(acked)):
        count = int(effects.get(key, 0))
        problem = exactly_once_violation(count, acked.get(key, []))
        if problem is not None:
            if count > 1:
                duplicated.append(key)
            elif "acknowledged" in problem:
                lost.append(key)
            else:
                differing.append(key)
        if audit_events is not None and int(audit_events.get(key, 0)) != count:
            unaudited.append(key)
    verdict.add("idempotency", "duplicated effects", duplicated)
    verdict.add("idempotency", "acknowledged but lost effects", lost)
    verdict.add("idempotency", "acknowledged responses differ", differing)
    verdict.add("idempotency", "handler ran while the store could not be claimed", unclaimed)
    verdict.add("audit", "effects without exactly one audit event", unaudited)
    verdict.add("kill_switch", "requests let through an unreadable switch store", through_switch)
    verdict.errors = dict(sorted(errors.items()))
    return verdict


@dataclass(frozen=True, slots=True)
class AbuseDecision:
    """One ``decide`` the abuse probe made, as the caller saw it (wall-clock seconds)."""

    start: float
    end: float
    subject: str
    allowed: bool
    store_unavailable: bool
    """The decision said the store could not be read (``Decision.store_unavailable``)."""
    expect_blocked: bool
    """The subject was blocked in the store before the fault, and the store still holds it."""


def check_abuse_decisions(
    decisions: Iterable[AbuseDecision], window: Window, *, bound_s: float
) -> HistoryVerdict:
    """Judge the abuse probe's decisions; violations go under ``abuse``.

    Let through an unreadable store: a decision that allowed while saying the store was
    unavailable (a local fallback), or an allow that reached the caller later than ``bound_s``
    after the fault and before it was undone: a store call is bounded well under ``bound_s``,
    so the store cannot have given it (a decide that swallowed the store's error).
    A subject expected blocked that was allowed, at any time, is a violation of its own.
    """
    verdict = HistoryVerdict()
    through: list[str] = []
    unblocked: list[str] = []
    subjects: set[str] = set()
    for d in decisions:
        verdict.requests += 1
        subjects.add(d.subject)
        if not d.allowed:
            verdict.refused += 1
            continue
        verdict.acknowledged += 1
        if d.store_unavailable or window.fault_at + bound_s < d.end < window.undo_at:
            through.append(d.subject)
        if d.expect_blocked:
            unblocked.append(d.subject)
    verdict.keys = len(subjects)
    # Listed per subject: a blocked subject hammering away is one subject let through.
    through = list(dict.fromkeys(through))
    verdict.add("abuse", "subjects let through an unreadable abuse store", through)
    verdict.add("abuse", "blocked subjects let through", list(dict.fromkeys(unblocked)))
    return verdict
