"""Options, their ini twins, the seed's precedence, and bad input as usage errors."""

from __future__ import annotations

import pytest

from tests.plugin._helpers import REPORT, RunInner, load_report

PASSING = "def test_one():\n    pass\n"


def test_seed_precedence_option_then_ini_then_env(
    pytester: pytest.Pytester, run_inner: RunInner, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(PASSING)
    monkeypatch.setenv("RELIABILITY_SEED", "33")
    _, report = run_inner()
    assert report["run"]["seed"] == 33
    pytester.makeini("[pytest]\nreliability_seed = 22\n")
    _, report = run_inner()
    assert report["run"]["seed"] == 22
    result, report = run_inner("--reliability-seed=11")
    assert report["run"]["seed"] == 11
    result.stdout.fnmatch_lines(["reliability: seed=11 *"])


def test_random_seed_when_nothing_sets_one_is_printed_and_recorded(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(PASSING)
    result, first = run_inner()
    _, second = run_inner()
    result.stdout.fnmatch_lines([f"reliability: seed={first['run']['seed']} *"])
    assert first["run"]["seed"] != second["run"]["seed"]


def test_every_ini_twin_takes_effect(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        reliability_report = out/custom.json
        reliability_seed = 7
        reliability_require = chaos kill_switch
        reliability_flaky_budget = 3
        reliability_deterministic_ids = true
        reliability_deterministic_uuid4 = yes
        """
    )
    pytester.makepyfile(
        """
        import uuid
        from pytest_reliability import ids

        def test_flags():
            assert ids.deterministic_ids_enabled()
            assert uuid.uuid4() != uuid.uuid4()
        """
    )
    result = pytester.runpytest("-p", "reliability")
    report = load_report(pytester.path / "out" / "custom.json")
    run = report["run"]
    assert (run["seed"], run["flaky_budget"]) == (7, 3)
    assert run["required_categories"] == ["chaos", "kill_switch"]
    assert run["deterministic_ids"] is True
    assert run["deterministic_uuid4"] is True
    # the required categories have no passing test here: the gate fails the run
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert report["summary"]["passed"] == 1


def test_options_override_ini(pytester: pytest.Pytester, run_inner: RunInner) -> None:
    pytester.makeini("[pytest]\nreliability_flaky_budget = 3\nreliability_require = chaos\n")
    pytester.makepyfile(PASSING)
    result, report = run_inner(
        "--reliability-flaky-budget=1", "--reliability-require=audit,idempotency"
    )
    assert report["run"]["flaky_budget"] == 1
    assert report["run"]["required_categories"] == ["audit", "idempotency"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--reliability-seed=abc"], "--reliability-seed"),
        (["--reliability-seed=-4"], "--reliability-seed"),
        (["--reliability-flaky-budget=many"], "--reliability-flaky-budget"),
        (["--reliability-require=Not-A-Category"], "--reliability-require"),
    ],
)
def test_malformed_options_are_usage_errors_naming_the_option(
    pytester: pytest.Pytester, args: list[str], named: str
) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("-p", "reliability", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert named in result.stderr.str()
    assert not (pytester.path / REPORT).exists()


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("reliability_seed = twelve", "reliability_seed"),
        ("reliability_flaky_budget = -1", "reliability_flaky_budget"),
        ("reliability_deterministic_ids = maybe", "reliability_deterministic_ids"),
        ("reliability_deterministic_uuid4 = 2", "reliability_deterministic_uuid4"),
        ("reliability_require = chaos Bad!", "reliability_require"),
    ],
)
def test_malformed_ini_values_are_usage_errors_naming_the_key(
    pytester: pytest.Pytester, line: str, named: str
) -> None:
    pytester.makeini(f"[pytest]\n{line}\n")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("-p", "reliability")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert named in result.stderr.str()


def test_malformed_seed_in_the_environment_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELIABILITY_SEED", "x1")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("-p", "reliability")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "RELIABILITY_SEED" in result.stderr.str()


def test_unwritable_report_location_fails_before_any_test_runs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pathlib
        def test_leaves_a_trace():
            pathlib.Path("ran").write_text("yes")
        """
    )
    (pytester.path / "blocker").write_text("a file where a directory should be")
    result = pytester.runpytest("-p", "reliability", "--reliability-report=blocker/sub/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--reliability-report" in result.stderr.str()
    assert "cannot create report directory" in result.stderr.str()
    assert not (pytester.path / "ran").exists()


def test_malformed_deterministic_ids_variable_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETERMINISTIC_TEST_IDS", "sometimes")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("-p", "reliability")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "DETERMINISTIC_TEST_IDS" in result.stderr.str()
