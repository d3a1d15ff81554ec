"""Kill switches shared by every instance of a service, failing closed when unsure.

See :class:`KillSwitches` and ``docs/ops.md``. The switch set lives in ``_switches``; switch
names, records, the store protocol and the ``OPS_KILL_SWITCH`` parser in ``_model``; the store
schemes and their factories, registered in :mod:`pytest_reliability.stores` on import, in
``_registry``; the stores in ``_memory_store``, ``_sql_store`` and ``_redis_store`` (each loaded
when its scheme is first used, so importing this package does not import redis), with what the
shared stores have in common in ``_store_common``; and the test scenario behind the
``kill_switches`` fixture in ``_scenario``.
"""

from __future__ import annotations

from pytest_reliability.ops.kill_switch._model import (
    OPS_KILL_SWITCH_ENV,
    KillSwitch,
    KillSwitchStore,
    SwitchRecord,
    SwitchState,
    register_switch,
    registered_switches,
)
from pytest_reliability.ops.kill_switch._switches import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_STALENESS,
    KillSwitches,
)

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_STALENESS",
    "OPS_KILL_SWITCH_ENV",
    "KillSwitch",
    "KillSwitchStore",
    "KillSwitches",
    "SwitchRecord",
    "SwitchState",
    "register_switch",
    "registered_switches",
]
