"""The report carries each property-based chaos test's search, and ``report summary`` shows it."""

from __future__ import annotations

import json

import pytest

from pytest_reliability.cli import main
from pytest_reliability.ops.chaos_engine import FaultSchedule
from pytest_reliability.report import validate_report
from tests.chaos_property.conftest import RunInner
from tests.chaos_property.test_checkout_property import PROPERTY_TEST
from tests.plugin._helpers import REPORT


def test_the_report_and_the_summaries_show_the_search_and_the_shrunk_schedule(
    inner: RunInner, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(
        test_broken=PROPERTY_TEST.format(fixed=False),
        test_fixed=PROPERTY_TEST.format(fixed=True),
    )
    result, report = inner("--reliability-seed=11", "--reliability-chaos-examples=40")
    result.assert_outcomes(passed=1, failed=1)
    tests = {t["nodeid"].split("::")[0]: t for t in report["tests"]}
    broken = tests["test_broken.py"]["facts"]["chaos"]["property"]
    fixed = tests["test_fixed.py"]["facts"]["chaos"]["property"]
    assert "shrunk" not in fixed
    # The JSON form and the Python text are the same schedule.
    from_json = FaultSchedule.from_json(broken["shrunk"]["json"])
    assert from_json.to_python() == broken["shrunk"]["python"]
    assert len(from_json) == 2

    path = str(pytester.path / REPORT)
    assert main(["report", "summary", path]) == 0
    markdown = capsys.readouterr().out
    examples = broken["examples"] + fixed["examples"]
    assert f"- property-based chaos: {examples} examples, " in markdown
    assert "- schedule faults fired: exception " in markdown
    assert "- shrunk schedule of test\\_broken.py\\:\\:test\\_an\\_order" in markdown
    assert "ScheduledFault('checkout.connect', 'exception'" in markdown
    assert main(["report", "summary", "--format", "text", path]) == 0
    text = capsys.readouterr().out
    assert "shrunk schedule of test_broken.py::test_an_order_is_charged_at_most_once:\n" in text
    assert "\n  FaultSchedule([\n      ScheduledFault('checkout.connect'" in text


def test_a_report_without_the_new_fields_still_validates(
    inner: RunInner, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        def test_hand_armed(chaos):
            chaos.latency("json.dumps", 0)
        """
    )
    _, report = inner()
    assert "property" not in report["tests"][0]["facts"]["chaos"]
    validate_report(json.loads(json.dumps(report)))


def test_a_malformed_property_section_is_refused(
    inner: RunInner, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        def test_hand_armed(chaos):
            chaos.latency("json.dumps", 0)
        """
    )
    _, report = inner()
    report["tests"][0]["facts"]["chaos"]["property"] = {"examples": -1}
    from pytest_reliability.errors import ReportError

    with pytest.raises(ReportError):
        validate_report(report)
