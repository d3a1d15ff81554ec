"""Tiers, detectors, decay, the block ladder, allow-lists and the clock, on the memory store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.security.abuse_protection import (
    AUDIT_BLOCK_EXPIRED,
    AUDIT_ENFORCED,
    AUDIT_ESCALATED,
    AbusePolicy,
    AbuseProtection,
    AuthSpam,
    ErrorShare,
    RequestBurst,
    Scraping,
    Signal,
    Threshold,
    Tier,
    subject_label,
)
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.abuse

Protect = Callable[..., AbuseProtection]
IP = "203.0.113.9"


def burst_policy(**kw: object) -> AbusePolicy:
    detectors = (RequestBurst((Threshold(10.0, 5, Tier.THROTTLE),)),)
    settings: dict[str, object] = {
        "detectors": detectors, "throttle_rate": 2, "throttle_window": 10.0,
        "throttle_strikes": 4, "block_ladder": (60.0, 300.0, 900.0), "warn_hold": 30.0,
        "throttle_hold": 60.0,
    }  # fmt: skip
    settings.update(kw)
    return AbusePolicy(**settings)  # type: ignore[arg-type]


def test_a_burst_throttles_with_retry_after_and_the_request_over_the_limit_is_denied(
    protect: Protect, audit: InMemoryAuditLog
) -> None:
    p = protect(burst_policy())
    decisions = [p.decide(Signal.request(IP, "/api")) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False, False]
    over = decisions[5]
    assert (over.tier, over.status, over.detector) == (Tier.THROTTLE, 429, "request_burst")
    assert over.escalated
    assert over.escalated_from is Tier.NORMAL
    assert 10.0 <= over.retry_after <= 20.0
    assert over.retry_after_header() is not None
    assert [e.details["to"] for e in audit.events(action=AUDIT_ESCALATED)] == ["THROTTLE"]
    enforced = audit.events(action=AUDIT_ENFORCED)
    assert len(enforced) == 1
    assert enforced[0].target == IP


def test_throttle_lets_the_throttle_rate_through_then_strikes_escalate_to_block(
    protect: Protect, clock: ManualClock
) -> None:
    p = protect(burst_policy())
    for _ in range(6):
        p.decide(Signal.request(IP))
    clock.advance(20)  # the burst window is over; the subject is still THROTTLE
    allowed = [p.decide(Signal.request(IP)).allowed for _ in range(2)]
    assert allowed == [True, True]
    # The request that went over the burst limit was the first strike; two more...
    denied = [p.decide(Signal.request(IP)) for _ in range(2)]
    assert all(d.status == 429 and d.tier is Tier.THROTTLE for d in denied)
    blocked = p.decide(Signal.request(IP))
    assert (blocked.tier, blocked.status, blocked.detector) == (Tier.BLOCK, 403, "throttle")
    assert blocked.retry_after == pytest.approx(60.0)


def test_repeat_offenders_get_the_next_rung_of_the_ladder_up_to_its_cap(
    protect: Protect, clock: ManualClock
) -> None:
    p = protect(
        AbusePolicy(detectors=(Scraping(probe_tier=Tier.BLOCK),), block_ladder=(60.0, 300.0))
    )
    durations = []
    for _ in range(4):
        d = p.decide(Signal.request(IP, "/.env"))
        assert d.tier is Tier.BLOCK
        durations.append(d.retry_after)
        clock.advance(d.retry_after)
    assert durations == [60.0, 300.0, 300.0, 300.0]
    assert p.status(IP).offenses == 4


def test_offenses_are_forgotten_after_the_offense_memory(
    protect: Protect, clock: ManualClock
) -> None:
    p = protect(AbusePolicy(detectors=(Scraping(),), block_ladder=(60.0, 300.0),
                            offense_memory=3600.0))  # fmt: skip
    p.decide(Signal.request(IP, "/.env"))
    clock.advance(3600)
    assert p.decide(Signal.request(IP, "/.git/config")).retry_after == 60.0


def test_tiers_decay_one_step_per_quiet_period(protect: Protect, clock: ManualClock) -> None:
    p = protect(burst_policy())
    p.decide(Signal.request(IP, "/.env"))  # not a detector here: stays NORMAL
    for _ in range(6):
        p.decide(Signal.request(IP))
    assert p.status(IP).tier is Tier.THROTTLE
    clock.advance(59.9)
    assert p.status(IP).tier is Tier.THROTTLE
    clock.advance(0.1)
    assert p.status(IP).tier is Tier.WARN
    clock.advance(29.9)
    assert p.status(IP).tier is Tier.WARN
    clock.advance(0.1)
    assert p.status(IP).tier is Tier.NORMAL


def test_a_block_ends_in_throttle_probation_and_its_expiry_is_audited_once(
    protect: Protect, clock: ManualClock, audit: InMemoryAuditLog
) -> None:
    p = protect(AbusePolicy(detectors=(Scraping(),), block_ladder=(60.0,)))
    p.decide(Signal.request(IP, "/wp-login.php"))
    clock.advance(59.999)
    assert p.decide(Signal.request(IP, "/")).status == 403
    clock.advance(0.001)
    after = p.decide(Signal.request(IP, "/"))
    assert after.allowed
    assert after.tier is Tier.THROTTLE
    assert p.sweep() == 0
    expired = audit.events(action=AUDIT_BLOCK_EXPIRED)
    assert len(expired) == 1
    assert expired[0].details["observed_by"] == "decision"


def test_the_sweeper_records_the_expiry_of_a_subject_that_never_came_back(
    protect: Protect, clock: ManualClock, audit: InMemoryAuditLog
) -> None:
    p = protect(AbusePolicy(detectors=(Scraping(),), block_ladder=(60.0,)))
    p.decide(Signal.request(IP, "/.env"))
    assert p.sweep() == 0
    clock.advance(61)
    assert p.sweep() == 1
    assert p.sweep() == 0
    (event,) = audit.events(action=AUDIT_BLOCK_EXPIRED)
    assert event.details["observed_by"] == "sweeper"
    assert event.target == IP


def test_repeated_denials_are_one_enforcement_event_per_window_with_a_count(
    protect: Protect, clock: ManualClock, audit: InMemoryAuditLog
) -> None:
    p = protect(AbusePolicy(detectors=(Scraping(),), block_ladder=(3600.0,), audit_window=60.0))
    for _ in range(500):
        p.decide(Signal.request(IP, "/.env"))
    clock.advance(60)
    p.decide(Signal.request(IP, "/"))
    enforced = audit.events(action=AUDIT_ENFORCED)
    assert [e.details["suppressed_before"] for e in enforced] == [0, 499]
    assert len(audit.events()) == 3  # the escalation and two enforcement events


def test_credential_stuffing_many_accounts_from_one_subject_blocks_it(protect: Protect) -> None:
    p = protect(AbusePolicy(detectors=(AuthSpam(per_subject=None),)))
    decisions = [p.decide(Signal.auth_failure(IP, f"user{i}@example.com")) for i in range(6)]
    assert [d.tier for d in decisions] == [Tier.NORMAL] * 5 + [Tier.BLOCK]
    assert "credential stuffing" in decisions[-1].reason


def test_password_spraying_one_account_from_many_subjects_blocks_the_subject_going_over(
    protect: Protect,
) -> None:
    p = protect(AbusePolicy(detectors=(AuthSpam(per_subject=None, per_account=None),)))
    subjects = [f"198.51.100.{i}" for i in range(12)]
    decisions = [p.decide(Signal.auth_failure(s, "admin")) for s in subjects]
    assert [d.allowed for d in decisions[:10]] == [True] * 10
    assert decisions[10].tier is Tier.BLOCK
    assert "spraying" in decisions[10].reason
    assert p.status(subjects[0]).tier is Tier.NORMAL


def test_failed_logins_per_subject_and_per_account(protect: Protect) -> None:
    p = protect(
        AbusePolicy(
            detectors=(
                AuthSpam(per_subject=Threshold(60, 3), per_account=Threshold(60, 4),
                         stuffing=None, spraying=None),
                Scraping(),
            )
        )
    )  # fmt: skip
    assert [p.decide(Signal.auth_failure(IP, "bob")).allowed for _ in range(4)] == [
        True, True, True, False
    ]  # fmt: skip
    other = "198.51.100.7"
    assert p.decide(Signal.auth_failure(other, "bob")).tier is Tier.THROTTLE  # 5th on bob


def test_probing_paths_and_error_share_and_distinct_paths(protect: Protect) -> None:
    p = protect(
        AbusePolicy(
            detectors=(
                Scraping(
                    distinct_paths=Threshold(60, 10, Tier.THROTTLE),
                    error_share=ErrorShare(60, 0.5, 4, Tier.WARN),
                ),
            )
        )
    )
    for path in ("/APP/.ENV", "/blog/wp-admin/setup.php", "/.git/config?x=1"):
        assert p.decide(Signal.request(f"s{len(path)}", path)).tier is Tier.BLOCK, path
    scraper = "192.0.2.50"
    assert all(p.decide(Signal.request(scraper, f"/item/{i}")).allowed for i in range(10))
    assert p.decide(Signal.request(scraper, "/item/10")).tier is Tier.THROTTLE
    scanner = "192.0.2.51"
    for status in (404, 200, 404):
        assert p.decide(Signal.response(scanner, status)).tier is Tier.NORMAL
    warned = p.decide(Signal.response(scanner, 404))
    assert warned.allowed
    assert warned.tier is Tier.WARN
    assert warned.detector == "scraping"


def test_allow_listed_subjects_and_networks_are_never_escalated(
    protect: Protect, audit: InMemoryAuditLog
) -> None:
    p = protect(burst_policy(allow_subjects=frozenset({"ci-key"}),
                             allow_networks=("10.0.0.0/8", "2001:db8::/32")))  # fmt: skip
    for subject in ("ci-key", "10.20.30.40", "2001:db8::1"):
        assert all(p.decide(Signal.request(subject, "/.env")).allowed for _ in range(50))
        assert p.status(subject).allow_listed
    assert audit.events() == []
    assert not p.decide(Signal.request("11.0.0.1")).escalated


def test_a_clock_going_backwards_never_unblocks_or_shortens_a_block(
    protect: Protect, clock: ManualClock
) -> None:
    p = protect(AbusePolicy(detectors=(Scraping(),), block_ladder=(60.0,)))
    start = clock.now()
    p.decide(Signal.request(IP, "/.env"))
    clock.set(start - timedelta(days=1))
    d = p.decide(Signal.request(IP, "/"))
    assert d.tier is Tier.BLOCK
    assert d.retry_after == pytest.approx(60.0)
    clock.set(start + timedelta(seconds=30))
    assert p.decide(Signal.request(IP, "/")).retry_after == pytest.approx(30.0)
    clock.set(start + timedelta(seconds=60))
    assert p.decide(Signal.request(IP, "/")).allowed


def test_tenants_are_apart(protect: Protect) -> None:
    p = protect(AbusePolicy(detectors=(Scraping(),)))
    assert p.decide(Signal.request(IP, "/.env")).tier is Tier.BLOCK
    with tenant_scope("globex"):
        assert p.decide(Signal.request(IP, "/")).allowed
        assert p.status(IP).tier is Tier.NORMAL


def test_audit_events_never_carry_api_keys_or_accounts(
    protect: Protect, audit: InMemoryAuditLog
) -> None:
    p = protect(AbusePolicy(detectors=(AuthSpam(per_subject=Threshold(60, 1)),)))
    key = "sk_live_abcdef0123456789"
    p.decide(Signal.auth_failure(key, "victim@example.com"))
    p.decide(Signal.auth_failure(key, "victim@example.com"))
    text = repr([(e.target, e.details) for e in audit.events()])
    assert audit.events()
    assert key not in text
    assert "victim" not in text
    assert subject_label(key) in text


def test_the_audit_outbox_keeps_events_while_the_sink_fails(
    protect: Protect, audit: InMemoryAuditLog
) -> None:
    class Flaky:
        down = True

        def append(self, action: str, **kw: object) -> object:
            if self.down:
                raise OSError("audit database unreachable")
            return audit.append(action, **kw)  # type: ignore[arg-type]

    sink = Flaky()
    p = protect(AbusePolicy(detectors=(Scraping(),)))
    p.audit.sink = sink  # type: ignore[assignment]
    assert p.decide(Signal.request(IP, "/.env")).tier is Tier.BLOCK  # deciding goes on
    assert p.audit.pending == 2
    assert audit.events() == []
    sink.down = False
    p.decide(Signal.request("192.0.2.77", "/.env"))
    assert [e.target for e in audit.events(action=AUDIT_ESCALATED)] == [IP, "192.0.2.77"]
    assert p.audit.pending == 0


def test_events_land_in_the_real_hash_chained_audit_log(
    sqlite_engine: object, clock: ManualClock, tenant: str
) -> None:
    from pytest_reliability.audit import AuditLog
    from pytest_reliability.db import create_schema

    create_schema(sqlite_engine)  # type: ignore[arg-type]
    log = AuditLog(sqlite_engine, clock=clock)  # type: ignore[arg-type]
    p = AbuseProtection.from_url("memory://", AbusePolicy(detectors=(Scraping(),),
                                 block_ladder=(60.0,)), clock=clock, audit=log)  # fmt: skip
    for _ in range(3):
        p.decide(Signal.request(IP, "/.env"))
    clock.advance(61)
    p.sweep()
    assert [e.action for e in log.events()] == [
        AUDIT_ESCALATED,
        AUDIT_ENFORCED,
        AUDIT_BLOCK_EXPIRED,
    ]
    assert log.verify().ok
