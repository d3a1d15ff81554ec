"""The restore drills a pytest session ran, carried into the report's ``backups`` section, and
the outage drills it ran, into ``chaos_drills``.

The drill module keeps every drill its process ran
(:func:`~pytest_reliability.ops.restore_drill.session_drills`). A session's drills are those run
after it was configured (an in-process pytester run does not take the outer run's), plus those
each pytest-xdist worker sends in ``workeroutput``. Nothing here imports the drill modules: a
process that never imported one ran no drill of its kind, and loading the plugin stays cheap.
Outage drills (``pytest_reliability.chaos_infra.record_drill``) travel the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import pytest

_DRILL_MODULE = "pytest_reliability.ops.restore_drill"
WORKER_KEY = "reliability_drills"
"""The ``workeroutput`` key under which a worker sends its drills (a list of JSON objects)."""
_OUTAGE_MODULE = "pytest_reliability.chaos_infra._drills"
OUTAGE_WORKER_KEY = "reliability_outage_drills"
"""The ``workeroutput`` key under which a worker sends its outage drills (JSON objects)."""


def _process_drills() -> tuple[Any, ...]:
    module = sys.modules.get(_DRILL_MODULE)
    return () if module is None else tuple(module.session_drills())


def _process_outage_drills() -> tuple[Any, ...]:
    module = sys.modules.get(_OUTAGE_MODULE)
    return () if module is None else tuple(module.recorded_drills())


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
        self.outage_start = len(_process_outage_drills())
        self.outage_sent: list[Any] = []

    def local(self) -> list[dict[str, Any]]:
        """Return the drills this process ran since the session began, as report objects."""
        return [drill.to_json() for drill in _process_drills()[self.start :]]

    def local_outage(self) -> list[dict[str, Any]]:
        """Return the outage drills this process ran since the session began, as JSON."""
        return [drill.to_json() for drill in _process_outage_drills()[self.outage_start :]]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Keep the drills a worker sent."""
        sent = (getattr(node, "workeroutput", None) or {}).get(WORKER_KEY) or []
        # Kept as sent, whatever its shape: the schema check of the report rejects a bad one.
        self.sent.extend(sent if isinstance(sent, list) else [sent])
        outage = (getattr(node, "workeroutput", None) or {}).get(OUTAGE_WORKER_KEY) or []
        self.outage_sent.extend(outage if isinstance(outage, list) else [outage])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """On a worker, send this worker's drills to the controller."""
        if self.worker:
            output: dict[str, Any] = session.config.workeroutput  # type: ignore[attr-defined]
            output[WORKER_KEY] = self.local()
            output[OUTAGE_WORKER_KEY] = self.local_outage()

    def report_parts(self) -> dict[str, Any]:
        """Return ``{"backups": ..., "chaos_drills": ...}`` for the drills the session ran."""
        parts: dict[str, Any] = {}
        drills = [*self.sent, *self.local()]
        if drills:
            from pytest_reliability.ops.restore_drill import backups_section

            # Oldest first, whichever process ran it: the order does not depend on the layout.
            drills.sort(key=_drill_order)
            parts["backups"] = backups_section(drills)
        outage = [*self.outage_sent, *self.local_outage()]
        if outage:
            from pytest_reliability.chaos_infra._drills import chaos_drills_section

            outage.sort(key=_outage_order)
            parts["chaos_drills"] = chaos_drills_section(outage)
        return parts


def _outage_order(drill: Any) -> tuple[str, str, str, str]:
    if not isinstance(drill, Mapping):
        return ("", "", "", "")
    module, store, fault = (str(drill.get(k, "")) for k in ("module", "store", "fault"))
    return (str(drill.get("finished_at", "")), module, store, fault)
