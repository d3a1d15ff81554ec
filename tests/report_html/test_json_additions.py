"""Schema 1.2: what pipelines need from the JSON, as pytest-json-report users know it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_reliability.errors import PayloadNotSerializable, PayloadTooLarge, ReportError
from pytest_reliability.fixtures._metadata import MAX_METADATA_BYTES, TestMetadata
from pytest_reliability.report import SCHEMA_VERSION, read_report, validate_report
from pytest_reliability.report._collector import bounded, json_value
from tests.plugin._helpers import REPORT, RunInner, by_nodeid
from tests.plugin.test_schema_check import VALID

SECRET = "tok-9f8e7d6c5b4a"

SUITE = """
import logging, os, warnings
import pytest

def test_props(record_property, reliability_metadata):
    record_property("ticket", "OPS-1")
    record_property("odd", object.__new__(type("Thing", (), {"__repr__": lambda s: "<thing>"})))
    reliability_metadata["owner"] = {"team": "payments", "oncall": ["ana", "bo"]}
    reliability_metadata.update({"risk": 3})

def test_crash():
    print("x" * 300)
    print("token", os.environ["DEPLOY_API_TOKEN"])
    logging.getLogger("svc").warning("about to fail")
    value = 1
    assert value == 2, "one is not two"

def test_warns():
    warnings.warn("old api", DeprecationWarning)

@pytest.fixture
def broken():
    raise RuntimeError("setup exploded")

def test_setup_error(broken):
    pass

def test_deselected_one():
    pass
"""


def _line(source: str, needle: str) -> int:
    return next(i for i, text in enumerate(source.splitlines(), 1) if needle in text)


def test_the_json_holds_locations_phases_crash_warnings_properties_and_bounded_capture(
    pytester: pytest.Pytester, run_inner: RunInner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_API_TOKEN", SECRET)
    pytester.makepyfile(test_suite=SUITE)
    result, report = run_inner(
        "-k",
        "not deselected",
        "-W",
        "default",
        "--reliability-capture=failed",
        "--reliability-capture-max-chars=80",
        "--reliability-report-indent=2",
    )
    raw = (pytester.path / REPORT).read_text(encoding="utf-8")
    source = (pytester.path / "test_suite.py").read_text(encoding="utf-8")
    assert raw.startswith('{\n  "schema_version": "1.2"')
    assert SECRET not in raw
    assert report["schema_version"] == SCHEMA_VERSION == "1.2"
    assert report["summary"]["collected"] == 5
    assert report["summary"]["deselected"] == 1
    assert report["run"]["project"] == pytester.path.name
    tests = by_nodeid(report)

    props = tests["test_props"]
    assert props["location"] == {"path": "test_suite.py", "line": _line(source, "def test_props")}
    assert props["properties"] == [
        {"name": "ticket", "value": "OPS-1"},
        {"name": "odd", "value": "<thing>"},
    ]
    assert props["metadata"] == {"owner": {"team": "payments", "oncall": ["ana", "bo"]}, "risk": 3}
    assert set(props["attempts"][0]["phases"]) == {"setup", "call", "teardown"}
    assert "captured" not in props  # passed: only failing tests' output is kept

    crash = tests["test_crash"]
    assert crash["crash"] == {
        "path": "test_suite.py",
        "line": _line(source, "assert value == 2"),
        "message": crash["crash"]["message"],
    }
    assert "one is not two" in crash["crash"]["message"]
    phases = crash["attempts"][0]["phases"]
    assert [phases[p]["outcome"] for p in ("setup", "call", "teardown")] == [
        "passed",
        "failed",
        "passed",
    ]
    captured = crash["captured"]
    assert "characters not kept" in captured["stdout"]
    assert len(captured["stdout"]) < 200
    assert "***" in captured["stdout"]
    assert "about to fail" in captured["log"]

    error = tests["test_setup_error"]
    assert error["attempts"][0]["phases"] == {
        "setup": {"outcome": "failed", "duration_s": pytest.approx(0, abs=5)},
        "teardown": {"outcome": "passed", "duration_s": pytest.approx(0, abs=5)},
    }
    assert error["crash"]["message"].startswith("RuntimeError: setup exploded")

    warned = [w for w in report["warnings"] if w["message"] == "old api"]
    assert warned == [
        {
            "message": "old api",
            "category": "DeprecationWarning",
            "path": "test_suite.py",
            "line": _line(source, 'warnings.warn("old api"'),
            "when": "runtest",
            "nodeid": "test_suite.py::test_warns",
        }
    ]
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_counts_and_metadata_cross_xdist_workers(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        test_x="""
        import pytest
        @pytest.mark.parametrize("n", range(6))
        def test_n(n, reliability_metadata):
            reliability_metadata["n"] = n
        def test_skipme():
            pass
        """
    )
    result, report = run_inner(
        "-p", "xdist", "-n", "2", "-k", "not skipme", "--reliability-html=page.html"
    )
    assert result.ret == 0
    page = (pytester.path / "page.html").read_text(encoding="utf-8")
    assert page.count('<div role="row" class="r"') == 6
    assert report["summary"]["collected"] == 7
    assert report["summary"]["deselected"] == 1
    assert [t["metadata"] for t in report["tests"]] == [{"n": n} for n in range(6)]
    assert all(t["location"]["path"] == "test_x.py" for t in report["tests"])


def test_environment_metadata_comes_from_pytest_metadata(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytest.importorskip("pytest_metadata", reason="pytest-metadata is not installed")
    pytester.makepyfile("def test_ok():\n    pass\n")
    _, report = run_inner("-p", "metadata", "--metadata", "Deploy", "blue")
    environment = report["run"]["environment"]
    assert environment["Deploy"] == "blue"
    assert "Python" in environment
    _, without = run_inner()
    assert "environment" not in without["run"]


def test_a_bad_setting_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    for args, needle in (
        (["--reliability-report-indent=99"], "more than 8"),
        (["--reliability-capture=some"], "invalid choice"),
        (["--reliability-capture-max-chars=0"], "not a positive integer"),
        (["--reliability-html", str(pytester.path)], "is a directory"),
    ):
        result = pytester.runpytest("-p", "reliability", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        assert needle in result.stderr.str(), (args, result.stderr.str())


def test_ini_twins_set_indent_and_capture(pytester: pytest.Pytester, run_inner: RunInner) -> None:
    pytester.makeini(
        "[pytest]\nreliability_report_indent = 1\nreliability_capture = all\n"
        "reliability_project = billing\n"
    )
    pytester.makepyfile("def test_ok():\n    print('hello')\n")
    _, report = run_inner()
    assert (pytester.path / REPORT).read_text().startswith('{\n "schema_version"')
    assert report["tests"][0]["captured"] == {"stdout": "hello\n"}
    assert report["run"]["project"] == "billing"


def test_metadata_refuses_what_is_not_json_and_keeps_what_it_had() -> None:
    store: dict[str, Any] = {}
    metadata = TestMetadata(store)
    metadata["a"] = [1, "two"]
    for bad in (math.nan, object(), {1j: 2}):
        with pytest.raises(PayloadNotSerializable):
            metadata["b"] = bad
    with pytest.raises(PayloadNotSerializable):
        metadata.update({"": 1})
    with pytest.raises(PayloadTooLarge) as raised:
        metadata["big"] = "x" * MAX_METADATA_BYTES
    assert raised.value.limit == MAX_METADATA_BYTES
    assert store == {"a": [1, "two"]} == metadata.as_dict()
    assert "a" in metadata
    assert len(metadata) == 1
    assert list(metadata) == ["a"]


def test_reports_of_1_0_and_1_1_still_validate_and_another_major_is_refused(
    tmp_path: Path,
) -> None:
    for version in ("1.0", "1.1", "1.2"):
        validate_report({**VALID, "schema_version": version})
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**VALID, "schema_version": "2.0"}))
    with pytest.raises(ReportError, match=r"schema version '2\.0' is not supported"):
        read_report(path)


_JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.builds(object)
    | st.complex_numbers(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=20,
)


@given(_JSONISH)
def test_any_property_value_becomes_json(value: Any) -> None:
    converted = json_value(value)
    assert json.loads(json.dumps(converted, allow_nan=False)) == converted


@given(st.text(max_size=400), st.integers(min_value=1, max_value=300))
def test_bounded_text_keeps_head_and_tail(text: str, limit: int) -> None:
    kept = bounded(text, limit)
    if len(text) <= limit:
        assert kept == text
    else:
        half = max(limit // 2, 1)
        assert kept.startswith(text[:half])
        assert kept.endswith(text[-half:])
        assert f"[… {len(text) - 2 * half} characters not kept …]" in kept


def test_merge_keeps_every_shards_warnings_and_refuses_mixed_projects() -> None:
    from pytest_reliability.report import merge_reports
    from tests.report_html._reports import make_report, make_test

    warning = {
        "message": "old api",
        "category": "DeprecationWarning",
        "path": "a.py",
        "line": 3,
        "when": "runtest",
        "nodeid": "a.py::x",
    }
    one = make_report([make_test("a.py::x")], run_id="s1")
    two = make_report([make_test("b.py::y")], run_id="s2")
    one["warnings"] = [warning]
    two["warnings"] = [{**warning, "nodeid": "b.py::y"}]
    merged = merge_reports([one, two])
    validate_report(merged)
    assert [w["nodeid"] for w in merged["warnings"]] == ["a.py::x", "b.py::y"]
    assert merged["run"]["project"] == "billing"
    other = make_report([make_test("c.py::z")], run_id="s3", project="search")
    with pytest.raises(ReportError, match=r"different projects \(billing, search\)"):
        merge_reports([one, other])
