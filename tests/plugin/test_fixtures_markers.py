"""The chaos and correlation_ids fixtures, deterministic uuid4, markers and category gates."""

from __future__ import annotations

import pytest

from tests.plugin._helpers import RunInner, by_nodeid


def test_chaos_faults_are_removed_even_when_the_test_fails(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import os

        def test_fails_with_fault_armed(chaos):
            chaos.return_value("os.cpu_count", -7)
            assert os.cpu_count() == -7
            assert False, "test fails while the fault is armed"

        def test_runs_after(tmp_path):
            assert os.cpu_count() != -7
        """
    )
    result, report = run_inner("-p", "no:randomly")
    tests = by_nodeid(report)
    assert tests["test_fails_with_fault_armed"]["outcome"] == "failed"
    assert tests["test_runs_after"]["outcome"] == "passed"
    assert tests["test_fails_with_fault_armed"]["facts"]["chaos"]["fired"] == 1
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("variable", ["RELIABILITY_ENV", "APP_ENV", "ENVIRONMENT"])
def test_chaos_fixture_refuses_in_production(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, "production")
    monkeypatch.setenv("CHAOS_ENABLED", "true")
    pytester.makepyfile("def test_chaos(chaos):\n    pass\n")
    _, report = run_inner()
    test = report["tests"][0]
    assert test["outcome"] == "error"
    assert "ChaosDisabled" in test["failure"]
    assert variable in test["failure"]


def test_chaos_targets_hook_adds_aliases_and_custom_targets(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makeconftest(
        """
        class QueueOutage:
            def __init__(self):
                self.down = False

            def install(self, fault, params):
                self.down = params["mode"]
                return lambda: setattr(self, "down", False)

        QUEUE = QueueOutage()

        def pytest_reliability_chaos_targets(config):
            return {"cwd": "os.getcwd", "queue": QUEUE}
        """
    )
    pytester.makepyfile(
        """
        import os
        import pytest
        from conftest import QUEUE
        from pytest_reliability.errors import InjectedFault

        def test_targets(chaos):
            chaos.raise_exception("cwd")
            with pytest.raises(InjectedFault):
                os.getcwd()
            chaos.inject("queue", mode="partition", kind="queue_outage")
            assert QUEUE.down == "partition"

        def test_restored():
            assert QUEUE.down is False
        """
    )
    result, report = run_inner("-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()
    faults = by_nodeid(report)["test_targets"]["facts"]["chaos"]["faults"]
    assert [(f["target"], f["kind"]) for f in faults] == [
        ("os.getcwd", "exception"),
        ("queue", "queue_outage"),
    ]


IDS = """
import uuid
from pytest_reliability import ids

def test_a(correlation_ids):
    print("IDS", test_a.__name__, correlation_ids(), correlation_ids(), uuid.uuid4())

def test_b(correlation_ids):
    print("IDS", test_b.__name__, correlation_ids(), ids.new_id("job"), uuid.uuid4())
"""


def _ids(result: pytest.RunResult) -> list[str]:
    return sorted(line[line.index("IDS ") :] for line in result.outlines if "IDS " in line)


def test_correlation_ids_are_deterministic_per_node_id_only_when_asked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(IDS)

    def run(*args: str) -> list[list[str]]:
        result = pytester.runpytest("-p", "reliability", "-s", "--reliability-seed=4", *args)
        return [line.split() for line in _ids(result)]

    def ids_only(lines: list[list[str]]) -> list[list[str]]:
        return [line[:4] for line in lines]  # drop the uuid4, random without its option

    assert ids_only(run()) != ids_only(run())
    monkeypatch.setenv("DETERMINISTIC_TEST_IDS", "true")
    first = run()
    assert ids_only(first) == ids_only(run())
    assert ids_only(first) == ids_only(run("-k", "test_b or test_a"))
    assert ids_only(run("-k", "test_b")) == ids_only(first)[1:]
    assert ids_only(first) != ids_only(run("--reliability-seed=5"))
    assert first[0][-1] != run()[0][-1]


def test_deterministic_uuid4_option_scopes_uuid4_by_node_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(IDS)

    def run(*args: str) -> list[str]:
        argv = ["-p", "reliability", "-s", "--reliability-seed=4"]
        return _ids(pytester.runpytest(*argv, "--reliability-deterministic-uuid4", *args))

    first = run()
    assert first == run()
    assert [line.split()[-1] for line in run("-k", "test_b")] == [
        line.split()[-1] for line in first if "test_b" in line
    ]
    a_uuid, b_uuid = (line.split()[-1] for line in first)
    assert a_uuid != b_uuid


def test_markers_are_registered_and_declare_categories(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    listed = pytester.runpytest("-p", "reliability", "--markers").stdout.str()
    for marker in ("@pytest.mark.chaos:", "@pytest.mark.kill_switch:", "@pytest.mark.idempotency:"):
        assert marker in listed
    assert "@pytest.mark.reliability(*categories):" in listed
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kill_switch
        def test_switch():
            pass

        @pytest.mark.reliability("idempotency", "webhooks")
        def test_both():
            pass

        @pytest.mark.idempotency
        def test_failing_idempotency():
            assert False

        def test_uses_chaos(chaos):
            pass
        """
    )
    result, report = run_inner(
        "--strict-markers", "--reliability-require=kill_switch,idempotency,chaos"
    )
    tests = by_nodeid(report)
    assert tests["test_switch"]["categories"] == ["kill_switch"]
    assert tests["test_both"]["categories"] == ["idempotency", "webhooks"]
    assert tests["test_uses_chaos"]["categories"] == ["chaos"]
    gate = next(g for g in report["gates"] if g["name"] == "required-categories")
    assert gate["status"] == "passed"
    result, report = run_inner("--reliability-require=audit", "-k", "not failing")
    gate = next(g for g in report["gates"] if g["name"] == "required-categories")
    assert gate["reasons"] == ["no passing test in required category 'audit'"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["gate required-categories: FAILED"])


def test_a_malformed_category_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.reliability("Not A Category")
        def test_bad():
            pass
        """
    )
    result = pytester.runpytest("-p", "reliability")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Not A Category" in result.stderr.str()
