"""The report's fast path: entries built straight from pytest's reports, their partial schema
check, and the fast encoder. Each shortcut must write exactly what the full path would, or step
aside for it."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_reliability.errors import ReportError
from pytest_reliability.report import load_schema, validate_report, violations
from pytest_reliability.report._collector import (
    CATEGORIES_KEY,
    FACTS_KEY,
    Collector,
    TestRecord,
    micros,
)
from pytest_reliability.report._fastcheck import compile_check, is_strict_json
from pytest_reliability.report._io import encode_report
from tests.plugin._helpers import REPORT, RunInner, by_nodeid
from tests.plugin.test_schema_check import VALID

CHECK = compile_check(load_schema())

durations = st.one_of(
    st.floats(0.0, 5.0),
    st.floats(0.0, 2e9),
    st.sampled_from([0.0, 1e-7, 4.9999995e-7, 0.5, -1e-6, math.inf, math.nan, None]),
)
linenos = st.one_of(st.none(), st.integers(-3, 10_000))
categories = st.lists(st.sampled_from(["chaos", "audit", "Bad Cat", ""]), unique=True, max_size=3)
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
)
any_values = st.recursive(
    json_leaves | st.builds(object) | st.tuples(st.integers()),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3) | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=8,
)


def _report(when: str, duration: Any, lineno: Any, **extra: Any) -> pytest.TestReport:
    report = pytest.TestReport(
        "t.py::test_x",
        ("t.py", lineno, "test_x"),
        {},
        "passed",
        None,
        when,
        duration=duration,
        start=0.0,
        stop=0.0,
    )
    report.__dict__.update(extra)
    return report


def _triple(
    times: tuple[Any, Any, Any], lineno: Any, facts: dict[str, Any], cats: list[str]
) -> list[pytest.TestReport]:
    data = {FACTS_KEY: facts, CATEGORIES_KEY: cats}
    return [
        _report("setup", times[0], lineno),
        _report("call", times[1], lineno),
        _report("teardown", times[2], lineno, **data),
    ]


def _full_fold(reports: list[pytest.TestReport]) -> dict[str, Any]:
    record = TestRecord("t.py::test_x")
    for report in reports:
        record.fold(report)
    return record.as_dict()


@settings(max_examples=300, deadline=None)
@given(st.tuples(durations, durations, durations), linenos, categories)
def test_a_fast_entry_is_the_entry_the_full_fold_builds(
    times: tuple[Any, Any, Any], lineno: Any, cats: list[str]
) -> None:
    reports = _triple(times, lineno, {"custom": {"n": 1}}, cats)
    collector = Collector()
    collector.pending = list(reports)
    (entry,) = collector.tests()
    # Text, so that NaN equals NaN.
    assert json.dumps(entry, sort_keys=True) == json.dumps(_full_fold(reports), sort_keys=True)
    # Only a test whose phases took a plain, non-negative time is built on the fast path.
    seconds = [t or 0.0 for t in times]
    if not all(0.0 <= t < 1e9 for t in seconds) or not sum(seconds) < 1e9:
        assert id(entry) not in collector.built
    else:
        assert id(entry) in collector.built


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.floats(0.0, 3600.0), st.floats(0.0, 3600.0), st.floats(0.0, 3600.0)),
    linenos,
)
def test_entries_built_on_the_fast_path_are_valid_by_construction(
    times: tuple[float, float, float], lineno: Any
) -> None:
    # validate_report skips the collector's own fields of these entries: prove they need no
    # check, with jsonschema on the whole entry.
    collector = Collector()
    collector.pending = _triple(times, lineno, {}, [])
    (entry,) = collector.tests()
    assert id(entry) in collector.built
    document = {**copy.deepcopy(VALID), "schema_version": "1.2", "tests": [entry]}
    assert violations(document) == []
    assert validate_report(document, trusted=collector.built) is True


def _built_document(facts: Any, cats: list[str]) -> tuple[dict[str, Any], set[int]]:
    collector = Collector()
    collector.pending = _triple((0.001, 0.002, 0.003), 4, facts, cats)
    (entry,) = collector.tests()
    document = {**copy.deepcopy(VALID), "schema_version": "1.2", "tests": [entry]}
    return document, collector.built


def test_trusted_entries_still_have_what_the_tests_recorded_checked() -> None:
    good, built = _built_document({"chaos": {"injected": 1, "fired": 1}}, ["chaos"])
    assert validate_report(good, trusted=built) is True
    for facts, cats in (
        ({"chaos": {"injected": -1}}, []),  # a count below zero
        ({}, ["Bad Cat"]),  # not a category name
    ):
        document, built = _built_document(facts, cats)
        with pytest.raises(ReportError, match="does not match"):
            validate_report(document, trusted=built)
    # The rarer parts too: record_property pairs, metadata, captured output.
    for key, bad in (
        ("properties", [{"value": 1}]),
        ("metadata", ["not", "an", "object"]),
        ("captured", {"stdout": 3}),
    ):
        document, built = _built_document({}, [])
        document["tests"][0][key] = bad  # the same entry: still trusted by identity
        with pytest.raises(ReportError, match="does not match"):
            validate_report(document, trusted=built)


def _verdict(check: Any) -> str:
    try:
        return "proven" if check() else "valid"
    except ReportError:
        return "invalid"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(["custom", "chaos", "audit"]), any_values, max_size=2),
    categories,
    st.lists(st.tuples(st.text(max_size=3), any_values), max_size=2),
    st.booleans(),
)
def test_checking_only_the_entries_the_collector_lists_decides_as_the_full_check(
    facts: dict[str, Any], cats: list[str], properties: list[Any], plain_neighbour: bool
) -> None:
    # Collector.unchecked names the built entries that hold anything a test put there; the
    # others are never looked at. Whatever the tests recorded, the verdict must be the one
    # the check of every entry gives.
    reports = _triple((0.001, 0.002, 0.003), 4, {k: {"x": v} for k, v in facts.items()}, cats)
    reports[2].user_properties = list(properties)
    if plain_neighbour:
        neighbour = _triple((0.001, 0.001, 0.001), 9, {}, [])
        for report in neighbour:
            report.nodeid = "t.py::test_y"
        reports += neighbour
    collector = Collector()
    collector.pending = reports
    tests = collector.tests()
    assert all(id(entry) in collector.built for entry in tests)
    recorded = [e for e in tests if e["facts"] or e["categories"] or "properties" in e]
    assert [id(e) for e in collector.unchecked] == [id(e) for e in recorded]
    document = {**copy.deepcopy(VALID), "schema_version": "1.2", "tests": tests}
    fast = _verdict(
        lambda: validate_report(document, trusted=collector.built, unchecked=collector.unchecked)
    )
    full = _verdict(lambda: validate_report(document))
    assert fast == full or (fast, full) == ("valid", "proven")


def test_the_unchecked_list_is_the_callers_word_and_without_it_every_entry_is_checked() -> None:
    # The guard behind the list: an entry whose facts were changed after the build, but kept
    # off the list, is still refused when the check of every entry is asked for.
    document, built = _built_document({}, [])
    document["tests"][0]["facts"] = {"chaos": {"injected": -1}}
    assert validate_report(document, trusted=built, unchecked=[]) is True  # as documented
    with pytest.raises(ReportError, match="does not match"):
        validate_report(document, trusted=built)


def test_a_trusted_entry_with_a_value_that_is_not_json_is_valid_but_not_proven() -> None:
    # jsonschema takes NaN for a number; JSON has no NaN: the document is valid, but only the
    # standard encoder may write it, and it refuses.
    document, built = _built_document({"custom": {"ratio": math.nan}}, [])
    assert validate_report(document, trusted=built) is False
    with pytest.raises(ReportError, match="not JSON"):
        encode_report(document, proven=False)


def test_an_untrusted_entry_is_checked_in_full() -> None:
    document, built = _built_document({}, [])
    document["tests"][0]["duration_s"] = -1.0
    document["tests"][0] = dict(document["tests"][0])  # a copy: no longer what was built
    with pytest.raises(ReportError, match="does not match"):
        validate_report(document, trusted=built)


@settings(max_examples=500, deadline=None)
@given(any_values)
def test_strict_json_is_what_both_encoders_write_alike(value: Any) -> None:
    if not is_strict_json(value):
        return
    standard = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        fast = orjson.dumps(value)
    except TypeError:
        # Only a lone surrogate is strict JSON that orjson refuses; encode_report escapes it.
        assert "\\ud" in json.dumps(value)
        return
    assert json.loads(fast) == json.loads(standard)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["custom", "chaos", "audit"]), any_values)
def test_a_document_the_compiled_check_accepts_is_strict_json(section: str, value: Any) -> None:
    document = copy.deepcopy(VALID)
    document["tests"][0]["facts"][section] = {"x": value}
    document["sections"]["deploy"] = value
    assert CHECK is not None
    if CHECK(document):
        assert is_strict_json(document)
        assert violations(document) == []


@settings(max_examples=300, deadline=None)
@given(any_values)
def test_the_fast_encoder_writes_what_the_standard_one_would(value: Any) -> None:
    document = {"facts": value, "text": "caf\u00e9 \ud800"}
    try:
        standard = encode_report(document)
    except (ReportError, TypeError, ValueError):
        return  # not JSON: the fast encoder is never asked (validate_report proves it first)
    if not is_strict_json(document):
        return
    fast = encode_report(document, proven=True)
    assert json.loads(fast) == json.loads(standard)
    assert b"\\ud800" in fast  # the lone surrogate is spelled out, as by the standard path


@given(st.floats(0.0, 1e9, exclude_max=True))
def test_micros_rounds_to_the_microsecond(seconds: float) -> None:
    value = micros(seconds)
    assert abs(value - seconds) <= 5e-7 + 1e-9 * seconds
    assert abs(value - round(seconds, 6)) <= 1e-6 * (1 + 1e-9 * seconds)
    assert value == round(value, 6)


def test_micros_keeps_what_is_out_of_its_range_as_round_would() -> None:
    assert micros(-0.0000014) == round(-0.0000014, 6)
    assert micros(2e9 + 0.1234567) == round(2e9 + 0.1234567, 6)


FACTS_CONFTEST = """
import math
import pytest
from pytest_reliability._facts import facts_for

@pytest.fixture
def record(request):
    return facts_for(request)
"""


def test_only_tests_that_recorded_facts_carry_them(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makeconftest(FACTS_CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        def test_records(record):
            record.set("custom", "pair", (1, 2))
            record.set("custom", "keys", {1: "one"})
            record.categories.add("audit")

        @pytest.mark.chaos
        def test_marked():
            pass

        def test_plain():
            pass
        """
    )
    result, report = run_inner()
    assert result.ret == 0, result.stdout.str()
    tests = by_nodeid(report)
    # A tuple is an array; an integer key is text, as json writes it.
    assert tests["test_records"]["facts"] == {"custom": {"pair": [1, 2], "keys": {"1": "one"}}}
    assert tests["test_records"]["categories"] == ["audit"]
    assert tests["test_marked"]["categories"] == ["chaos"]
    assert tests["test_plain"]["facts"] == {}
    assert tests["test_plain"]["categories"] == []


def test_a_fact_that_is_not_json_still_fails_the_run(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makeconftest(FACTS_CONFTEST)
    pytester.makepyfile(
        """
        import math

        def test_records(record):
            record.set("custom", "ratio", math.nan)
        """
    )
    result = pytester.runpytest("-p", "reliability", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*reliability report not written*not JSON*"])


@pytest.mark.parametrize(
    "hook",
    [
        "def pytest_reliability_modify_report(config, report):\n"
        "    report['tests'][0]['duration_s'] = -1.0\n",
        # A gate sees the same entries: one that writes into them is checked too.
        "def pytest_reliability_gates(config, report):\n"
        "    report['tests'][0]['attempts'][0]['outcome'] = 'unheard-of'\n"
        "    return []\n",
    ],
    ids=["modify", "gates"],
)
def test_an_entry_a_hook_changed_is_checked_in_full(pytester: pytest.Pytester, hook: str) -> None:
    pytester.makeconftest(hook)
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-p", "reliability", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*reliability report not written*does not match*"])
    assert "incomplete" in (pytester.path / REPORT).read_text()  # the placeholder stays
