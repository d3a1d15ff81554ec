"""The proof: property-based chaos finds the double charge that example tests miss.

The checkout service (``checkout.py``) charges twice only when its primary endpoint refuses the
connection and then the secondary's answer times out after the charge. Hand-written chaos tests,
one fault each, pass. The property test finds the bug within 200 examples for every seed tried,
and Hypothesis shrinks the schedule to exactly those two faults; the fixed service passes 2,000
examples. The inner runs go through the plugin, so the report's facts are checked too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from pytest_reliability.errors import ChaosInvariantViolated
from pytest_reliability.fixtures._chaos import example_seed
from pytest_reliability.ops.chaos_engine import (
    ChaosEngine,
    FaultSchedule,
    ScheduledFault,
)
from pytest_reliability.strategies import fault_schedules
from pytest_reliability.testing import assert_exactly_once
from tests.chaos_property import checkout
from tests.chaos_property.conftest import RunInner

TARGETS = checkout.targets()
HERE = checkout.__name__


def _shrunk(module: str) -> FaultSchedule:
    return FaultSchedule(
        [
            ScheduledFault(
                f"{module}.connect", "exception", on_call=1, error=ConnectionRefusedError
            ),
            ScheduledFault(f"{module}.read_answer", "timeout", on_call=1),
        ]
    )


def _pay(service: checkout.CheckoutService) -> list[Any]:
    try:
        return [service.pay("order-1", 4200)]
    except (checkout.PaymentFailed, Exception):
        return []


# -- example tests: one fault each, written by hand; all pass on the broken service ----------


@pytest.mark.chaos
def test_a_timeout_alone_is_retried_under_the_key(chaos: ChaosEngine) -> None:
    provider = checkout.Provider()
    chaos.timeout(f"{HERE}.read_answer", on_call=1)
    assert checkout.CheckoutService(provider).pay("order-1", 4200) == "ch_1"
    assert provider.charged("order-1") == 1


@pytest.mark.chaos
def test_a_refused_primary_alone_charges_once_on_the_secondary(chaos: ChaosEngine) -> None:
    provider = checkout.Provider()
    chaos.raise_exception(f"{HERE}.connect", ConnectionRefusedError, on_call=1)
    assert checkout.CheckoutService(provider).pay("order-1", 4200) == "ch_1"
    assert provider.charged("order-1") == 1


@pytest.mark.chaos
def test_an_audit_failure_alone_charges_once(chaos: ChaosEngine) -> None:
    provider = checkout.Provider()
    chaos.raise_exception(f"{HERE}.audit")
    assert _pay(checkout.CheckoutService(provider)) == []
    assert provider.charged("order-1") == 1


# -- the property, in this process: many seeds, each found within 200 examples and shrunk ------


def _search(
    hypothesis_seed: int, *, fixed: bool, examples: int
) -> tuple[int, FaultSchedule | None]:
    engine = ChaosEngine(in_test=True, environ={})
    tried = [0]

    @seed(hypothesis_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(fault_schedules(TARGETS, max_faults=4))
    def charged_once(schedule: FaultSchedule) -> None:
        provider = checkout.Provider()
        with engine.apply(schedule, targets=TARGETS) as run:
            acked = _pay(checkout.CheckoutService(provider, fixed=fixed))
        tried[0] += 1
        assert_exactly_once(
            run, effects={"order-1": provider.charged("order-1")}, acknowledged={"order-1": acked}
        )

    try:
        charged_once()
    except ChaosInvariantViolated as exc:
        return tried[0], exc.schedule  # type: ignore[return-value]
    return tried[0], None


@pytest.mark.parametrize("run_seed", range(8))
def test_the_double_charge_is_found_and_shrunk_to_its_two_faults(run_seed: int) -> None:
    _, schedule = _search(example_seed(run_seed, "checkout"), fixed=False, examples=200)
    assert schedule is not None, f"not found in 200 examples with seed {run_seed}"
    assert set(schedule) == set(_shrunk(HERE)), schedule
    assert len(schedule) == 2


# -- through the plugin: the chaos fixture inside @given, the report, the replay ----------------

PROPERTY_TEST = """
from hypothesis import HealthCheck, given, settings

import checkout
from pytest_reliability.strategies import fault_schedules
from pytest_reliability.testing import assert_exactly_once

TARGETS = checkout.targets()


# too_slow: the CI machine is shared; generation slowed by load is not the property failing.
@settings(
    max_examples=200, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(schedule=fault_schedules(TARGETS, max_faults=4))
def test_an_order_is_charged_at_most_once(chaos, schedule):
    provider = checkout.Provider()
    service = checkout.CheckoutService(provider, fixed={fixed})
    with chaos.apply(schedule, targets=TARGETS) as run:
        try:
            acknowledged = [service.pay("order-1", 4200)]
            run.note("pay acknowledged")
        except Exception as exc:
            acknowledged = []
            run.note(f"pay failed: {{type(exc).__name__}}")
    assert_exactly_once(
        run,
        effects={{"order-1": provider.charged("order-1")}},
        acknowledged={{"order-1": acknowledged}},
    )
"""


def _property(report: dict[str, Any]) -> dict[str, Any]:
    (test,) = report["tests"]
    return test["facts"]["chaos"]["property"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("run_seed", [1, 7, 4242])
def test_the_plugin_run_finds_shrinks_and_reports_it(
    inner: RunInner, pytester: pytest.Pytester, run_seed: int
) -> None:
    pytester.makepyfile(test_checkout_chaos=PROPERTY_TEST.format(fixed=False))
    result, report = inner(f"--reliability-seed={run_seed}")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "FailedHealthCheck" not in output
    facts = _property(report)
    shrunk = facts["shrunk"]
    assert FaultSchedule.from_json(shrunk["json"]) == FaultSchedule.loads(
        _shrunk("checkout").dumps()
    ) or set(FaultSchedule.from_json(shrunk["json"])) == set(_shrunk("checkout"))
    assert "ScheduledFault('checkout.connect', 'exception', on_call=1" in shrunk["python"]
    assert shrunk["unfired"] == []
    assert facts["examples"] <= 200 + 400  # found within 200, then shrunk
    assert facts["distinct_schedules"] >= 2
    # The message: the invariant, the shrunk schedule to paste, the history, the seed.
    assert (
        "chaos invariant violated: exactly one effect per key: key 'order-1': 2 effects" in output
    )
    assert "schedule (Python; paste into a regression test):" in output
    assert "checkout.read_answer: call 1: timeout fault fired" in output
    assert f"replay: pytest --reliability-seed={run_seed}" in output


@pytest.mark.slow
def test_the_fixed_service_passes_two_thousand_examples() -> None:
    tried, schedule = _search(20261130, fixed=True, examples=2000)
    assert schedule is None
    assert tried >= 2000


def test_the_examples_option_sets_how_many_schedules_a_test_explores(
    inner: RunInner, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_checkout_chaos=PROPERTY_TEST.format(fixed=True))
    # The test asks for 200; the option (a nightly job's, or a pull request's) overrides it.
    result, report = inner("--reliability-seed=5", "--reliability-chaos-examples=60")
    result.assert_outcomes(passed=1)
    facts = _property(report)
    assert facts["examples"] == 60
    assert facts["distinct_schedules"] > 20
    assert "shrunk" not in facts
    assert facts["fired_by_kind"]
    assert facts["unfired_by_kind"]  # schedules often name a call that never comes
    assert report["tests"][0]["categories"] == ["chaos"]


def test_a_plain_assert_failure_also_shows_the_history_and_the_seed(
    inner: RunInner, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        test_plain_assert="""
        from hypothesis import given, settings

        import checkout
        from pytest_reliability.strategies import fault_schedules

        TARGETS = checkout.targets()


        @settings(max_examples=200, database=None, deadline=None)
        @given(schedule=fault_schedules(TARGETS, max_faults=4))
        def test_charged_at_most_once(chaos, schedule):
            provider = checkout.Provider()
            with chaos.apply(schedule, targets=TARGETS):
                try:
                    checkout.CheckoutService(provider).pay("order-1", 4200)
                except Exception:
                    pass
            assert provider.charged("order-1") <= 1
        """
    )
    result, report = inner("--reliability-seed=3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError*",
            "*schedule (Python; paste into a regression test):",
            "*checkout.read_answer: call 1: timeout fault fired",
            "*seed: 3 (replay: pytest --reliability-seed=3)",
        ]
    )
    assert len(FaultSchedule.from_json(_property(report)["shrunk"]["json"])) == 2
