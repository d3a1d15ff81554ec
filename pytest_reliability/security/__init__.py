"""Security modules: abuse protection (``pytest_reliability.security.abuse_protection``).

Its public names are re-exported here and load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_reliability._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_reliability.security.abuse_protection import (
        AUDIT_BLOCK_EXPIRED,
        AUDIT_ENFORCED,
        AUDIT_ESCALATED,
        AUDIT_UNBLOCKED,
        DEFAULT_BLOCK_LADDER,
        DEFAULT_PROBE_PATHS,
        STORE_KIND,
        SUBJECT_MAX_LENGTH,
        AbusePolicy,
        AbuseProtection,
        AbuseStore,
        AuthSpam,
        Check,
        Decision,
        Detector,
        DetectorFactory,
        ErrorShare,
        MemoryAbuseStore,
        RequestBurst,
        Scraping,
        Signal,
        SignalKind,
        SubjectStatus,
        Threshold,
        Tier,
        known_detectors,
        register_detector,
        store_from_url,
        subject_label,
    )

__all__ = [
    "AUDIT_BLOCK_EXPIRED",
    "AUDIT_ENFORCED",
    "AUDIT_ESCALATED",
    "AUDIT_UNBLOCKED",
    "DEFAULT_BLOCK_LADDER",
    "DEFAULT_PROBE_PATHS",
    "STORE_KIND",
    "SUBJECT_MAX_LENGTH",
    "AbusePolicy",
    "AbuseProtection",
    "AbuseStore",
    "AuthSpam",
    "Check",
    "Decision",
    "Detector",
    "DetectorFactory",
    "ErrorShare",
    "MemoryAbuseStore",
    "RequestBurst",
    "Scraping",
    "Signal",
    "SignalKind",
    "SubjectStatus",
    "Threshold",
    "Tier",
    "known_detectors",
    "register_detector",
    "store_from_url",
    "subject_label",
]

_HOMES = {
    "AUDIT_BLOCK_EXPIRED": "pytest_reliability.security.abuse_protection",
    "AUDIT_ENFORCED": "pytest_reliability.security.abuse_protection",
    "AUDIT_ESCALATED": "pytest_reliability.security.abuse_protection",
    "AUDIT_UNBLOCKED": "pytest_reliability.security.abuse_protection",
    "AbusePolicy": "pytest_reliability.security.abuse_protection",
    "AbuseProtection": "pytest_reliability.security.abuse_protection",
    "AbuseStore": "pytest_reliability.security.abuse_protection",
    "AuthSpam": "pytest_reliability.security.abuse_protection",
    "Check": "pytest_reliability.security.abuse_protection",
    "DEFAULT_BLOCK_LADDER": "pytest_reliability.security.abuse_protection",
    "DEFAULT_PROBE_PATHS": "pytest_reliability.security.abuse_protection",
    "Decision": "pytest_reliability.security.abuse_protection",
    "Detector": "pytest_reliability.security.abuse_protection",
    "DetectorFactory": "pytest_reliability.security.abuse_protection",
    "ErrorShare": "pytest_reliability.security.abuse_protection",
    "MemoryAbuseStore": "pytest_reliability.security.abuse_protection",
    "RequestBurst": "pytest_reliability.security.abuse_protection",
    "STORE_KIND": "pytest_reliability.security.abuse_protection",
    "SUBJECT_MAX_LENGTH": "pytest_reliability.security.abuse_protection",
    "Scraping": "pytest_reliability.security.abuse_protection",
    "Signal": "pytest_reliability.security.abuse_protection",
    "SignalKind": "pytest_reliability.security.abuse_protection",
    "SubjectStatus": "pytest_reliability.security.abuse_protection",
    "Threshold": "pytest_reliability.security.abuse_protection",
    "Tier": "pytest_reliability.security.abuse_protection",
    "known_detectors": "pytest_reliability.security.abuse_protection",
    "register_detector": "pytest_reliability.security.abuse_protection",
    "store_from_url": "pytest_reliability.security.abuse_protection",
    "subject_label": "pytest_reliability.security.abuse_protection",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
