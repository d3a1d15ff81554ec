"""Abuse protection: detectors, the four tiers, fail-closed decisions, middleware.

Start with :meth:`AbuseProtection.from_url` and :meth:`AbuseProtection.decide`; see
``docs/abuse.md`` for the tiers, the detectors, the policy and the failure behaviour. Public
names load on first use, so importing this package costs neither SQLAlchemy nor redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_reliability._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_reliability.security.abuse_protection._auditing import (
        AUDIT_BLOCK_EXPIRED,
        AUDIT_ENFORCED,
        AUDIT_ESCALATED,
        AUDIT_UNBLOCKED,
        OUTBOX_CAP,
    )
    from pytest_reliability.security.abuse_protection._detectors import (
        DEFAULT_PROBE_PATHS,
        AuthSpam,
        Check,
        Detector,
        ErrorShare,
        RequestBurst,
        Scraping,
        Threshold,
    )
    from pytest_reliability.security.abuse_protection._memory_store import (
        MemoryAbuseStore,
    )
    from pytest_reliability.security.abuse_protection._middleware import (
        AbuseASGIMiddleware,
        AbuseWSGIMiddleware,
        SubjectExtractor,
    )
    from pytest_reliability.security.abuse_protection._model import (
        SUBJECT_MAX_LENGTH,
        Decision,
        Signal,
        SignalKind,
        Tier,
        subject_label,
    )
    from pytest_reliability.security.abuse_protection._ops import (
        PERMISSION_BLOCK,
        PERMISSION_READ,
        PERMISSION_UNBLOCK,
        AbuseOps,
        OpsAuthorizer,
    )
    from pytest_reliability.security.abuse_protection._policy import (
        DEFAULT_BLOCK_LADDER,
        AbusePolicy,
        DetectorFactory,
        known_detectors,
        register_detector,
    )
    from pytest_reliability.security.abuse_protection._protection import (
        AbuseProtection,
        SubjectStatus,
    )
    from pytest_reliability.security.abuse_protection._scenario import (
        AbuseScenario,
    )
    from pytest_reliability.security.abuse_protection._store import (
        STORE_KIND,
        AbuseStore,
        store_from_url,
    )

__all__ = [
    "AUDIT_BLOCK_EXPIRED",
    "AUDIT_ENFORCED",
    "AUDIT_ESCALATED",
    "AUDIT_UNBLOCKED",
    "DEFAULT_BLOCK_LADDER",
    "DEFAULT_PROBE_PATHS",
    "OUTBOX_CAP",
    "PERMISSION_BLOCK",
    "PERMISSION_READ",
    "PERMISSION_UNBLOCK",
    "STORE_KIND",
    "SUBJECT_MAX_LENGTH",
    "AbuseASGIMiddleware",
    "AbuseOps",
    "AbusePolicy",
    "AbuseProtection",
    "AbuseScenario",
    "AbuseStore",
    "AbuseWSGIMiddleware",
    "AuthSpam",
    "Check",
    "Decision",
    "Detector",
    "DetectorFactory",
    "ErrorShare",
    "MemoryAbuseStore",
    "OpsAuthorizer",
    "RequestBurst",
    "Scraping",
    "Signal",
    "SignalKind",
    "SubjectExtractor",
    "SubjectStatus",
    "Threshold",
    "Tier",
    "known_detectors",
    "register_detector",
    "store_from_url",
    "subject_label",
]

_HOMES = {
    "AUDIT_BLOCK_EXPIRED": "._auditing",
    "AUDIT_ENFORCED": "._auditing",
    "AUDIT_ESCALATED": "._auditing",
    "AUDIT_UNBLOCKED": "._auditing",
    "AbuseASGIMiddleware": "._middleware",
    "AbuseOps": "._ops",
    "AbusePolicy": "._policy",
    "AbuseProtection": "._protection",
    "AbuseScenario": "._scenario",
    "AbuseStore": "._store",
    "AbuseWSGIMiddleware": "._middleware",
    "AuthSpam": "._detectors",
    "Check": "._detectors",
    "DEFAULT_BLOCK_LADDER": "._policy",
    "DEFAULT_PROBE_PATHS": "._detectors",
    "Decision": "._model",
    "Detector": "._detectors",
    "DetectorFactory": "._policy",
    "ErrorShare": "._detectors",
    "MemoryAbuseStore": "._memory_store",
    "OUTBOX_CAP": "._auditing",
    "OpsAuthorizer": "._ops",
    "PERMISSION_BLOCK": "._ops",
    "PERMISSION_READ": "._ops",
    "PERMISSION_UNBLOCK": "._ops",
    "RequestBurst": "._detectors",
    "STORE_KIND": "._store",
    "SUBJECT_MAX_LENGTH": "._model",
    "Scraping": "._detectors",
    "Signal": "._model",
    "SignalKind": "._model",
    "SubjectExtractor": "._middleware",
    "SubjectStatus": "._protection",
    "Threshold": "._detectors",
    "Tier": "._model",
    "known_detectors": "._policy",
    "register_detector": "._policy",
    "store_from_url": "._store",
    "subject_label": "._model",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
