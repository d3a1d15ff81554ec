"""The public surface of ``pytest_reliability.security`` and its abuse protection module."""

from __future__ import annotations

import importlib
import inspect

import pytest

import pytest_reliability.security as security
import pytest_reliability.security.abuse_protection as abuse

pytestmark = pytest.mark.abuse

PUBLIC = {
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
}


def test_all_is_the_intended_public_surface_in_both_packages() -> None:
    assert set(abuse.__all__) == PUBLIC
    assert set(security.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(security, name) is getattr(abuse, name)


def test_every_home_module_lists_what_it_defines() -> None:
    for name, home in abuse._HOMES.items():
        module = importlib.import_module(home, abuse.__name__)
        assert name in module.__all__, f"{home} does not list {name}"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_names_are_documented(name: str) -> None:
    obj = getattr(abuse, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert inspect.getdoc(obj), name


def test_the_store_kind_is_registered_with_the_four_schemes() -> None:
    from pytest_reliability import stores

    abuse.store_from_url("memory://").close()
    assert {"memory", "sqlite", "postgresql", "redis"} <= set(stores.known_schemes("abuse"))
