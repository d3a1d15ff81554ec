"""The public surface of the report and chaos modules is exactly what ``__all__`` says."""

from __future__ import annotations

import inspect

import pytest

import pytest_reliability.ops.chaos_engine as chaos_engine
import pytest_reliability.report as report
from pytest_reliability import hookspecs


@pytest.mark.parametrize("module", [report, chaos_engine])
def test_all_lists_the_public_names(module: object) -> None:
    name = module.__name__  # type: ignore[attr-defined]
    defined_here = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ in (name, *(m for m in _private_modules(name)))
    }
    exported = set(module.__all__)  # type: ignore[attr-defined]
    assert defined_here <= exported
    for attr in exported:
        assert hasattr(module, attr), attr


def _private_modules(package: str) -> list[str]:
    import sys

    return [m for m in sys.modules if m.startswith(f"{package}._")]


def test_every_hook_specification_is_prefixed_and_documented() -> None:
    hooks = [n for n, v in vars(hookspecs).items() if inspect.isfunction(v)]
    assert sorted(hooks) == [
        "pytest_reliability_chaos_targets",
        "pytest_reliability_gates",
        "pytest_reliability_kill_switch_store",
        "pytest_reliability_modify_report",
        "pytest_reliability_report_sections",
    ]
    for name in hooks:
        assert getattr(hookspecs, name).__doc__
