"""Feeding the engine from real Prometheus scrapes; the ops entry point and the health check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import (
    PermissionDenied,
    SLOCounterError,
    SLODataError,
    SLOScrapeError,
)
from pytest_reliability.ops.health_checks import get_health_snapshot
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession, Permission
from pytest_reliability.ops.slo_engine import (
    SLO,
    RollingWindow,
    Selector,
    SLOHealthCheck,
    evaluate,
    read_slo_status,
    series_from_scrapes,
)
from pytest_reliability.tenancy import PLATFORM_SCOPE, tenant_scope

T0 = 1_780_000_000


def scrapes(bad_per_minute: list[int], requests: int = 1000) -> list[tuple[int, str]]:
    """Scrape a real prometheus_client registry once a minute while it counts requests."""
    registry = CollectorRegistry()
    counter = Counter("http_requests", "requests", ["code"], registry=registry)
    counter.labels("200").inc(0)
    out = [(T0, generate_latest(registry).decode())]
    for minute, bad in enumerate(bad_per_minute, start=1):
        counter.labels("200").inc(requests - bad)
        if bad:
            counter.labels("503").inc(bad)
        out.append((T0 + 60 * minute, generate_latest(registry).decode()))
    return out


def test_scrapes_at_several_instants_feed_the_engine() -> None:
    series, kind = series_from_scrapes(
        scrapes([0] * 55 + [200] * 5),
        total="http_requests_total",
        bad='http_requests_total{code=~"5.."}',
    )
    assert kind == "bad"
    assert len(series) == 60
    at = T0 + 3600
    assert series.sums(at - 300, at) == (1000, 5000)
    status = evaluate(SLO("api", 99.9, RollingWindow(30), sli="bad"), series, at)
    assert status.page  # 20 % errors for 5 minutes: 200x over 5 m, 16.7x over 1 h
    good_series, _ = series_from_scrapes(
        scrapes([0] * 3 + [10]), total="http_requests_total", good='http_requests_total{code="200"}'
    )  # fmt: skip
    assert good_series.sums(T0, T0 + 240) == (10, 4000)


def test_a_restarted_process_is_a_counter_reset() -> None:
    before = scrapes([0, 10])
    after = scrapes([5])  # a new process: counters start again
    moved = [(T0 + 180 + t - T0, text) for t, text in after]
    series, _ = series_from_scrapes(before + moved[1:], total="http_requests_total", bad='http_requests_total{code="503"}')  # fmt: skip  # noqa: E501
    assert series.sums(T0, T0 + 240) == (15, 3000)


def test_a_counter_going_down_with_the_same_created_time_is_refused() -> None:
    text = '# TYPE r counter\nr_total{{code="200"}} {v}\nr_created{{code="200"}} 1.0\n'
    pairs = [(T0, text.format(v=100)), (T0 + 60, text.format(v=90))]
    with pytest.raises(SLOCounterError, match="unchanged _created"):
        series_from_scrapes(pairs, total="r_total", bad='r_total{code="500"}')


def test_bad_scrapes_and_selectors_are_typed_errors() -> None:
    with pytest.raises(SLOScrapeError, match="bad matcher"):
        Selector.parse("http_requests_total{code=5xx}")
    with pytest.raises(SLOScrapeError, match="not Prometheus text"):
        series_from_scrapes([(T0, "a{"), (T0 + 60, "a 1")], total="a", bad="a")
    with pytest.raises(SLOScrapeError, match="two scrapes at the same instant"):
        series_from_scrapes([(T0, "a 1"), (T0, "a 2")], total="a", bad="a")
    with pytest.raises(SLOScrapeError, match="no series matches the total"):
        series_from_scrapes(scrapes([0, 0]), total="missing_total", bad="http_requests_total")
    with pytest.raises(SLODataError, match="exceed the total"):
        series_from_scrapes(
            scrapes([1, 1]), total='http_requests_total{code="200"}', bad="http_requests_total"
        )
    assert Selector.parse('x{a!="b", c!~"d.*"}').matches("x", {"a": "z", "c": "e"})


SLO_API = SLO("checkout", 99.9, sli="bad")
BURNING = [(T0 - i * 60, 50, 1000) for i in range(60)]  # 5 % errors for an hour: 50x


@pytest.fixture
def session() -> OpsSession:
    authz = AuthorizationEngine()
    authz.grant("victor@ops", "ops_viewer")
    return OpsSession(authz, InMemoryAuditLog())


def _events(session: OpsSession) -> list[tuple[str, str, str]]:
    assert isinstance(session.audit, InMemoryAuditLog)
    with tenant_scope(PLATFORM_SCOPE):
        return [(e.actor, e.target, e.outcome) for e in session.audit.events()]


def test_reading_slo_status_needs_ops_slo_read_and_is_audited(session: OpsSession) -> None:
    assert Permission.SLO_READ == "ops.slo.read"
    status = read_slo_status(session, OpsContext("victor@ops"), SLO_API, BURNING, T0)
    assert status.page
    with pytest.raises(PermissionDenied) as info:
        read_slo_status(session, OpsContext("mallory@example"), SLO_API, BURNING, T0)
    assert info.value.permission == "ops.slo.read"
    assert _events(session) == [
        ("victor@ops", "slo:checkout", "allow"),
        ("mallory@example", "slo:checkout", "deny"),
    ]


@pytest.mark.parametrize(
    ("data", "kwargs", "status"),
    [
        (BURNING, {}, "fail"),
        (BURNING, {"page_status": "warn"}, "warn"),
        ([(T0 - i * 300, 0, 1000) for i in range(12)], {}, "pass"),
    ],
)
def test_health_snapshot_includes_the_slo_budget_check(
    session: OpsSession, data: list[tuple[int, int, int]], kwargs: dict[str, str], status: str
) -> None:
    clock = ManualClock(datetime.fromtimestamp(T0, UTC))
    check = SLOHealthCheck(SLO_API, lambda: data, **kwargs)  # type: ignore[arg-type]
    snapshot = get_health_snapshot(session, clock=clock, extra_checks=[check])
    entry = snapshot.check("checkout:errorBudget")
    assert entry.status == status
    assert snapshot.status in (status, "warn", "fail")  # no database: the snapshot itself fails
    if status != "pass":
        assert "page alert firing" in (entry.output or "")


def test_an_slo_check_that_cannot_read_its_data_fails_closed(session: OpsSession) -> None:
    def broken() -> list[tuple[int, int, int]]:
        raise ConnectionError("metrics store down")

    clock = ManualClock(datetime.fromtimestamp(T0, UTC))
    snapshot = get_health_snapshot(
        session, clock=clock, extra_checks=[SLOHealthCheck(SLO_API, broken)]
    )
    entry = snapshot.check("checkout:errorBudget")
    assert entry.status == "fail"
    assert "metrics store down" in (entry.output or "")
