"""The abuse policy: which detectors run, how tiers escalate and decay, who is never blocked.

A policy is validated when it is built (in code, or from a mapping read from a file with
:meth:`AbusePolicy.from_mapping`); a bad one raises
:class:`~pytest_reliability.errors.InvalidAbusePolicy` naming what is wrong, before any store
is touched. Repositories add detectors with :func:`register_detector`; a policy mapping then
names them like the built-in ones.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, final

from pytest_reliability.errors import InvalidAbusePolicy
from pytest_reliability.security.abuse_protection._detectors import (
    AuthSpam,
    Detector,
    ErrorShare,
    RequestBurst,
    Scraping,
    Threshold,
    _count,
    _only,
    _seconds,
)
from pytest_reliability.security.abuse_protection._model import Tier
from pytest_reliability.security.abuse_protection._transition import Params

__all__ = [
    "DEFAULT_BLOCK_LADDER",
    "AbusePolicy",
    "DetectorFactory",
    "known_detectors",
    "register_detector",
]

DEFAULT_BLOCK_LADDER: Final = (60.0, 300.0, 1800.0, 7200.0, 86400.0)
"""Block durations (seconds) for a subject's 1st, 2nd, 3rd... block; the last is the cap."""
MAX_BLOCK: Final = 30 * 86400.0
"""No block lasts longer than this, whatever the ladder says."""

StoreFailure = Literal["deny", "local"]

DetectorFactory = Callable[..., Detector]
"""``factory(**settings)`` builds a detector from a policy mapping's settings for it."""

_detectors_lock = threading.Lock()
_detector_factories: dict[str, DetectorFactory] = {}


def register_detector(name: str, factory: DetectorFactory, *, replace: bool = False) -> None:
    """Let policy mappings name ``name``: ``{"detectors": {name: {settings}}}`` calls
    ``factory(**settings)``. Registering a taken name needs ``replace=True``."""
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise InvalidAbusePolicy(f"detector name {name!r} must be a lower-case identifier")
    with _detectors_lock:
        taken = _detector_factories.get(name)
        if taken is not None and taken is not factory and not replace:
            raise InvalidAbusePolicy(f"detector {name!r} is already registered")
        _detector_factories[name] = factory


def known_detectors() -> tuple[str, ...]:
    """The detector names a policy mapping may use, sorted."""
    with _detectors_lock:
        return tuple(sorted(_detector_factories))


def _thresholds(settings: Mapping[str, Any], names: Iterable[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in names:
        if key in settings:
            value = settings[key]
            out[key] = None if value is None else Threshold.parse(value, f"{what}.{key}")
    return out


def _burst(**settings: Any) -> Detector:
    _only(settings, {"windows"}, "request_burst")
    windows = settings.get("windows")
    if windows is None:
        return RequestBurst()
    if not isinstance(windows, list | tuple):
        raise InvalidAbusePolicy("request_burst.windows must be a list of thresholds")
    return RequestBurst(
        Threshold.parse(w, f"request_burst.windows[{i}]") for i, w in enumerate(windows)
    )


def _auth(**settings: Any) -> Detector:
    keys = ("per_subject", "per_account", "stuffing", "spraying")
    _only(settings, set(keys), "auth_spam")
    return AuthSpam(**_thresholds(settings, keys, "auth_spam"))


def _scraping(**settings: Any) -> Detector:
    allowed = {"distinct_paths", "error_share", "probe_paths", "probe_tier", "probe_allowance"}
    _only(settings, allowed | {"probe_window"}, "scraping")
    kwargs: dict[str, Any] = _thresholds(settings, ("distinct_paths",), "scraping")
    if "error_share" in settings:
        share = settings["error_share"]
        if share is None:
            kwargs["error_share"] = None
        elif isinstance(share, Mapping):
            fields = {"window", "share", "min_responses", "tier", "statuses"}
            _only(share, fields, "scraping.error_share")
            kwargs["error_share"] = ErrorShare(**dict(share))
        else:
            raise InvalidAbusePolicy("scraping.error_share must be a mapping or null")
    if "probe_paths" in settings:
        paths = settings["probe_paths"]
        if not isinstance(paths, list | tuple):
            raise InvalidAbusePolicy("scraping.probe_paths must be a list of paths")
        kwargs["probe_paths"] = paths
    for key in ("probe_tier", "probe_allowance", "probe_window"):
        if key in settings:
            kwargs[key] = settings[key]
    return Scraping(**kwargs)


register_detector("request_burst", _burst)
register_detector("auth_spam", _auth)
register_detector("scraping", _scraping)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _default_detectors() -> tuple[Detector, ...]:
    return (RequestBurst(), AuthSpam(), Scraping())


@final
@dataclass(frozen=True)
class AbusePolicy:
    """How abuse protection decides. Every duration is in seconds.

    * ``detectors``: what escalates a subject (default: request burst, auth spam, scraping);
    * ``warn_hold`` / ``throttle_hold``: the quiet time after which WARN and THROTTLE step down
      one tier (any new detection restarts it); a block steps down to THROTTLE when it ends;
    * ``throttle_rate``: requests a THROTTLE subject may still make per ``throttle_window``;
    * ``throttle_strikes``: requests denied while throttled that escalate to BLOCK (0: never);
    * ``block_ladder``: the 1st, 2nd, ... block's duration; the last one repeats (the cap);
      ``offense_memory`` after its last block a subject's count of blocks starts again;
    * ``allow_subjects`` / ``allow_networks``: never escalated, never blocked (CIDR for IPs);
    * ``on_store_failure``: ``"deny"`` (default: 503 with ``unavailable_retry_after``) or
      ``"local"`` (decide from this process's memory, bounded to ``local_fallback_subjects``;
      each instance then enforces limits alone, so an attacker spread over N instances gets N
      times the limit while the store is down);
    * ``audit_window``: at most one enforcement event per subject per window;
    * ``blocked_cache_size``: subjects known blocked kept in memory, to stay blocked while the
      store is down.
    """

    detectors: tuple[Detector, ...] = field(default_factory=_default_detectors)
    warn_hold: float = 300.0
    throttle_hold: float = 600.0
    throttle_rate: int = 30
    throttle_window: float = 60.0
    throttle_strikes: int = 20
    block_ladder: tuple[float, ...] = DEFAULT_BLOCK_LADDER
    offense_memory: float = 86400.0
    allow_subjects: frozenset[str] = frozenset()
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    on_store_failure: StoreFailure = "deny"
    unavailable_retry_after: float = 5.0
    audit_window: float = 60.0
    blocked_cache_size: int = 10_000
    local_fallback_subjects: int = 10_000

    def __post_init__(self) -> None:
        detectors = tuple(self.detectors)
        if not detectors:
            raise InvalidAbusePolicy("a policy needs at least one detector")
        names: set[str] = set()
        for d in detectors:
            if not isinstance(d, Detector):
                raise InvalidAbusePolicy(f"{d!r} is not a detector (name, thresholds, checks)")
            if d.name in names:
                raise InvalidAbusePolicy(f"two detectors are named {d.name!r}")
            names.add(d.name)
        object.__setattr__(self, "detectors", detectors)
        for name in ("warn_hold", "throttle_hold", "throttle_window", "offense_memory"):
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))
        for name in ("audit_window", "unavailable_retry_after"):
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))
        _count("throttle_rate", self.throttle_rate)
        _count("throttle_strikes", self.throttle_strikes, minimum=0)
        _count("blocked_cache_size", self.blocked_cache_size)
        _count("local_fallback_subjects", self.local_fallback_subjects)
        ladder = tuple(self.block_ladder)
        if not ladder:
            raise InvalidAbusePolicy("block_ladder needs at least one duration")
        for i, step in enumerate(ladder):
            if (
                isinstance(step, bool)
                or not isinstance(step, int | float)
                or not math.isfinite(step)
                or not 1 <= step <= MAX_BLOCK
            ):
                raise InvalidAbusePolicy(f"block_ladder[{i}] {step!r}: need 1 s to 30 days")
            if i and step < ladder[i - 1]:
                raise InvalidAbusePolicy(
                    "block_ladder must not decrease: repeat offenders wait longer"
                )
        object.__setattr__(self, "block_ladder", tuple(float(s) for s in ladder))
        if self.on_store_failure not in ("deny", "local"):
            raise InvalidAbusePolicy(
                f"on_store_failure {self.on_store_failure!r}: use 'deny' or 'local'"
            )
        subjects = frozenset(self.allow_subjects)
        if not all(isinstance(s, str) and s for s in subjects):
            raise InvalidAbusePolicy("allow_subjects must be non-empty strings")
        object.__setattr__(self, "allow_subjects", subjects)
        networks = []
        for net in self.allow_networks:
            if not isinstance(net, str | ipaddress.IPv4Network | ipaddress.IPv6Network):
                raise InvalidAbusePolicy(f"allow_networks: {net!r} is not a CIDR network")
            try:
                networks.append(ipaddress.ip_network(net, strict=False))
            except (TypeError, ValueError):
                raise InvalidAbusePolicy(f"allow_networks: {net!r} is not a CIDR network") from None
        object.__setattr__(self, "allow_networks", tuple(networks))
        tiers = {tier for d in detectors for _, tier in d.thresholds()}
        if not tiers:
            raise InvalidAbusePolicy("no detector has a threshold: the policy cannot escalate")
        if Tier.BLOCK not in tiers and not (Tier.THROTTLE in tiers and self.throttle_strikes):
            raise InvalidAbusePolicy(
                "the policy cannot escalate to BLOCK: give a threshold tier BLOCK, or "
                "throttle_strikes > 0 with a THROTTLE threshold"
            )

    def params(self) -> Params:
        """The tier rules in the stores' units."""
        windows = [w for d in self.detectors for w, _ in d.thresholds()]
        retention = max(
            2 * max([*windows, self.throttle_window]),
            self.warn_hold + self.throttle_hold,
            self.offense_memory,
        )
        return Params(
            hold=(0, _ms(self.warn_hold), _ms(self.throttle_hold)),
            ladder=tuple(_ms(s) for s in self.block_ladder),
            memory=_ms(self.offense_memory),
            throttle_window=_ms(self.throttle_window),
            throttle_limit=self.throttle_rate,
            strikes=self.throttle_strikes,
            audit_window=_ms(self.audit_window),
            retention=_ms(retention),
        )

    def allow_listed(self, subject: str) -> bool:
        """Whether ``subject`` is on the allow-list (by name, or an IP inside a network)."""
        if subject in self.allow_subjects:
            return True
        if not self.allow_networks:
            return False
        try:
            ip = ipaddress.ip_address(subject)
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self.allow_networks)

    @classmethod
    def from_mapping(cls, data: object) -> AbusePolicy:
        """Build a policy from a mapping (a parsed JSON, YAML or TOML file)::

            {"detectors": {"request_burst": {"windows": [{"window": 1, "limit": 20}]},
                           "auth_spam": {}, "scraping": {"probe_tier": "block"}},
             "warn_hold": 300, "block_ladder": [60, 600], "allow_networks": ["10.0.0.0/8"]}

        Unknown keys, tiers and detector names raise :class:`InvalidAbusePolicy`.
        """
        if not isinstance(data, Mapping):
            raise InvalidAbusePolicy("an abuse policy must be a mapping")
        scalars = {
            "warn_hold",
            "throttle_hold",
            "throttle_rate",
            "throttle_window",
            "throttle_strikes",
            "offense_memory",
            "on_store_failure",
            "unavailable_retry_after",
            "audit_window",
            "blocked_cache_size",
            "local_fallback_subjects",
        }
        _only(
            data,
            scalars | {"detectors", "block_ladder", "allow_subjects", "allow_networks"},
            "abuse policy",
        )
        kwargs: dict[str, Any] = {k: data[k] for k in scalars if k in data}
        if "detectors" in data:
            specs = data["detectors"]
            if not isinstance(specs, Mapping):
                raise InvalidAbusePolicy("detectors must map detector names to their settings")
            detectors: list[Detector] = []
            for name, settings in specs.items():
                with _detectors_lock:
                    factory = _detector_factories.get(name) if isinstance(name, str) else None
                if factory is None:
                    raise InvalidAbusePolicy(
                        f"unknown detector {name!r}: known are {', '.join(known_detectors())}"
                    )
                if settings is None:
                    settings = {}
                if not isinstance(settings, Mapping) or not all(
                    isinstance(k, str) for k in settings
                ):
                    raise InvalidAbusePolicy(f"detector {name!r} settings must be a mapping")
                try:
                    detectors.append(factory(**settings))
                except TypeError as exc:
                    raise InvalidAbusePolicy(f"detector {name!r}: {exc}") from None
            kwargs["detectors"] = tuple(detectors)
        for key in ("block_ladder", "allow_subjects", "allow_networks"):
            if key in data:
                value = data[key]
                if not isinstance(value, list | tuple):
                    raise InvalidAbusePolicy(f"{key} must be a list")
                if key == "allow_subjects" and not all(isinstance(v, str) for v in value):
                    raise InvalidAbusePolicy("allow_subjects must be non-empty strings")
                kwargs[key] = frozenset(value) if key == "allow_subjects" else tuple(value)
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise InvalidAbusePolicy(f"abuse policy: {exc}") from None
