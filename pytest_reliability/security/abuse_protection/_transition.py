"""The one tier algorithm: a pure function over a subject's stored rows.

Every store runs :func:`transition` (Redis runs its line-by-line Lua twin, ``_redis_script``)
inside its atomic step: under a lock in memory, in a locked transaction in SQL, as one script in
Redis. The rows are plain JSON values, so the SQL store keeps them as text and Redis as a JSON
string. Times are integer milliseconds; ``now`` is first raised to the newest time the rows
have seen, so a clock that goes backwards never shortens a block or reopens a window.

Row 0 is the subject's own: its tier and counters. Row 1, when a signal names an account, is
the account's (counters only). Counters are sliding-window counters: ``[bucket, cur, prev]``,
with ``bucket = now // window`` and the estimate ``prev * (1 - elapsed / window) + cur``.
Distinct sets are ``[bucket, ncur, nprev, {member: bucket last seen}]``, with the same estimate
over members seen in the current and previous buckets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from pytest_reliability.security.abuse_protection._detectors import Check

__all__ = ["Outcome", "Params", "deny_blocked", "transition"]

NORMAL, WARN, THROTTLE, BLOCK = 0, 1, 2, 3
_new = tuple.__new__


class Params(NamedTuple):
    """A policy's tier rules, in the stores' units (milliseconds)."""

    hold: tuple[int, int, int]
    """Quiet time before stepping down from (NORMAL, WARN, THROTTLE)."""
    ladder: tuple[int, ...]
    """Block durations for the 1st, 2nd... block; the last repeats (the cap)."""
    memory: int
    """A subject's offenses are forgotten this long after its last block."""
    throttle_window: int
    throttle_limit: int
    strikes: int
    """Denials while throttled that escalate to BLOCK (0: never)."""
    audit_window: int
    """One enforcement event per subject per window; repeats are counted, not logged."""
    retention: int
    """Rows are kept this long after their last use (or after the block ends)."""


class Outcome(NamedTuple):
    """What one transition decided (the stores return it as a list)."""

    tier: int
    allowed: bool
    retry_ms: int
    detector: str
    reason: str
    from_tier: int
    expired_until: int
    """The end of a block this step saw expire (0: none): one audit event, exactly once."""
    enforce: bool
    """This denial is the first of its audit window: log it, with ``suppressed``."""
    suppressed: int
    offenses: int
    until: int


def _weight(now: int, bucket: int, window: int) -> float:
    return (window - (now - bucket * window)) / window


def _counter(row: dict[str, Any], name: str, window: int, now: int, amount: int) -> float:
    counters = row.get("c")
    if counters is None:
        counters = row["c"] = {}
    bucket = now // window
    c = counters.get(name)
    if c is None:
        c = counters[name] = [bucket, 0, 0]
    elif c[0] != bucket:
        c[2] = c[1] if c[0] == bucket - 1 else 0
        c[1] = 0
        c[0] = bucket
    c[1] += amount
    if not c[2]:
        return float(c[1])
    return float(c[2] * ((window - (now - bucket * window)) / window) + c[1])


def _peek(row: dict[str, Any], name: str, window: int, now: int) -> float:
    c = row.get("c", {}).get(name)
    if c is None:
        return 0.0
    bucket = now // window
    if c[0] == bucket:
        return float(c[2] * _weight(now, bucket, window) + c[1])
    if c[0] == bucket - 1:
        return float(c[1] * _weight(now, bucket, window))
    return 0.0


def _distinct(
    row: dict[str, Any], name: str, window: int, now: int, member: str, limit: float
) -> float:
    sets = row.setdefault("d", {})
    bucket = now // window
    d = sets.get(name)
    if d is None:
        d = sets[name] = [bucket, 0, 0, {}]
    elif d[0] != bucket:
        members = d[3]
        if d[0] == bucket - 1:
            d[3] = {m: b for m, b in members.items() if b == bucket - 1}
            d[2] = len(d[3])
        else:
            d[3] = {}
            d[2] = 0
        d[1] = 0
        d[0] = bucket
    members = d[3]
    seen = members.get(member)
    if seen != bucket:
        if seen is not None:
            d[2] -= 1
            members[member] = bucket
        elif d[1] <= limit:
            members[member] = bucket
        # Past the limit new members are counted but not kept: the set stays bounded.
        d[1] += 1
    return float(d[2] * _weight(now, bucket, window) + d[1])


def _count_wait(c: list[Any] | None, window: int, now: int, limit: float) -> int:
    """Milliseconds until one more event fits under ``limit`` (conservative, at least 1)."""
    if c is None:
        return 1
    bucket = now // window
    elapsed = now - bucket * window
    cur, prev = (c[1], c[2]) if c[0] == bucket else (0, c[1]) if c[0] == bucket - 1 else (0, 0)
    if limit < 1:
        return 2 * window - elapsed
    if cur + 1 <= limit and prev > 0:
        need = math.ceil(window * (1 - (limit - cur - 1) / prev))
        return max(1, need - elapsed)
    if cur + 1 <= limit:
        return 1
    need = math.ceil(window * (1 - (limit - 1) / cur)) if cur > 0 else 0
    return max(1, window - elapsed + need)


def _block_for(s: dict[str, Any], now: int, p: Params) -> int:
    offenses = int(s.get("off", 0)) + 1
    s["off"] = offenses
    s["offat"] = now
    return now + p.ladder[min(offenses, len(p.ladder)) - 1]


def transition(
    rows: Sequence[dict[str, Any]],
    now: int,
    checks: Sequence[Check],
    p: Params,
    *,
    force: tuple[Any, ...] | None = None,
    consume: bool = True,
) -> Outcome:
    """Apply one signal's ``checks`` (or an ops ``force``) to ``rows`` in place; decide."""
    s = rows[0]
    for r in rows:
        seen = r.get("t", 0)
        if seen > now:
            now = seen
    tier = s.get("tier", NORMAL)
    until = s.get("until", 0)
    expired = 0
    if tier == BLOCK and now >= until:
        expired = until
        tier, until = THROTTLE, until + p.hold[THROTTLE]
        s["strk"] = 0
    while NORMAL < tier < BLOCK and now >= until:
        tier -= 1
        until = until + p.hold[tier] if tier else 0
        s["strk"] = 0
    if "off" in s and s["off"] and now - s.get("offat", 0) >= p.memory:
        s["off"] = 0
    from_tier = tier
    allowed, retry, detector, reason = True, 0, "", ""
    if force is not None:
        if force[0] == "block":
            until = max(until if tier == BLOCK else 0, now + int(force[1]))
            tier, allowed, detector, reason = BLOCK, False, "manual", str(force[2])
            retry = until - now
        else:
            tier, until, detector, reason = NORMAL, 0, "manual", str(force[2])
            s["c"], s["d"], s["strk"] = {}, {}, 0
    elif tier == BLOCK:
        allowed, retry = False, until - now
    else:
        over = False
        top = NORMAL
        for ch in checks:
            row = rows[ch.row]
            if ch.kind == "c":
                est = _counter(row, ch.name, ch.window_ms, now, ch.arg)
                hit = ch.limit >= 0 and est > ch.limit
                wait = _count_wait(row["c"][ch.name], ch.window_ms, now, ch.limit) if hit else 0
            elif ch.kind == "d":
                est = _distinct(row, ch.name, ch.window_ms, now, ch.arg, ch.limit)
                hit = est > ch.limit
                wait = 2 * ch.window_ms - now % ch.window_ms
            else:
                den = _peek(row, ch.arg, ch.window_ms, now)
                hit = den >= ch.extra and _peek(row, ch.name, ch.window_ms, now) >= ch.limit * den
                wait = 2 * ch.window_ms - now % ch.window_ms
            if not hit:
                continue
            if ch.tier > top:
                top, detector, reason = ch.tier, ch.detector, ch.reason
            if ch.tier >= THROTTLE:
                over = True
                retry = max(retry, wait)
        if top > tier:
            tier = top
            s["strk"] = 0
            until = _block_for(s, now, p) if tier == BLOCK else now + p.hold[tier]
        elif top > NORMAL and tier < BLOCK:
            until = max(until, now + p.hold[tier])  # still at it: the quiet period restarts
        allowed = not over and tier < BLOCK
        if tier == THROTTLE and consume and allowed:
            est = _counter(s, "thr", p.throttle_window, now, 1)
            if est > p.throttle_limit:
                allowed = False
                retry = _count_wait(s["c"]["thr"], p.throttle_window, now, p.throttle_limit)
                detector = detector or "throttle"
                reason = reason or f"over the throttle rate of {p.throttle_limit} per window"
        if not allowed and tier == THROTTLE:
            s["strk"] = strikes = s.get("strk", 0) + 1
            if p.strikes and strikes >= p.strikes:
                tier, until = BLOCK, _block_for(s, now, p)
                detector, reason = "throttle", f"{strikes} requests denied while throttled"
                s["strk"] = 0
        if tier == BLOCK:
            allowed, retry = False, until - now
    enforce, suppressed = False, 0
    if not allowed and force is None:
        window = now // p.audit_window
        if s.get("ew") != window:
            enforce, suppressed = True, s.get("es", 0)
            s["ew"], s["es"] = window, 0
        else:
            s["es"] = s.get("es", 0) + 1
    s["tier"], s["until"] = tier, until
    expires = (until if until > now else now) + p.retention
    for r in rows:
        r["t"] = now
        r["x"] = expires
    # tuple.__new__ directly: the NamedTuple's own __new__ is a Python call on the hot path.
    return _new(
        Outcome,
        (
            tier,
            allowed,
            retry if retry > 0 else 0,
            detector,
            reason,
            from_tier,
            expired,
            enforce,
            suppressed,
            s.get("off", 0),
            until,
        ),
    )


def deny_blocked(s: dict[str, Any], now: int, p: Params) -> int:
    """:func:`transition`'s step for a subject still blocked, when that step audits nothing.

    A blocked subject's signals count nothing (no detector's check is applied), so the step is
    only the denial: the block's retry, the offense memory's decay, one more suppressed repeat
    of the audit window's enforcement event, and the row's newest time. This does exactly that
    to the subject's own row ``s`` and returns the retry in milliseconds, equal to what
    ``transition([s], now, checks, p)`` would return and leave, for any ``checks``. It returns
    0 and changes nothing when the case is not that one (not blocked, the block ended, or the
    first denial of a new audit window, which must be recorded): run :func:`transition` then.
    """
    seen = s.get("t", 0)
    if seen > now:
        now = seen
    until: int = s.get("until", 0)
    if s.get("tier") != BLOCK or now >= until or s.get("ew") != now // p.audit_window:
        return 0
    if s.get("off") and now - s.get("offat", 0) >= p.memory:
        s["off"] = 0
    s["es"] = s.get("es", 0) + 1
    s["t"] = now
    # "x" stays: every step that leaves a row blocked sets it to until + retention, and until
    # has not moved since.
    return until - now
