"""pytest-xdist: one report from the controller, the same for any -n; crashed workers; ids."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.plugin._helpers import RunInner, assert_closing_line_matches, by_nodeid

SUITE = """
import os, pathlib
import pytest
from pytest_reliability import ids

def _record(request, values):
    name = request.node.nodeid.replace("/", "_").replace(":", "_")
    out = pathlib.Path(os.environ["IDS_DIR"]) / name
    out.write_text("\\n".join(values))

@pytest.mark.parametrize("n", range(6))
def test_ids(n, correlation_ids, request):
    _record(request, correlation_ids.take(2) + [ids.new_id("order")])

@pytest.mark.chaos
def test_probability(chaos, request):
    chaos.return_value("os.getpid", -1, probability=0.5)
    fired = [os.getpid() == -1 for _ in range(20)]
    _record(request, ["".join("x" if f else "." for f in fired)])

def test_fails():
    assert False, "on purpose"

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

@pytest.mark.reliability("idempotency")
def test_category():
    pass
"""

REVERSE = """
import os

def pytest_collection_modifyitems(items):
    if os.environ.get("REVERSE"):
        items.reverse()
"""


def _stable(report: dict[str, Any]) -> dict[str, Any]:
    # What must not depend on the worker layout: everything but timings and worker ids.
    stable = copy.deepcopy(report)
    run = stable.pop("run")
    stable["seed"] = run["seed"]
    for test in stable["tests"]:
        test.pop("duration_s")
        test.pop("worker")
        for attempt in test["attempts"]:
            attempt.pop("duration_s")
            for phase in attempt.get("phases", {}).values():
                phase.pop("duration_s")
    return stable


def _ids(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def test_same_report_and_ids_for_n0_n2_n4_and_any_order(
    pytester: pytest.Pytester, run_inner: RunInner, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeconftest(REVERSE)
    monkeypatch.setenv("DETERMINISTIC_TEST_IDS", "true")
    reports, id_sets = [], []
    for n, reverse in (("0", ""), ("2", ""), ("4", "1")):
        ids_dir = pytester.mkdir(f"ids-{n}")
        monkeypatch.setenv("IDS_DIR", str(ids_dir))
        monkeypatch.setenv("REVERSE", reverse)
        result, report = run_inner("-p", "xdist", "-n", n, "--reliability-seed=99", subprocess=True)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        reports.append(report)
        id_sets.append(_ids(ids_dir))
    assert reports[0]["run"]["workers"] == []
    assert reports[1]["run"]["workers"] == ["gw0", "gw1"]
    assert reports[2]["run"]["workers"] == ["gw0", "gw1", "gw2", "gw3"]
    assert {t["worker"] for t in reports[2]["tests"]} <= {"gw0", "gw1", "gw2", "gw3"}
    assert _stable(reports[0]) == _stable(reports[1]) == _stable(reports[2])
    assert id_sets[0] == id_sets[1] == id_sets[2]
    assert len(id_sets[0]) == 7
    all_ids = [v for text in id_sets[0].values() for v in text.splitlines() if "-" in v]
    assert len(all_ids) == len(set(all_ids)) == 18
    fired = id_sets[0]["test_suite.py__test_probability"]
    # the seeded coin really flips both ways
    assert "x" in fired
    assert "." in fired


def test_a_killed_worker_fails_its_test_and_marks_the_run_incomplete(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import os, signal

        def test_before():
            pass

        def test_dies():
            os.kill(os.getpid(), signal.SIGKILL)

        def test_after():
            pass
        """
    )
    result, report = run_inner("-p", "xdist", "-n", "2", subprocess=True)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    tests = by_nodeid(report)
    assert tests["test_dies"]["outcome"] == "failed"
    assert "crashed while running" in tests["test_dies"]["failure"]
    assert tests["test_dies"]["worker"] in {"gw0", "gw1"}
    assert tests["test_before"]["outcome"] == tests["test_after"]["outcome"] == "passed"
    assert report["run"]["complete"] is False
    assert report["run"]["interruption"]["kind"] == "worker_crash"
    assert report["status"] == "interrupted"


def test_collection_errors_are_counted_once_under_xdist(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(test_good="def test_ok():\n    pass\n", test_broken="def test_(:\n")
    result, report = run_inner("-p", "xdist", "-n", "2", subprocess=True)
    assert result.ret != 0
    assert report["summary"]["collection_errors"] == 1
    assert [e["nodeid"] for e in report["collection_errors"]] == ["test_broken.py"]
    gate = next(g for g in report["gates"] if g["name"] == "no-failures")
    assert gate["status"] == "failed"
    assert any("test_broken.py" in r for r in gate["reasons"])


def test_xdist_version_and_workers_are_recorded(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    import xdist

    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.parametrize('n', range(4))\ndef test_n(n):\n    pass\n"
    )
    result, report = run_inner("-p", "xdist", "-n", "2")
    assert result.ret == 0
    assert report["run"]["versions"]["xdist"] == xdist.__version__
    assert report["run"]["workers"] == ["gw0", "gw1"]
    assert_closing_line_matches(result, report)
