"""Bad input: malformed policies and signals are typed errors, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_reliability.errors import (
    AllowListedSubject,
    ConfigurationError,
    InvalidAbusePolicy,
    InvalidInput,
    InvalidSignal,
    TenantRequired,
)
from pytest_reliability.security.abuse_protection import (
    AbusePolicy,
    AbuseProtection,
    AuthSpam,
    ErrorShare,
    MemoryAbuseStore,
    RequestBurst,
    Scraping,
    Signal,
    SignalKind,
    Threshold,
    Tier,
    known_detectors,
    register_detector,
)

pytestmark = pytest.mark.abuse


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Threshold(0, 5), "window"),
        (lambda: Threshold(-1, 5), "window"),
        (lambda: Threshold(float("nan"), 5), "window"),
        (lambda: Threshold(10, 0), "limit"),
        (lambda: Threshold(10, -3), "limit"),
        (lambda: Threshold(10, 2.5), "limit"),
        (lambda: Threshold(10, 5, "NORMAL"), "must escalate"),
        (lambda: Threshold(10, 5, "PANIC"), "unknown tier"),
        (lambda: ErrorShare(share=0), "share"),
        (lambda: ErrorShare(share=1.5), "share"),
        (lambda: ErrorShare(statuses=frozenset({999})), "statuses"),
        (lambda: RequestBurst(()), "at least one window"),
        (
            lambda: AuthSpam(per_subject=None, per_account=None, stuffing=None, spraying=None),
            "at least one",
        ),
        (lambda: Scraping(probe_paths=("no-slash",)), "probe path"),
        (lambda: AbusePolicy(detectors=()), "at least one detector"),
        (lambda: AbusePolicy(warn_hold=0), "warn_hold"),
        (lambda: AbusePolicy(throttle_rate=0), "throttle_rate"),
        (lambda: AbusePolicy(block_ladder=()), "block_ladder"),
        (lambda: AbusePolicy(block_ladder=(600.0, 60.0)), "must not decrease"),
        (lambda: AbusePolicy(block_ladder=(0.5,)), "block_ladder"),
        (lambda: AbusePolicy(on_store_failure="allow"), "on_store_failure"),  # type: ignore[arg-type]
        (lambda: AbusePolicy(allow_networks=("10.0.0.0/33",)), "CIDR"),
        (lambda: AbusePolicy(detectors=(RequestBurst(), RequestBurst())), "two detectors"),
        (lambda: AbusePolicy(detectors=(object(),)), "not a detector"),  # type: ignore[arg-type]
        # Nothing reaches BLOCK and throttling never escalates: the policy cannot escalate.
        (lambda: AbusePolicy(detectors=(RequestBurst(),), throttle_strikes=0), "cannot escalate"),
        (
            lambda: AbusePolicy(
                detectors=(
                    Scraping(
                        distinct_paths=Threshold(1, 1, "warn"), error_share=None, probe_paths=()
                    ),
                )
            ),
            "cannot escalate",
        ),
    ],
)
def test_a_bad_policy_is_refused_when_it_is_built(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(InvalidAbusePolicy, match=message):
        build()
    assert issubclass(InvalidAbusePolicy, ConfigurationError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a mapping"),
        ({"detectors": {"sql_injection": {}}}, "unknown detector 'sql_injection'"),
        ({"detectors": {"request_burst": {"windows": [{"window": 1, "limit": 0}]}}}, "limit"),
        (
            {"detectors": {"request_burst": {"windows": [{"window": 1, "limit": 5, "tier": "x"}]}}},
            "unknown tier",
        ),
        ({"detectors": {"auth_spam": {"per_subject": {"window": -1, "limit": 3}}}}, "window"),
        ({"detectors": {"auth_spam": {"per_user": {}}}}, "unknown setting"),
        ({"detectors": {"scraping": {"probe_tier": "normal"}}}, "must escalate"),
        ({"detectors": []}, "must map"),
        ({"throttle_hold": "10"}, "throttle_hold"),
        ({"colour": "red"}, "unknown setting"),
        ({"allow_subjects": "ci"}, "must be a list"),
        ({"allow_subjects": [["x"]]}, "allow_subjects"),
    ],
)
def test_a_bad_policy_mapping_names_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(InvalidAbusePolicy, match=message):
        AbusePolicy.from_mapping(data)


def test_a_policy_mapping_builds_the_detectors_it_names() -> None:
    policy = AbusePolicy.from_mapping(
        {
            "detectors": {
                "request_burst": {"windows": [{"window": 1, "limit": 20, "tier": "throttle"}]},
                "auth_spam": None,
                "scraping": {"probe_tier": "block", "error_share": None},
            },
            "block_ladder": [60, 600],
            "allow_networks": ["10.0.0.0/8"],
            "on_store_failure": "local",
        }
    )
    assert [d.name for d in policy.detectors] == ["request_burst", "auth_spam", "scraping"]
    assert policy.block_ladder == (60.0, 600.0)
    assert policy.allow_listed("10.9.9.9")
    assert {"request_burst", "auth_spam", "scraping"} <= set(known_detectors())


def test_a_repository_registers_its_own_detector() -> None:
    class Uploads:
        name = "uploads"

        def thresholds(self) -> tuple[tuple[float, Tier], ...]:
            return ((60.0, Tier.BLOCK),)

        def checks(self, signal: Signal) -> tuple[Any, ...]:
            from pytest_reliability.security.abuse_protection import Check

            if signal.path != "/upload":
                return ()
            return (Check(0, "c", "up", 60_000, 2, 1, "uploads", 3, "too many uploads"),)

    register_detector("uploads", lambda: Uploads(), replace=True)
    with pytest.raises(InvalidAbusePolicy, match="already registered"):
        register_detector("uploads", lambda: Uploads())
    policy = AbusePolicy.from_mapping({"detectors": {"uploads": {}}})
    from pytest_reliability.tenancy import tenant_scope

    with tenant_scope("acme"):
        p = AbuseProtection(MemoryAbuseStore(), policy)
        tiers = [p.decide(Signal.request("192.0.2.1", "/upload")).tier for _ in range(3)]
    assert tiers == [Tier.NORMAL, Tier.NORMAL, Tier.BLOCK]


@pytest.mark.parametrize(
    "subject",
    ["", "a" * 257, "ab\x00c", "line\nbreak", "tab\there", "with space", "\u200bzero", "e\x7f"],
)
def test_a_malformed_subject_is_refused_and_nothing_is_written(subject: str) -> None:
    store = MemoryAbuseStore()
    with pytest.raises(InvalidSignal):
        Signal.request(subject, "/")
    with pytest.raises(InvalidSignal):
        Signal.auth_failure("192.0.2.1", subject)
    assert store.read("acme", subject) is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: Signal("login", "192.0.2.1"),  # type: ignore[arg-type]
        lambda: Signal(SignalKind.RESPONSE, "192.0.2.1"),
        lambda: Signal.response("192.0.2.1", 99),
        lambda: Signal.response("192.0.2.1", True),  # type: ignore[arg-type]
        lambda: Signal(SignalKind.AUTH_FAILURE, "192.0.2.1"),
        lambda: Signal.request("192.0.2.1", b"/"),  # type: ignore[arg-type]
        lambda: Signal.request(None, "/"),  # type: ignore[arg-type]
    ],
)
def test_other_malformed_signals_are_typed_errors(build: Callable[[], Any]) -> None:
    with pytest.raises(InvalidSignal):
        build()
    assert issubclass(InvalidSignal, InvalidInput)
    assert issubclass(InvalidSignal, ValueError)


def test_deciding_needs_a_tenant_and_a_signal() -> None:
    p = AbuseProtection(MemoryAbuseStore())
    with pytest.raises(TenantRequired):
        p.decide(Signal.request("192.0.2.1"))
    from pytest_reliability.tenancy import tenant_scope

    with tenant_scope("acme"), pytest.raises(InvalidSignal):
        p.decide("192.0.2.1")  # type: ignore[arg-type]


def test_ops_cannot_block_an_allow_listed_subject_or_block_for_nonsense() -> None:
    from pytest_reliability.tenancy import tenant_scope

    store = MemoryAbuseStore()
    p = AbuseProtection(store, AbusePolicy(allow_networks=("10.0.0.0/8",)))
    with tenant_scope("acme"):
        with pytest.raises(AllowListedSubject):
            p.block("10.1.1.1", 60, reason="x", actor="ops")
        for duration in (0, -5, 10**9, float("nan")):
            with pytest.raises(InvalidSignal):
                p.block("192.0.2.1", duration, reason="x", actor="ops")
        with pytest.raises(InvalidSignal):
            p.unblock("", reason="x", actor="ops")
    assert store.read("acme", "10.1.1.1") is None
    assert store.read("acme", "192.0.2.1") is None


# -- fuzzing the two parsers of outside input --------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "detectors",
        "warn_hold",
        "throttle_rate",
        "block_ladder",
        "allow_subjects",
        "allow_networks",
        "on_store_failure",
        "request_burst",
        "auth_spam",
        "scraping",
        "windows",
        "window",
        "limit",
        "tier",
        "per_subject",
        "probe_paths",
        "error_share",
        "share",
    ]
)
_policy_like = st.recursive(
    _json, lambda inner: st.dictionaries(_keys, inner, max_size=5), max_leaves=25
)


@settings(max_examples=150, deadline=None)
@given(_policy_like)
def test_any_policy_mapping_builds_a_policy_or_raises_invalid_abuse_policy(data: Any) -> None:
    try:
        policy = AbusePolicy.from_mapping(data)
    except InvalidAbusePolicy:
        return
    assert policy.detectors
    assert policy.params().ladder


@settings(max_examples=300, deadline=None)
@given(
    subject=st.text(max_size=300),
    path=st.text(max_size=50),
    account=st.text(max_size=300),
    status=st.integers(-10, 1000),
)
def test_any_signal_text_builds_a_valid_signal_or_raises_invalid_signal(
    subject: str, path: str, account: str, status: int
) -> None:
    from pytest_reliability.tenancy import tenant_scope

    p = AbuseProtection(MemoryAbuseStore())
    for build in (
        lambda: Signal.request(subject, path),
        lambda: Signal.auth_failure(subject, account),
        lambda: Signal.response(subject, status, path),
    ):
        try:
            signal = build()
        except InvalidSignal:
            continue
        assert signal.subject.isprintable()
        assert 0 < len(signal.subject) <= 256
        with tenant_scope("fuzz"):
            assert p.decide(signal).status in (200, 403, 429)
