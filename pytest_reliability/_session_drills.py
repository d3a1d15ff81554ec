"""The restore drills a pytest session ran, carried into the report's ``backups`` section.

The drill module keeps every drill its process ran
(:func:`~pytest_reliability.ops.restore_drill.session_drills`). A session's drills are those run
after it was configured (an in-process pytester run does not take the outer run's), plus those
each pytest-xdist worker sends in ``workeroutput``. Nothing here imports the drill module: a
process that never imported it ran no drill, and loading the plugin stays cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import pytest

_DRILL_MODULE = "pytest_reliability.ops.restore_drill"
WORKER_KEY = "reliability_drills"
"""The ``workeroutput`` key under which a worker sends its drills (a list of JSON objects)."""


def _process_drills() -> tuple[Any, ...]:
    module = sys.modules.get(_DRILL_MODULE)
    return () if module is None else tuple(module.session_drills())


def _drill_order(drill: Any) -> tuple[str, str]:
    if not isinstance(drill, Mapping):
        return ("", "")
    return (str(drill.get("finished_at", "")), str(drill.get("backup", "")))


class SessionDrills:
    """Registered by the plugin on the controller and on workers of a run that writes a report.

    On a worker it sends the drills run there; on the controller it gathers the workers' and its
    own, and :meth:`report_parts` gives the report's ``backups`` section when any ran.
    """

    def __init__(self, worker: bool) -> None:
        self.worker = worker
        self.start = len(_process_drills())
        self.sent: list[Any] = []

    def local(self) -> list[dict[str, Any]]:
        """Return the drills this process ran since the session began, as report objects."""
        return [drill.to_json() for drill in _process_drills()[self.start :]]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Keep the drills a worker sent."""
        sent = (getattr(node, "workeroutput", None) or {}).get(WORKER_KEY) or []
        # Kept as sent, whatever its shape: the schema check of the report rejects a bad one.
        self.sent.extend(sent if isinstance(sent, list) else [sent])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """On a worker, send this worker's drills to the controller."""
        if self.worker:
            output: dict[str, Any] = session.config.workeroutput  # type: ignore[attr-defined]
            output[WORKER_KEY] = self.local()

    def report_parts(self) -> dict[str, Any]:
        """Return ``{"backups": section}`` when a drill ran in the session, else ``{}``."""
        drills = [*self.sent, *self.local()]
        if not drills:
            return {}
        from pytest_reliability.ops.restore_drill import backups_section

        # Oldest first, whichever process ran it: the order does not depend on the xdist layout.
        drills.sort(key=_drill_order)
        return {"backups": backups_section(drills)}
