"""Outage drills: every module fails closed in time and recovers, the history check finds a
planted bug, and the results reach the report's ``chaos_drills`` section.

The drills here are the fast subset (PostgreSQL paused and killed, two or three traffic
workers); ``ci/chaos-validation.sh`` runs the whole set.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytest_reliability.chaos_infra as chaos_infra
from harness.chaos_drills import Scenario, _judge, quick_scenarios, run_scenario
from harness.drills.history import Window, check_history
from harness.drills.probes import Probe
from pytest_reliability.chaos_infra import (
    ContainerPool,
    DrillResult,
    chaos_drills_section,
    recorded_drills,
)
from pytest_reliability.errors import ConfigurationError, DockerUnavailable
from pytest_reliability.report import merge_reports, summary_text, validate_report
from tests.plugin._helpers import RunInner

pytestmark = [pytest.mark.chaos]
ROOT = Path(__file__).resolve().parents[2]


def _chaos_gate(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    full.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        ["bash", str(ROOT / "ci" / "chaos-validation.sh")],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def pool() -> Iterator[ContainerPool]:
    try:
        pool = ContainerPool()
    except DockerUnavailable as exc:
        pytest.skip(f"containers: {exc.reason}")
    yield pool
    pool.close()


@pytest.mark.docker
@pytest.mark.slow
def test_the_quick_drill_fails_every_module_closed_in_time_and_loses_nothing(
    pool: ContainerPool,
) -> None:
    (scenario,) = quick_scenarios()
    before = len(recorded_drills())
    results = {r.module: r for r in run_scenario(pool, scenario)}
    assert set(results) == {"readiness", "health", "idempotency", "audit", "kill_switch", "abuse"}
    for result in results.values():
        assert result.violations == (), result
        assert result.time_to_fail_closed_s is not None
        assert result.time_to_fail_closed_s <= result.fail_closed_bound_s
        assert result.time_to_recover_s is not None
    assert results["readiness"].time_to_fail_closed_s <= 1.0  # type: ignore[operator]
    assert results["health"].time_to_fail_closed_s <= 1.0  # type: ignore[operator]
    assert results["idempotency"].histories_checked > 0
    assert results["abuse"].time_to_fail_closed_s <= 1.0  # type: ignore[operator]
    assert results["abuse"].histories_checked > 0
    assert list(recorded_drills()[before:]) == list(results.values())


@pytest.mark.docker
@pytest.mark.slow
def test_a_drill_catches_a_handler_that_acknowledges_before_its_effect_is_durable(
    pool: ContainerPool,
) -> None:
    # The killed server takes the uncommitted effects with it; the callers were already told.
    scenario = Scenario(
        "postgres", "kill", ("idempotency",), workers=3, mode="ack-early",
        expected_failed=("idempotency",),
    )  # fmt: skip
    (result,) = run_scenario(pool, scenario)
    assert any(v.startswith("acknowledged but lost effects") for v in result.violations), result
    assert result.passed is False
    assert result.expected == "failed"
    section = chaos_drills_section([result])
    assert (section["failed"], section["expected_failures"], section["violations"]) == (0, 1, 0)


class _StaleCache(Probe):
    module = "stale-cache"
    fail_closed_bound_s = 0.2


def _samples(*rows: tuple[float, float, str]) -> list[tuple[float, float, str, str]]:
    return [(t0, t1, verdict, "") for t0, t1, verdict in rows]


def test_a_module_that_keeps_serving_through_the_fault_is_a_violation() -> None:
    window = Window(fault_at=10.0, undo_at=12.0, undone_at=12.1)
    samples = _samples((9.0, 9.1, "healthy"), (10.5, 10.6, "healthy"), (12.2, 12.3, "healthy"))
    to_close, to_recover, problems = _judge(_StaleCache(), samples, window)
    assert to_close is None
    assert to_recover == pytest.approx(0.2)
    assert problems == [
        "did not fail closed while the store was faulted",
        "served 1 times while the store was faulted",
    ]


def test_a_late_fail_closed_answer_is_over_its_bound() -> None:
    window = Window(fault_at=10.0, undo_at=12.0, undone_at=12.0)
    samples = _samples((9.0, 9.1, "healthy"), (10.0, 10.5, "closed"), (12.0, 12.1, "healthy"))
    to_close, _, problems = _judge(_StaleCache(), samples, window)
    assert to_close == pytest.approx(0.5)
    assert problems == ["failed closed after 0.500 s, over its bound of 0.2 s"]


def _done(key: str, outcome: str, t: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"ev": "done", "key": key, "t": t, "start": t, "outcome": outcome, **extra}


def test_the_history_check_finds_duplicates_losses_and_unaudited_effects() -> None:
    window = Window(fault_at=10.0, undo_at=12.0, undone_at=12.0)
    entries = [
        _done("dup", "ack", response={"charged": "dup"}),
        _done("lost", "ack", response={"charged": "lost"}),
        _done("fine", "ack", response={"charged": "fine"}),
        _done("fine", "ack", response={"charged": "fine"}),  # a replay
        _done("refused", "refused", t=11.0, error="IdempotencyUnavailable"),
        {"ev": "handler", "key": "sneaky", "t": 11.0},
        _done("sneaky", "refused", t=11.0),
        _done("open", "refused", t=11.8, switch="open"),
    ]
    effects = {"dup": 2, "fine": 1, "unaudited": 1}
    events = {"dup": 2, "fine": 1}
    verdict = check_history(
        [*entries, _done("unaudited", "refused")],
        effects,
        events,
        window,
        claim_grace_s=0.25,
        switch_bound_s=1.5,
    )
    assert verdict.requests == 8
    assert verdict.acknowledged == 4
    assert verdict.violations["idempotency"] == [
        "duplicated effects: 1 (dup)",
        "acknowledged but lost effects: 1 (lost)",
        "handler ran while the store could not be claimed: 1 (sneaky)",
    ]
    assert verdict.violations["audit"] == ["effects without exactly one audit event: 1 (unaudited)"]
    assert verdict.violations["kill_switch"] == [
        "requests let through an unreadable switch store: 1 (open)"
    ]


def test_a_clean_history_has_no_violation() -> None:
    window = Window(fault_at=10.0, undo_at=12.0, undone_at=12.0)
    entries = [_done(f"k{i}", "ack", response={"charged": f"k{i}"}) for i in range(3)]
    effects = {f"k{i}": 1 for i in range(3)}
    verdict = check_history(entries, effects, effects, window, claim_grace_s=0.25, switch_bound_s=1)
    assert dict(verdict.violations) == {}


def test_a_drill_result_refuses_what_the_report_could_not_hold() -> None:
    good = {"module": "m", "store": "s", "fault": "pause"}
    bounds = {"fail_closed_bound_s": 1.0, "recover_bound_s": 30.0}
    with pytest.raises(ConfigurationError, match="finite"):
        DrillResult(**good, time_to_fail_closed_s=-1.0, time_to_recover_s=None, **bounds)
    with pytest.raises(ConfigurationError, match="a drill needs a module"):
        DrillResult(**{**good, "module": ""}, time_to_fail_closed_s=None, time_to_recover_s=None,
                    **bounds)  # fmt: skip
    with pytest.raises(ConfigurationError, match="histories_checked"):
        DrillResult(**good, time_to_fail_closed_s=None, time_to_recover_s=None,
                    histories_checked=-1, **bounds)  # fmt: skip


_INNER = """
from pytest_reliability.chaos_infra import DrillResult, record_drill


def test_drill_{n}():
    record_drill(DrillResult(
        module="idempotency", store="postgres", fault="pause", time_to_fail_closed_s=0.5,
        time_to_recover_s=0.1, fail_closed_bound_s=3.0, recover_bound_s=30.0,
        histories_checked=120, violations={violations}, expected={expected!r},
    ))
"""


@pytest.mark.parametrize("workers", [[], ["-p", "xdist", "-n", "2"]], ids=["in-process", "xdist"])
def test_recorded_drills_reach_the_report_from_every_worker(
    run_inner: RunInner, pytester: pytest.Pytester, workers: list[str]
) -> None:
    # The failing drill is planted: an in-process run's drills are this process's too, and
    # reach the outer run's report, where an unplanted one would read as a real failure.
    pytester.makepyfile(
        test_a=_INNER.format(n=1, violations="()", expected="passed"),
        test_b=_INNER.format(
            n=2, violations='("acknowledged but lost effects: 1 (k)",)', expected="failed"
        ),
    )
    _, report = run_inner(*workers, subprocess=bool(workers))
    section = report["chaos_drills"]
    assert (section["passed"], section["failed"], section["violations"]) == (1, 0, 0)
    assert section["expected_failures"] == 1
    assert len(section["drills"]) == 2
    failed = next(d for d in section["drills"] if d["status"] == "failed")
    assert failed["violations"] == ["acknowledged but lost effects: 1 (k)"]
    assert failed["histories_checked"] == 120
    assert failed["expected"] == "failed"
    passed = next(d for d in section["drills"] if d["status"] == "passed")
    assert "expected" not in passed
    assert (
        "outage drills: 1 passed, 0 failed, 1 failed as planted, 0 violations\n"
    ) in summary_text(report)


def test_shards_drills_are_merged(run_inner: RunInner, pytester: pytest.Pytester) -> None:
    reports = []
    for n, violations in ((1, "()"), (2, '("duplicated effects: 2 (a, b)",)')):
        pytester.makepyfile(
            **{f"test_s{n}": _INNER.format(n=n, violations=violations, expected="passed")}
        )
        # In a subprocess: this unplanted failing drill must not reach the outer run's report.
        _, report = run_inner(f"test_s{n}.py", subprocess=True)
        reports.append(report)
    merged = merge_reports(reports)
    validate_report(merged)
    section = merged["chaos_drills"]
    assert (section["passed"], section["failed"], section["violations"]) == (1, 1, 1)
    assert len(section["drills"]) == 2


def test_a_run_without_drills_has_no_section(
    run_inner: RunInner, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_a="def test_nothing():\n    pass\n")
    _, report = run_inner()
    assert "chaos_drills" not in report


def test_the_chaos_gate_fails_with_the_reason_when_no_docker_engine_answers(tmp_path: Path) -> None:
    report = tmp_path / "chaos.json"
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock", "CHAOS_REPORT": str(report)}
    done = _chaos_gate(env, tmp_path)
    assert done.returncode == 1
    assert "FAILED: no Docker Engine for the drills" in done.stderr
    assert "no-docker.sock" in done.stderr
    assert not report.exists()


@pytest.mark.docker
@pytest.mark.slow
def test_the_chaos_gate_runs_a_drill_and_writes_its_section(
    pool: ContainerPool, tmp_path: Path
) -> None:
    report = tmp_path / "chaos.json"
    env = {"CHAOS_DRILLS": "redis and pause", "CHAOS_REPORT": str(report), "CHAOS_BUDGET_S": "240"}
    done = _chaos_gate(env, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "chaos-validation: PASSED" in done.stdout
    section = json.loads(report.read_text(encoding="utf-8"))["chaos_drills"]
    assert [(d["module"], d["store"], d["fault"]) for d in section["drills"]] == [
        ("kill_switch", "redis", "pause"),
        ("abuse", "redis", "pause"),
        ("idempotency", "redis", "pause"),
    ]
    assert all(d["histories_checked"] > 0 for d in section["drills"])
    assert section["violations"] == 0


def test_the_gate_check_fails_a_report_with_a_violation_or_a_late_drill(tmp_path: Path) -> None:
    from harness.chaos_drills import check_report

    def drill(**changes: Any) -> dict[str, Any]:
        result = DrillResult("audit", "postgres", "pause", 0.5, 0.2, 1.0, 30.0, histories_checked=9)
        return {**result.to_json(), **changes}

    path = tmp_path / "report.json"
    for drills, expected in [
        ([drill()], []),
        (
            [drill(time_to_fail_closed_s=1.5)],
            ["0 drills failed, 0 violations, 1 over a time bound"],
        ),
        ([drill(time_to_recover_s=None)], ["0 drills failed, 0 violations, 1 over a time bound"]),
        ([], ["the report has no chaos_drills section: no drill ran"]),
    ]:
        path.write_text(json.dumps({"chaos_drills": chaos_drills_section(drills)}))
        assert check_report(path) == expected
    failing = drill(status="failed", violations=["duplicated effects: 1 (k)"])
    path.write_text(json.dumps({"chaos_drills": chaos_drills_section([failing])}))
    assert check_report(path) == ["1 drills failed, 1 violations, 0 over a time bound"]
    # A drill that failed as planted fails nothing, its late times included; one that passed
    # missed its planted bug and fails the gate.
    planted = {**failing, "expected": "failed", "time_to_fail_closed_s": None}
    path.write_text(json.dumps({"chaos_drills": chaos_drills_section([drill(), planted])}))
    assert check_report(path) == []
    missed = drill(expected="failed")
    path.write_text(json.dumps({"chaos_drills": chaos_drills_section([missed])}))
    assert check_report(path) == ["1 drills failed, 0 violations, 0 over a time bound"]


def _section_schema() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "schemas" / "reliability-report.schema.json").read_text())
    return Draft202012Validator({"$defs": schema["$defs"], **schema["properties"]["chaos_drills"]})


_SECTION_SCHEMA = _section_schema()
_SECONDS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers())


@given(
    close=_SECONDS,
    recover=_SECONDS,
    bound=_SECONDS,
    checked=st.integers(min_value=-5, max_value=2**63),
    violations=st.lists(st.text(max_size=20), max_size=3),
)
def test_a_drill_result_is_refused_or_fits_the_report_schema(
    close: Any, recover: Any, bound: Any, checked: int, violations: list[str]
) -> None:
    try:
        result = DrillResult("audit", "postgres", "pause", close, recover, bound, 30.0,
                             histories_checked=checked, violations=tuple(violations))  # fmt: skip
    except ConfigurationError:
        return
    section = chaos_drills_section([result])
    assert section["failed"] == (1 if violations else 0)
    assert list(_SECTION_SCHEMA.iter_errors(section)) == []


def test_the_drill_names_are_public() -> None:
    names = {"DrillResult", "chaos_drills_section", "record_drill", "recorded_drills"}
    assert names <= set(chaos_infra.__all__)


@pytest.mark.docker
@pytest.mark.slow
def test_a_gate_over_its_budget_fails_and_leaves_nothing_running(
    pool: ContainerPool, tmp_path: Path
) -> None:
    from pytest_reliability.chaos_infra import MANAGED_LABEL, OWNER_LABEL
    from pytest_reliability.chaos_infra._containers import _owner_alive

    started = time.time()
    env = {"CHAOS_BUDGET_S": "12", "CHAOS_REPORT": str(tmp_path / "chaos.json")}
    done = _chaos_gate(env, tmp_path)
    assert done.returncode == 1
    assert "the drills overran their budget of 12 s" in done.stderr
    # SIGTERM at the budget: the plugin turns it into an interruption, so the drill's cleanup
    # and the pool's teardown run, and nothing the run started is left.
    leftovers = [
        c["Names"]
        for c in pool.client.api.containers(all=True, filters={"label": MANAGED_LABEL})
        if c["Created"] >= started - 1 and not _owner_alive(c["Labels"].get(OWNER_LABEL, ""))
    ]
    assert leftovers == []
