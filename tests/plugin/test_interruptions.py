"""Interrupted runs still leave a valid report saying what happened; reruns keep every attempt."""

from __future__ import annotations

import pytest

from tests.plugin._helpers import RunInner, assert_closing_line_matches, by_nodeid

THREE = """
import pytest

def test_a():
    pass

def test_b():
    {action}

def test_c():
    pass
"""


def test_ctrl_c_leaves_an_interrupted_report(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    # A real SIGINT to the pytest process, as a terminal's Ctrl-C sends.
    pytester.makepyfile(
        THREE.format(
            action="import os, signal, time; os.kill(os.getpid(), signal.SIGINT); time.sleep(5)"
        )
    )
    result, report = run_inner(subprocess=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert report["status"] == "interrupted"
    assert report["run"]["complete"] is False
    assert report["run"]["interruption"]["kind"] == "keyboard_interrupt"
    assert "test_c" not in by_nodeid(report)
    assert by_nodeid(report)["test_a"]["outcome"] == "passed"


def test_exitfirst_marks_the_run_interrupted(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(THREE.format(action="assert False, 'first failure'"))
    result, report = run_inner("-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert report["status"] == "interrupted"
    assert report["run"]["interruption"]["kind"] == "maxfail"
    assert set(by_nodeid(report)) == {"test_a", "test_b"}


def test_pytest_exit_marks_the_run_interrupted(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(THREE.format(action="pytest.exit('maintenance window', returncode=3)"))
    result, report = run_inner()
    assert result.ret == 3
    assert report["status"] == "interrupted"
    assert report["run"]["interruption"] == {"kind": "exit", "reason": "maintenance window"}


def test_internal_error_still_writes_a_report_with_status_error(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makeconftest(
        """
        def pytest_runtest_logfinish(nodeid):
            if nodeid.endswith("test_b"):
                raise RuntimeError("plugin bug")
        """
    )
    pytester.makepyfile(THREE.format(action="pass"))
    result, report = run_inner()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    assert report["status"] == "error"
    assert report["run"]["interruption"]["kind"] == "internal_error"
    assert "plugin bug" in report["run"]["interruption"]["reason"]


FLAKY = """
import pathlib

def test_flaky(tmp_path_factory):
    marker = pathlib.Path({marker!r})
    if not marker.exists():
        marker.write_text("failed once")
        assert False, "first attempt fails"

def test_always_fails():
    assert False, "every attempt fails"
"""


def test_reruns_keep_every_attempt_and_a_pass_on_rerun_is_flaky(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(FLAKY.format(marker=str(pytester.path / "marker")))
    result, report = run_inner("-p", "rerunfailures", "--reruns=2")
    tests = by_nodeid(report)
    flaky = tests["test_flaky"]
    assert flaky["outcome"] == "flaky"
    assert [a["outcome"] for a in flaky["attempts"]] == ["failed", "passed"]
    assert "first attempt fails" in flaky["failure"]
    failing = tests["test_always_fails"]
    assert [a["outcome"] for a in failing["attempts"]] == ["failed"] * 3
    assert report["summary"]["flaky"] == 1
    # pytest's closing line: "1 failed, 1 passed, 3 rerun".
    assert report["summary"]["failed"] == 1
    assert report["summary"]["passed"] == 1
    assert report["summary"]["other"] == {"rerun": 3}
    assert_closing_line_matches(result, report)
    budget = next(g for g in report["gates"] if g["name"] == "flaky-budget")
    assert budget["status"] == "failed"
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_flaky_budget_allows_that_many_flaky_tests(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        FLAKY.format(marker=str(pytester.path / "marker")).split("def test_always")[0]
    )
    result, report = run_inner("-p", "rerunfailures", "--reruns=1", "--reliability-flaky-budget=1")
    assert report["summary"]["flaky"] == 1
    assert all(g["status"] == "passed" for g in report["gates"])
    assert report["status"] == "passed"
    assert result.ret == 0


def test_ctrl_c_on_the_xdist_controller_leaves_an_interrupted_report(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    # The worker signals its parent, the controller, as a terminal's Ctrl-C would.
    pytester.makepyfile(
        """
        import os, signal, time

        def test_a():
            pass

        def test_b():
            os.kill(os.getppid(), signal.SIGINT)
            time.sleep(3)
        """
    )
    result, report = run_inner("-p", "xdist", "-n", "2", subprocess=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert report["status"] == "interrupted"
    assert report["run"]["interruption"]["kind"] == "keyboard_interrupt"
    assert report["run"]["complete"] is False
