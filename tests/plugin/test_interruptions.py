"""Interrupted runs still leave a valid report saying what happened; reruns keep every attempt."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.plugin._helpers import (
    REPORT,
    RunInner,
    assert_closing_line_matches,
    by_nodeid,
    load_report,
)

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
    assert set(report["run"]["workers"]) == {"gw0", "gw1"}


CHAOS_THEN_STOP = """
import os, signal, time
import pytest

def test_first():
    pass

def helper():
    return "real"

def test_stopped(chaos):
    chaos.raise_exception("test_stop.helper", on_call=1)
    {stop}

def test_never():
    pass
"""


@pytest.mark.parametrize(
    ("stop", "kind"),
    [
        ("os.kill(os.getpid(), signal.SIGINT); time.sleep(5)", "keyboard_interrupt"),
        ("pytest.exit('stop here', returncode=3)", "exit"),
    ],
)
def test_a_test_stopped_in_its_call_is_interrupted_and_keeps_its_facts(
    pytester: pytest.Pytester, run_inner: RunInner, stop: str, kind: str
) -> None:
    pytester.makepyfile(test_stop=CHAOS_THEN_STOP.format(stop=stop))
    _, report = run_inner(subprocess=True)
    stopped = by_nodeid(report)["test_stopped"]
    assert stopped["outcome"] == "interrupted"
    assert [a["outcome"] for a in stopped["attempts"]] == ["interrupted"]
    assert stopped["facts"]["chaos"]["injected"] == 1
    assert "chaos" in stopped["categories"]
    assert report["summary"]["interrupted"] == 1
    assert report["summary"]["passed"] == 1
    assert report["run"]["interruption"]["kind"] == kind


def test_an_interrupted_test_is_not_called_fixed_by_diff(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    from pytest_reliability.report import diff_reports

    pytester.makepyfile(test_stop=CHAOS_THEN_STOP.format(stop="assert False"))
    _, failing = run_inner()
    pytester.makepyfile(test_stop=CHAOS_THEN_STOP.format(stop="pytest.exit('stop', returncode=3)"))
    _, stopped = run_inner()
    assert "test_stopped" not in " ".join(diff_reports(failing, stopped).fixed)


SLOW = """
import pathlib, time

def test_slow():
    pathlib.Path({started!r}).write_text("started")
    time.sleep(60)
"""


def _previous_passing_report(pytester: pytest.Pytester, run_inner: RunInner) -> None:
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    _, report = run_inner("test_ok.py")
    assert report["status"] == "passed"


def _run_until_started(pytester: pytest.Pytester) -> subprocess.Popen[bytes]:
    started = pytester.path / "started"
    pytester.makepyfile(test_slow=SLOW.format(started=str(started)))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "reliability",
            "-p",
            "no:cacheprovider",
            "test_slow.py",
        ],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert process.poll() is None, "pytest ended before the test started"
        assert time.monotonic() < deadline, "the test did not start within 60 s"
        time.sleep(0.05)
    return process


def test_a_killed_run_leaves_an_incomplete_report_not_the_previous_one(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    _previous_passing_report(pytester, run_inner)
    process = _run_until_started(pytester)
    process.kill()
    process.wait(timeout=30)
    report = load_report(pytester.path / REPORT)
    assert report["status"] == "incomplete"
    assert report["run"]["complete"] is False
    assert report["run"]["interruption"]["kind"] == "incomplete"
    assert report["run"]["exit_code"] == 1


def test_sigterm_is_handled_like_ctrl_c(pytester: pytest.Pytester, run_inner: RunInner) -> None:
    _previous_passing_report(pytester, run_inner)
    process = _run_until_started(pytester)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == pytest.ExitCode.INTERRUPTED
    report = load_report(pytester.path / REPORT)
    assert report["status"] == "interrupted"
    assert report["run"]["interruption"] == {"kind": "terminated", "reason": "SIGTERM"}
    assert by_nodeid(report)["test_slow"]["outcome"] == "interrupted"
