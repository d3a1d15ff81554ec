"""The run's seed drives property-based chaos: the same seed replays the same search, in a fresh
process and under pytest-xdist; the examples option and its ini twin; the health check."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaos_property.conftest import RunInner
from tests.chaos_property.test_checkout_property import PROPERTY_TEST


def _property(report: dict[str, Any]) -> dict[str, Any]:
    (test,) = [t for t in report["tests"] if "chaos" in t["facts"]]
    return test["facts"]["chaos"]["property"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_printed_seed_replays_the_failure_in_a_fresh_process_and_under_xdist(
    inner: RunInner, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_checkout_chaos=PROPERTY_TEST.format(fixed=False))
    first, report = inner("--reliability-seed=7")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["reliability: seed=7 *", "*replay: pytest --reliability-seed=7*"])
    original = _property(report)

    fresh, report = inner("--reliability-seed=7", subprocess=True)
    fresh.assert_outcomes(failed=1)
    assert _property(report) == original

    spread, report = inner("-p", "xdist", "-n", "2", "--reliability-seed=7", subprocess=True)
    spread.assert_outcomes(failed=1)
    assert _property(report) == original

    # Another seed searches another way (it finds the same minimal schedule, by another path).
    other, report = inner("--reliability-seed=8")
    other.assert_outcomes(failed=1)
    found = _property(report)
    assert found["shrunk"] == original["shrunk"]
    assert (found["examples"], found["fired_by_kind"]) != (
        original["examples"],
        original["fired_by_kind"],
    )


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--reliability-chaos-examples=-1"], "", "--reliability-chaos-examples: '-1' is not"),
        (["--reliability-chaos-examples=0"], "", "--reliability-chaos-examples: '0' is not"),
        (["--reliability-chaos-examples=many"], "", "'many' is not a whole number of examples"),
        ([], "reliability_chaos_examples = -5", "ini option reliability_chaos_examples: '-5'"),
    ],
)
def test_a_bad_examples_count_is_a_usage_error(
    inner: RunInner, pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    pytester.makepyfile(test_checkout_chaos=PROPERTY_TEST.format(fixed=True))
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("-p", "reliability", "-p", "hypothesispytest", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_the_ini_twin_sets_the_examples(inner: RunInner, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checkout_chaos=PROPERTY_TEST.format(fixed=True))
    pytester.makeini("[pytest]\nreliability_chaos_examples = 25\n")
    result, report = inner("--reliability-seed=3")
    result.assert_outcomes(passed=1)
    assert _property(report)["examples"] == 25


def test_the_health_check_still_guards_other_function_scoped_fixtures(
    inner: RunInner, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, strategies as st


        @given(st.integers())
        def test_with_tmp_path(chaos, tmp_path, n):
            pass


        @given(st.integers())
        def test_with_chaos_alone(chaos, n):
            pass
        """
    )
    result, _ = inner("--reliability-chaos-examples=5")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FailedHealthCheck*", "FAILED *test_with_tmp_path*"])


def test_a_test_with_its_own_seed_keeps_it(inner: RunInner, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, seed, settings, strategies as st

        SEEN = []


        @seed(12345)
        @settings(max_examples=5, database=None)
        @given(st.integers())
        def test_own_seed(chaos, n):
            SEEN.append(n)


        def test_same_examples_whatever_the_run_seed():
            assert test_own_seed._hypothesis_internal_use_seed == 12345
        """
    )
    result, _ = inner("--reliability-seed=1")
    result.assert_outcomes(passed=2)


def test_hypothesis_own_seed_option_and_derandomize_win(
    inner: RunInner, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, settings, strategies as st


        @settings(max_examples=2, database=None)
        @given(st.integers())
        def test_plain(chaos, n):
            pass


        @settings(max_examples=2, database=None, derandomize=True)
        @given(st.integers())
        def test_derandomized(chaos, n):
            pass


        def test_seeds():
            import os

            forced = os.environ.get("EXPECT_FORCED") == "1"
            assert (test_plain._hypothesis_internal_use_seed is None) == forced
            # Under a profile that derandomizes everything (Hypothesis' "ci" profile, where $CI
            # is set) a test's own derandomize cannot be told from the profile's: the run's seed
            # drives it too.
            unseeded = forced or not settings.default.derandomize
            assert (test_derandomized._hypothesis_internal_use_seed is None) == unseeded
        """
    )
    monkeypatch.setenv("EXPECT_FORCED", "0")
    result, _ = inner("--reliability-seed=1")
    result.assert_outcomes(passed=3)
    monkeypatch.setenv("EXPECT_FORCED", "1")
    result, _ = inner("--reliability-seed=1", "--hypothesis-seed=5")
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize("ci", ["", "true"], ids=["no-ci", "ci-profile"])
def test_the_run_seed_drives_chaos_tests_under_hypothesis_ci_profile(
    inner: RunInner, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    # Hypothesis picks its derandomizing "ci" profile at import when $CI is set; a fresh
    # process is the only place that choice is made, so the runs are subprocesses.
    for name in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD", "BUILDKITE", "CIRCLECI"):
        monkeypatch.delenv(name, raising=False)
    if ci:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(
        """
        from hypothesis import given, settings, strategies as st


        @settings(max_examples=2, database=None)
        @given(st.integers())
        def test_plain(chaos, n):
            pass


        def test_seeded():
            assert test_plain._hypothesis_internal_use_seed is not None
            print("PROFILE", settings.get_current_profile_name())
        """
    )
    result, _ = inner("--reliability-seed=3", "-s", subprocess=True)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*PROFILE ci*" if ci else "*PROFILE default*"])
