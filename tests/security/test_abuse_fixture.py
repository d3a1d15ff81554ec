"""The ``abuse`` fixture: scenarios on a manual clock, tier sequences, facts in the report."""

from __future__ import annotations

import json

import pytest

from pytest_reliability.fixtures._abuse import abuse, abuse_store_url  # noqa: F401
from pytest_reliability.security.abuse_protection import (
    AbusePolicy,
    AuthSpam,
    RequestBurst,
    Threshold,
    Tier,
)
from pytest_reliability.security.abuse_protection._scenario import AbuseScenario

pytestmark = pytest.mark.abuse


def test_a_burst_goes_normal_throttle_block_then_decays(abuse: AbuseScenario) -> None:
    abuse.use(AbusePolicy(detectors=(RequestBurst((Threshold(10.0, 5),)),), throttle_strikes=3,
                          block_ladder=(30.0,), throttle_hold=60.0, warn_hold=60.0))  # fmt: skip
    abuse.burst("203.0.113.1", 10)
    abuse.assert_tiers("203.0.113.1", ["NORMAL", "THROTTLE", "BLOCK"])
    abuse.advance(30)
    assert abuse.status("203.0.113.1") is Tier.THROTTLE
    abuse.advance(120)
    assert abuse.status("203.0.113.1") is Tier.NORMAL
    with pytest.raises(AssertionError, match="expected NORMAL -> BLOCK"):
        abuse.assert_tiers("203.0.113.1", ["NORMAL", "BLOCK"])


def test_stuffing_spraying_and_probing_scenarios(abuse: AbuseScenario) -> None:
    abuse.use(AbusePolicy(detectors=(AuthSpam(per_subject=None, per_account=None),)))
    abuse.stuffing("198.51.100.1", 6)
    abuse.assert_tiers("198.51.100.1", ["NORMAL", "BLOCK"])
    abuse.spraying("admin", [f"192.0.2.{i}" for i in range(11)])
    abuse.assert_tiers("192.0.2.10", ["BLOCK"])
    abuse.use(AbusePolicy())
    assert abuse.probe("203.0.113.50")[0].tier is Tier.BLOCK
    assert abuse.escalations() == 3
    assert abuse.decisions_by_tier()["BLOCK"] >= 3


PYTESTER_TESTS = """
import pytest

def test_probing(abuse):
    abuse.probe("203.0.113.9")
    abuse.burst("203.0.113.10", 25)
    abuse.assert_tiers("203.0.113.9", ["BLOCK"])
    abuse.assert_tiers("203.0.113.10", ["NORMAL", "THROTTLE"])
"""


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_facts_and_the_category_reach_the_report(
    pytester: pytest.Pytester, store: str, request: pytest.FixtureRequest
) -> None:
    if store == "redis":
        url = request.getfixturevalue("redis_url")
        pytester.makeconftest(f"import pytest\n@pytest.fixture\ndef abuse_store_url():\n"
                              f"    return {url!r}\n")  # fmt: skip
    pytester.makepyfile(test_scenario=PYTESTER_TESTS)
    report_path = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-p", "reliability", "-p", "no:cacheprovider", f"--reliability-report={report_path}",
        "--reliability-require=abuse",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    report = json.loads(report_path.read_text())
    (test,) = report["tests"]
    assert "abuse" in test["categories"]
    facts = test["facts"]["abuse"]
    assert facts["signals"] == 28
    assert facts["escalations"] == 2
    assert facts["decisions_by_tier"] == {"BLOCK": 3, "NORMAL": 20, "THROTTLE": 5}
    assert facts["denied"] == 8
    assert {g["name"]: g["status"] for g in report["gates"]}["required-categories"] == "passed"
    from pytest_reliability.report import summary_markdown, summary_text

    assert "abuse signals: 28" in summary_text(report)
    assert "abuse escalations" in summary_markdown(report)


class TestOnRedis:
    """The fixture on a shared Redis: a prefix and a tenant of its own per test."""

    @pytest.fixture
    def abuse_store_url(self, redis_url: str) -> str:
        return redis_url

    def test_a_scenario_runs_on_redis(self, abuse: AbuseScenario) -> None:
        from pytest_reliability.security.abuse_protection._redis_store import RedisAbuseStore

        assert isinstance(abuse.protection.store, RedisAbuseStore)
        abuse.probe("203.0.113.9")
        abuse.assert_tiers("203.0.113.9", ["BLOCK"])
        prefix = abuse.protection.store.prefix
        assert prefix.startswith("pytest-abuse-")
        assert list(abuse.protection.store.client.scan_iter(match=f"{prefix}*"))


class TestOnSqlite:
    """The fixture on a SQLite file given by URL."""

    @pytest.fixture
    def abuse_store_url(self, sqlite_url: str) -> str:
        return sqlite_url

    def test_a_scenario_runs_on_sqlite(self, abuse: AbuseScenario) -> None:
        from pytest_reliability.security.abuse_protection._sql_store import SqlAbuseStore

        assert isinstance(abuse.protection.store, SqlAbuseStore)
        abuse.stuffing("198.51.100.3", 6)
        abuse.assert_tiers("198.51.100.3", ["NORMAL", "BLOCK"])


def test_the_fixture_is_documented() -> None:
    doc = abuse.__doc__ or getattr(abuse, "__wrapped__", abuse).__doc__
    assert doc is not None
    assert "Abuse scenarios for this test" in doc
