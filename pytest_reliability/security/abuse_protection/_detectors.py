"""The detectors: small classes that turn a signal into counter checks.

A detector never touches a store. For each signal it returns :class:`Check` tuples, and the
store applies them atomically with the tier rules (``_transition``). Every store, in memory, SQL
or Redis, implements the same three primitives, so a repository's own detector works on all of
them unchanged:

* ``"c"`` (count): add ``arg`` to a sliding-window counter ``name`` and trigger when the
  estimate exceeds ``limit`` (a negative limit only counts);
* ``"d"`` (distinct): add the digest ``arg`` to a windowed set ``name`` and trigger when the
  estimated number of distinct members exceeds ``limit``;
* ``"r"`` (ratio): trigger when counter ``name`` divided by counter ``arg`` (same window) reaches
  ``limit``, once the divisor is at least ``extra``.

``row`` is 0 for the subject's own state, 1 for the account a signal names (auth spam counts
per account across subjects). The windowed counters are explained in ``docs/abuse.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol, final, runtime_checkable

from pytest_reliability.errors import InvalidAbusePolicy
from pytest_reliability.security.abuse_protection._model import (
    _AUTH_FAILURE,
    _REQUEST,
    _RESPONSE,
    Signal,
    Tier,
    member_hash,
)

__all__ = [
    "DEFAULT_PROBE_PATHS",
    "AuthSpam",
    "Check",
    "Detector",
    "ErrorShare",
    "RequestBurst",
    "Scraping",
    "Threshold",
]

MAX_WINDOW: Final = 30 * 86400.0
"""The longest window a threshold may use (seconds)."""


class Check(NamedTuple):
    """One primitive a store applies for a signal (see the module docstring)."""

    row: int
    kind: str
    name: str
    window_ms: int
    limit: float
    arg: Any
    detector: str
    tier: int
    reason: str
    extra: float = 0.0


def _seconds(what: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0.001 <= value <= MAX_WINDOW
    ):
        raise InvalidAbusePolicy(f"{what} {value!r}: need a number of seconds in [0.001, 30 days]")
    return float(value)


def _count(what: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 10**9:
        raise InvalidAbusePolicy(f"{what} {value!r}: need a whole number >= {minimum}")
    return value


def _escalating_tier(what: str, value: object) -> Tier:
    tier = Tier.parse(value)
    if tier is Tier.NORMAL:
        raise InvalidAbusePolicy(f"{what}: a threshold must escalate to WARN, THROTTLE or BLOCK")
    return tier


@final
@dataclass(frozen=True, slots=True)
class Threshold:
    """More than ``limit`` events in ``window`` seconds escalates the subject to ``tier``."""

    window: float
    limit: int
    tier: Tier = Tier.THROTTLE

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _seconds("threshold window", self.window))
        object.__setattr__(self, "limit", _count("threshold limit", self.limit))
        object.__setattr__(self, "tier", _escalating_tier("threshold tier", self.tier))

    @property
    def window_ms(self) -> int:
        """The window in whole milliseconds (what the stores count in)."""
        return max(1, round(self.window * 1000))

    @classmethod
    def parse(cls, value: object, what: str) -> Threshold:
        """Build one from ``{"window": s, "limit": n, "tier": "throttle"}`` (policy files)."""
        if isinstance(value, Threshold):
            return value
        if not isinstance(value, Mapping):
            raise InvalidAbusePolicy(f"{what} must be a mapping with window, limit and tier")
        _only(value, {"window", "limit", "tier"}, what)
        if "window" not in value or "limit" not in value:
            raise InvalidAbusePolicy(f"{what} needs a window and a limit")
        return cls(value["window"], value["limit"], value.get("tier", Tier.THROTTLE))


@final
@dataclass(frozen=True, slots=True)
class ErrorShare:
    """At least ``share`` of a subject's responses in ``window`` seconds being one of
    ``statuses`` (404/401/403), over at least ``min_responses`` responses, escalates to
    ``tier``: the mark of a scanner walking paths that do not exist or are not its own."""

    window: float = 60.0
    share: float = 0.5
    min_responses: int = 20
    tier: Tier = Tier.WARN
    statuses: frozenset[int] = frozenset({401, 403, 404})

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _seconds("error share window", self.window))
        if (
            isinstance(self.share, bool)
            or not isinstance(self.share, int | float)
            or not 0 < self.share <= 1
        ):
            raise InvalidAbusePolicy(f"error share {self.share!r}: need 0 < share <= 1")
        _count("error share min_responses", self.min_responses)
        object.__setattr__(self, "tier", _escalating_tier("error share tier", self.tier))
        statuses = frozenset(self.statuses)
        if not statuses or not all(
            isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses
        ):
            raise InvalidAbusePolicy(f"error share statuses {sorted(statuses)!r}: HTTP statuses")
        object.__setattr__(self, "statuses", statuses)


def _only(value: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise InvalidAbusePolicy(f"{what}: unknown setting(s) {', '.join(unknown)}")


@runtime_checkable
class Detector(Protocol):
    """What a detector offers: a ``name``, the ``thresholds`` it can trigger (for validation
    and retention) and the checks for one signal."""

    name: str

    def thresholds(self) -> tuple[tuple[float, Tier], ...]:
        """Every (window in seconds, tier) this detector can escalate to."""
        ...

    def checks(self, signal: Signal) -> Iterable[Check]:
        """The checks ``signal`` adds (none when the detector ignores its kind)."""
        ...


@final
class RequestBurst:
    """Requests per subject over one or more windows (short for bursts, long for floods).

    Each window is a sliding-window counter; more than ``limit`` requests in any of them
    escalates to its tier, and the request that goes over is denied.
    """

    __slots__ = ("_checks", "name", "windows")

    def __init__(
        self,
        windows: Iterable[Threshold] = (
            Threshold(1.0, 20, Tier.THROTTLE),
            Threshold(60.0, 300, Tier.THROTTLE),
        ),
        *,
        name: str = "request_burst",
    ) -> None:
        self.name = name
        self.windows = tuple(windows)
        if not self.windows:
            raise InvalidAbusePolicy("request_burst needs at least one window")
        self._checks = tuple(
            Check(
                0,
                "c",
                f"rb{i}",
                t.window_ms,
                t.limit,
                1,
                name,
                int(t.tier),
                f"more than {t.limit} requests in {t.window:g}s",
            )
            for i, t in enumerate(self.windows)
        )

    def thresholds(self) -> tuple[tuple[float, Tier], ...]:
        """Each window and its tier."""
        return tuple((t.window, t.tier) for t in self.windows)

    def checks(self, signal: Signal) -> Iterable[Check]:
        """One count per window for a request; nothing for other signals."""
        return self._checks if signal.kind is _REQUEST else ()


@final
class AuthSpam:
    """Failed authentications: per subject, per account, and the two attack shapes.

    * ``per_subject``: failures by one subject (password guessing);
    * ``per_account``: failures naming one account, from anyone (a targeted account);
    * ``stuffing``: distinct accounts failed by one subject (credential stuffing, lists of
      leaked pairs tried once each);
    * ``spraying``: distinct subjects failing one account (one account tried from many IPs, so
      no single subject goes over ``per_subject``); the subject that goes over is escalated.

    Any of them may be ``None`` to switch it off. Accounts are only ever stored as digests.
    """

    __slots__ = ("name", "per_account", "per_subject", "spraying", "stuffing")

    def __init__(
        self,
        *,
        per_subject: Threshold | None = Threshold(300.0, 10, Tier.THROTTLE),
        per_account: Threshold | None = Threshold(900.0, 20, Tier.THROTTLE),
        stuffing: Threshold | None = Threshold(600.0, 5, Tier.BLOCK),
        spraying: Threshold | None = Threshold(600.0, 10, Tier.BLOCK),
        name: str = "auth_spam",
    ) -> None:
        self.name = name
        self.per_subject, self.per_account = per_subject, per_account
        self.stuffing, self.spraying = stuffing, spraying
        if not any((per_subject, per_account, stuffing, spraying)):
            raise InvalidAbusePolicy("auth_spam needs at least one threshold")

    def thresholds(self) -> tuple[tuple[float, Tier], ...]:
        """The thresholds switched on."""
        on = (self.per_subject, self.per_account, self.stuffing, self.spraying)
        return tuple((t.window, t.tier) for t in on if t is not None)

    def checks(self, signal: Signal) -> Iterable[Check]:
        """Counts and distinct sets for a failed authentication."""
        if signal.kind is not _AUTH_FAILURE or signal.account is None:
            return ()
        out: list[Check] = []
        n = self.name
        if (t := self.per_subject) is not None:
            out.append(
                Check(
                    0,
                    "c",
                    "af",
                    t.window_ms,
                    t.limit,
                    1,
                    n,
                    int(t.tier),
                    f"more than {t.limit} failed logins in {t.window:g}s",
                )
            )
        if (t := self.per_account) is not None:
            out.append(
                Check(
                    1,
                    "c",
                    "af",
                    t.window_ms,
                    t.limit,
                    1,
                    n,
                    int(t.tier),
                    f"more than {t.limit} failed logins on one account",
                )
            )
        if (t := self.stuffing) is not None:
            out.append(
                Check(
                    0,
                    "d",
                    "accts",
                    t.window_ms,
                    t.limit,
                    member_hash(signal.account),
                    n,
                    int(t.tier),
                    f"credential stuffing: more than {t.limit} accounts failed in {t.window:g}s",
                )
            )
        if (t := self.spraying) is not None:
            out.append(
                Check(
                    1,
                    "d",
                    "subjs",
                    t.window_ms,
                    t.limit,
                    member_hash(signal.subject),
                    n,
                    int(t.tier),
                    f"password spraying: one account failed from more "
                    f"than {t.limit} subjects in {t.window:g}s",
                )
            )
        return out


DEFAULT_PROBE_PATHS: Final = (
    "/.env",
    "/.git/config",
    "/.git/head",
    "/.aws/credentials",
    "/.ds_store",
    "/.htaccess",
    "/.svn/entries",
    "/wp-login.php",
    "/wp-admin/",
    "/xmlrpc.php",
    "/phpmyadmin/",
    "/server-status",
    "/config.php",
    "/etc/passwd",
    "/actuator/env",
    "/cgi-bin/",
)
"""Paths no legitimate client of an API asks for (matched case-insensitively, as a suffix, or
as a prefix when they end in ``/``)."""


def _normalise(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0].lower()
    while "//" in path:
        path = path.replace("//", "/")
    return path


@final
class Scraping:
    """Scraping and path probing.

    * ``distinct_paths``: more distinct paths in a window than a client needs (a crawler);
    * ``error_share``: a high share of 404/401/403 answers (a scanner guessing paths);
    * ``probe_paths``: any request for a well-known probe path (``/.env``, ``/wp-login.php``)
      escalates at once to ``probe_tier`` (after ``probe_allowance`` tolerated hits).
    """

    __slots__ = (
        "_distinct",
        "_known",
        "_prefixes",
        "_probe",
        "_responses",
        "_suffixes",
        "distinct_paths",
        "error_share",
        "name",
        "probe_allowance",
        "probe_paths",
        "probe_tier",
        "probe_window",
    )

    def __init__(
        self,
        *,
        distinct_paths: Threshold | None = Threshold(60.0, 100, Tier.THROTTLE),
        error_share: ErrorShare | None = ErrorShare(),
        probe_paths: Iterable[str] = DEFAULT_PROBE_PATHS,
        probe_tier: Tier | str = Tier.BLOCK,
        probe_allowance: int = 0,
        probe_window: float = 3600.0,
        name: str = "scraping",
    ) -> None:
        self.name = name
        self.distinct_paths, self.error_share = distinct_paths, error_share
        paths = tuple(probe_paths)
        for p in paths:
            if not isinstance(p, str) or not p.startswith("/") or len(p) > 256:
                raise InvalidAbusePolicy(f"probe path {p!r} must be text starting with '/'")
        self.probe_paths = tuple(_normalise(p) for p in paths)
        self._prefixes = tuple(p for p in self.probe_paths if p.endswith("/"))
        self._suffixes = tuple(p for p in self.probe_paths if not p.endswith("/"))
        self.probe_tier = _escalating_tier("probe tier", probe_tier)
        self.probe_allowance = _count("probe allowance", probe_allowance, minimum=0)
        self.probe_window = _seconds("probe window", probe_window)
        if distinct_paths is None and error_share is None and not self.probe_paths:
            raise InvalidAbusePolicy("scraping needs distinct_paths, error_share or probe paths")
        self._known: dict[str, bool] = {}
        # The checks' constant parts, made once: these run on every request.
        t = distinct_paths
        self._distinct = (
            None
            if t is None
            else (
                t.window_ms,
                t.limit,
                name,
                int(t.tier),
                f"more than {t.limit} distinct paths in {t.window:g}s",
            )
        )
        self._responses: tuple[tuple[Check, ...], tuple[Check, ...]] | None = None
        if (e := error_share) is not None:
            w = max(1, round(e.window * 1000))
            statuses = "/".join(map(str, sorted(e.statuses)))
            ratio = Check(
                0,
                "r",
                "err",
                w,
                e.share,
                "resp",
                name,
                int(e.tier),
                f"{e.share:.0%} or more of the answers were {statuses}",
                e.min_responses,
            )
            self._responses = tuple(
                (
                    Check(0, "c", "resp", w, -1, 1, name, 0, ""),
                    Check(0, "c", "err", w, -1, bad, name, 0, ""),
                    ratio,
                )
                for bad in (0, 1)
            )  # type: ignore[assignment]
        self._probe = Check(
            0,
            "c",
            "probe",
            max(1, round(self.probe_window * 1000)),
            self.probe_allowance,
            1,
            name,
            int(self.probe_tier),
            "requested a probe path",
        )

    def thresholds(self) -> tuple[tuple[float, Tier], ...]:
        """The thresholds switched on, the probe paths' among them."""
        out: list[tuple[float, Tier]] = []
        if self.distinct_paths is not None:
            out.append((self.distinct_paths.window, self.distinct_paths.tier))
        if self.error_share is not None:
            out.append((self.error_share.window, self.error_share.tier))
        if self.probe_paths:
            out.append((self.probe_window, self.probe_tier))
        return tuple(out)

    def is_probe(self, path: str) -> bool:
        """Whether ``path`` is one of the probe paths (at any depth: ``/app/.env`` is one)."""
        known = self._known.get(path)
        if known is not None:
            return known
        norm = _normalise(path)
        # Every probe path starts with "/", so a match is always at a segment boundary.
        found = norm.rstrip("/").endswith(self._suffixes) or any(
            p in norm + "/" for p in self._prefixes
        )
        if len(self._known) >= 4096:  # an attacker's random paths must not grow it unbounded
            self._known.clear()
        self._known[path] = found
        return found

    def checks(self, signal: Signal) -> Iterable[Check]:
        """Distinct paths and probes for a request; the error share for a response."""
        if signal.kind is _REQUEST:
            path = signal.path
            if path is None:
                return ()
            out: list[Check] = []
            if (d := self._distinct) is not None:
                out.append(Check(0, "d", "paths", d[0], d[1], member_hash(path), *d[2:]))
            if self._suffixes or self._prefixes:
                known = self._known.get(path)
                if known if known is not None else self.is_probe(path):
                    out.append(self._probe)
            return out
        if signal.kind is _RESPONSE and (e := self._responses) is not None:
            good, bad = e
            return bad if signal.status in self.error_share.statuses else good  # type: ignore[union-attr]
        return ()
