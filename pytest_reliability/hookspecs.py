"""Hook specifications of the reliability plugin, registered in ``pytest_addhooks``.

Implement them in a ``conftest.py`` or a plugin of your own. Each runs on the process that writes
the report (the xdist controller, or the only process), except
:func:`pytest_reliability_chaos_targets`, which runs wherever a test asks for the ``chaos``
fixture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_reliability.ops.chaos_engine import ChaosTarget
    from pytest_reliability.report import Gate


def pytest_reliability_report_sections(config: pytest.Config) -> Mapping[str, Any] | None:
    """Return sections (name -> JSON value) to add under the report's ``sections``.

    Later plugins win on a name clash. Values must be JSON-serialisable.
    """


def pytest_reliability_modify_report(config: pytest.Config, report: dict[str, Any]) -> None:
    """Change the report in place after sections and gates are in, before it is validated.

    The result must still match the schema, or the report is not written and the run errors.
    """


def pytest_reliability_gates(config: pytest.Config, report: Mapping[str, Any]) -> list[Gate] | None:
    """Return extra :class:`~pytest_reliability.report.Gate` objects to run over the report.

    ``report`` holds ``run``, ``summary``, ``tests`` and ``collection_errors``. A failed gate
    makes pytest exit non-zero even when every test passed.
    """


@pytest.hookspec(firstresult=True)
def pytest_reliability_kill_switch_store(config: pytest.Config) -> Any:
    """Return the store the ``kill_switches`` fixture uses: a URL or a ``KillSwitchStore``.

    The first non-None answer wins; with none, the fixture uses ``memory://``.
    """


def pytest_reliability_chaos_targets(
    config: pytest.Config,
) -> Mapping[str, ChaosTarget | str] | None:
    """Return named chaos targets: an alias for a dotted path, or a custom target object.

    A custom target (see :class:`~pytest_reliability.ops.chaos_engine.ChaosTarget`) installs its
    own fault and returns the function that removes it; ``chaos.inject(name, ...)`` arms it.
    """
