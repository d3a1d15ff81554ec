"""Renamed public names: the new ones are plain, the old ones warn for one release."""

from __future__ import annotations

import importlib

import pytest

import pytest_reliability.idempotency as idempotency
import pytest_reliability.ops as ops
import pytest_reliability.testing as testing
from pytest_reliability.ops import rbac, readiness_gates

RENAMED = [
    ("pytest_reliability.ops", "GateResult", "ReadinessGateResult"),
    ("pytest_reliability.ops.readiness_gates", "GateResult", "ReadinessGateResult"),
    ("pytest_reliability.ops", "Scope", "PermissionScope"),
    ("pytest_reliability.ops.rbac", "Scope", "PermissionScope"),
]


@pytest.mark.parametrize(("module", "old", "new"), RENAMED)
def test_an_old_name_warns_and_is_the_new_object(module: str, old: str, new: str) -> None:
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"{module}\.{old} is deprecated.*use .*\.{new}"):
        value = getattr(mod, old)
    assert value is getattr(mod, new)
    assert old not in mod.__all__
    assert new in mod.__all__
    assert old not in dir(mod)
    # Every access warns, not only the first: the alias is never cached on the module.
    with pytest.warns(DeprecationWarning, match=f"use .*{new}"):
        getattr(mod, old)


def test_from_import_of_an_old_name_warns_too() -> None:
    with pytest.warns(DeprecationWarning, match="ReadinessGateResult"):
        from pytest_reliability.ops import GateResult  # noqa: F401


def test_the_new_names_do_not_clash_with_the_report_or_idempotency() -> None:
    from pytest_reliability import report

    assert ops.ReadinessGateResult is readiness_gates.ReadinessGateResult
    assert ops.ReadinessGateResult is not report.GateResult
    assert ops.PermissionScope is rbac.PermissionScope
    assert "Scope" in idempotency.__all__
    assert "Scope" not in ops.__all__


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    for mod in (ops, readiness_gates, rbac, idempotency):
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            mod.Nope  # noqa: B018


def test_the_checker_lives_in_testing_and_is_still_importable_from_idempotency() -> None:
    assert set(testing.__all__) == {
        "DELIVERY_KINDS",
        "CheckStats",
        "Delivery",
        "DeliveryKind",
        "IdempotencyChecker",
        "RequestSequence",
        "assert_exactly_once",
        "assert_kill_switch_engaged",
        "assert_no_acknowledged_write_lost",
        "assert_not_ready",
        "exactly_once_violation",
    }
    for name in ("CheckStats", "IdempotencyChecker", "Delivery", "RequestSequence"):
        assert getattr(idempotency, name) is getattr(testing, name)
        assert getattr(testing, name).__module__.startswith("pytest_reliability.testing.")
    assert idempotency.crash_point.__module__ == "pytest_reliability.idempotency._crash"
