"""The report's content: outcomes, failure texts, facts, hooks, gates, CI metadata, atomicity."""

from __future__ import annotations

import json

import pytest

from pytest_reliability.report import load_schema, violations
from tests.plugin._helpers import REPORT, RunInner, assert_closing_line_matches, by_nodeid

OUTCOMES = """
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfails():
    assert False

@pytest.mark.xfail(reason="fixed already", strict=False)
def test_xpasses():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("setup exploded")

def test_setup_error(broken):
    pass

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown exploded")

def test_teardown_error(bad_teardown):
    pass
"""


def test_every_outcome_is_counted_and_described(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(OUTCOMES)
    result, report = run_inner()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # pytest's closing line: the test whose teardown errors counts as passed and as an error.
    assert report["summary"] == {
        "total": 7,
        "passed": 2,
        "failed": 1,
        "skipped": 1,
        "xfailed": 1,
        "xpassed": 1,
        "error": 2,
        "flaky": 0,
        "interrupted": 0,
        "collection_errors": 0,
        "other": {},
        "collected": 7,
        "deselected": 0,
    }
    assert_closing_line_matches(result, report)
    tests = by_nodeid(report)
    assert "one is not two" in tests["test_fails"]["failure"]
    assert "setup exploded" in tests["test_setup_error"]["failure"]
    assert tests["test_teardown_error"]["outcome"] == "error"
    assert "teardown exploded" in tests["test_teardown_error"]["failure"]
    assert tests["test_passes"]["failure"] is None
    assert all(len(t["attempts"]) == 1 for t in tests.values())
    assert report["status"] == "failed"
    assert report["run"]["complete"] is True
    gate = next(g for g in report["gates"] if g["name"] == "no-failures")
    assert gate["status"] == "failed"
    assert any("test_fails" in reason for reason in gate["reasons"])


def test_facts_from_fixtures_audit_events_and_hypothesis_land_on_each_test(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import os
        from hypothesis import given, settings, strategies as st
        from pytest_reliability.audit import InMemoryAuditLog
        from pytest_reliability.tenancy import tenant_scope

        def test_chaos_facts(chaos):
            chaos.raise_exception("os.getcwd", on_call=2)
            chaos.return_value("os.cpu_count", 99)
            os.getcwd()
            try:
                os.getcwd()
            except Exception:
                pass
            assert os.cpu_count() == 99

        def test_audit_events():
            log = InMemoryAuditLog()
            with tenant_scope("acme"):
                log.append("switch.engage", actor="ops", target="billing", outcome="ok")
                log.append("switch.engage", actor="ops", target="webhooks", outcome="ok")
                log.append("switch.release", actor="ops", target="billing", outcome="ok")

        def test_ids(correlation_ids):
            correlation_ids.take(3)

        @settings(max_examples=5, database=None)
        @given(st.integers())
        def test_property(n):
            assert isinstance(n, int)
        """
    )
    result, report = run_inner("-p", "hypothesispytest")
    assert result.ret == 0, result.stdout.str()
    tests = by_nodeid(report)
    assert tests["test_chaos_facts"]["facts"]["chaos"] == {
        "faults": [
            {"target": "os.getcwd", "kind": "exception", "trigger": "call 2", "fired": 1},
            {"target": "os.cpu_count", "kind": "return_value", "trigger": "always", "fired": 1},
        ],
        "injected": 2,
        "fired": 2,
    }
    assert tests["test_chaos_facts"]["categories"] == ["chaos"]
    assert tests["test_audit_events"]["facts"]["audit"] == {
        "events_by_action": {"switch.engage": 2, "switch.release": 1}
    }
    assert tests["test_ids"]["facts"]["correlation"] == {"ids_issued": 3}
    assert "statistics" in tests["test_property"]["facts"]["hypothesis"]


def test_report_sections_modify_and_gates_hooks(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makeconftest(
        """
        from pytest_reliability.report import Gate

        def pytest_reliability_report_sections(config):
            return {"deploy": {"service": "billing", "region": "eu"}}

        def pytest_reliability_modify_report(config, report):
            report["sections"]["tests_seen"] = len(report["tests"])

        def pytest_reliability_gates(config, report):
            def at_least_three(report):
                if report["summary"]["passed"] < 3:
                    yield f"only {report['summary']['passed']} tests passed, need 3"
            def broken(report):
                raise ValueError("gate could not decide")
            return [Gate("three-passing", at_least_three, "three tests pass")] + (
                [Gate("broken", broken)] if config.getoption("verbose") > 0 else []
            )
        """
    )
    pytester.makepyfile("def test_one():\n    pass\n")
    result, report = run_inner()
    assert report["sections"] == {"deploy": {"service": "billing", "region": "eu"}, "tests_seen": 1}
    gate = next(g for g in report["gates"] if g["name"] == "three-passing")
    assert gate == {
        "name": "three-passing",
        "status": "failed",
        "reasons": ["only 1 tests passed, need 3"],
        "source": "hook",
        "description": "three tests pass",
    }
    # every test passed, yet the failed gate fails the run and the summary says why
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert report["status"] == "failed"
    result.stdout.fnmatch_lines(
        ["*reliability gates failed*", "gate three-passing: FAILED", "  - only 1 tests passed*"]
    )
    result, report = run_inner("-v")
    broken = next(g for g in report["gates"] if g["name"] == "broken")
    assert broken["status"] == "error"
    assert broken["reasons"] == ["ValueError: gate could not decide"]
    assert report["status"] == "error"


def test_a_hook_that_breaks_the_schema_leaves_no_report_and_fails_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        def pytest_reliability_modify_report(config, report):
            report["summary"]["passed"] = "many"
        """
    )
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-p", "reliability")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*report not written*/summary/passed*"])
    # Only the report written at the start remains, which says the run did not finish.
    left = json.loads((pytester.path / REPORT).read_text(encoding="utf-8"))
    assert left["status"] == "incomplete"
    assert left["tests"] == []


def test_report_is_replaced_atomically_without_leftovers(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    _, first = run_inner()
    _, second = run_inner()
    assert first["run"]["id"] != second["run"]["id"]
    leftovers = [p.name for p in (pytester.path / "reports").iterdir()]
    assert leftovers == ["reliability-validation-report.json"]


def test_run_metadata_and_ci_environment(
    pytester: pytest.Pytester, run_inner: RunInner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/billing")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    pytester.makepyfile("def test_one():\n    pass\n")
    _, report = run_inner("--reliability-seed=5")
    run = report["run"]
    assert run["ci"] == {
        "provider": "github-actions",
        "commit": "0123456789abcdef",
        "branch": "main",
        "url": "https://github.com/acme/billing/actions/runs/42",
    }
    assert run["versions"]["pytest"] == pytest.__version__
    assert run["seed"] == 5
    assert run["started_at"] <= run["finished_at"]
    assert run["workers"] == []
    assert report["tests"][0]["worker"] is None


def test_schema_is_draft_2020_12_with_an_id_and_rejects_bad_reports() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://")
    assert "ignore keys they do not know" in schema["description"]
    found = violations({"schema_version": "1.0", "status": "done"})
    pointers = {v.pointer for v in found}
    assert "/status" in pointers
    assert "" in pointers  # required keys missing at the top
    bad_test = json.loads(json.dumps({"tests": [{"nodeid": "x", "outcome": "meh"}]}))
    assert any(v.pointer == "/tests/0/outcome" for v in violations(bad_test))


def test_a_run_without_tests_says_so_and_fails_the_gate_unless_allowed(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    result, report = run_inner("-k", "nomatch")
    assert report["summary"]["total"] == 0
    gate = next(g for g in report["gates"] if g["name"] == "tests-ran")
    assert gate["status"] == "failed"
    assert report["status"] == "failed"
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result, report = run_inner("-k", "nomatch", "--reliability-allow-no-tests")
    assert report["status"] == "no_tests"
    assert report["run"]["allow_no_tests"] is True
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert report["summary"]["other"] == {"deselected": 1}


SUMMARY_CASES = """
import pytest

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown exploded")

def test_fails_then_errors(bad_teardown):
    assert False, "call failed"

def test_subtests(subtests):
    for n in range(3):
        with subtests.test(n=n):
            assert n != 1

def test_warns():
    import warnings
    warnings.warn(UserWarning("careful"))
"""


def test_summary_counts_equal_pytests_closing_line(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(SUMMARY_CASES)
    result, report = run_inner("-W", "default")
    # "3 failed, 1 passed, 1 warning, 1 error": the failed subtest and the test that failed
    # before its teardown errored count as pytest counts them.
    assert result.parseoutcomes() == {"failed": 3, "passed": 1, "warnings": 1, "errors": 1}
    assert_closing_line_matches(result, report)
    tests = by_nodeid(report)
    assert tests["test_fails_then_errors"]["outcome"] == "failed"
    assert tests["test_subtests"]["outcome"] == "failed"
