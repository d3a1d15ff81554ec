"""The restore drill: restore a backup into infrastructure it creates and destroys, then prove it.

:func:`run_drill` restores into a throwaway PostgreSQL cluster (:class:`ThrowawayCluster`) or a
temporary SQLite file, compares tables, row counts and content digests with the manifest,
verifies the restored audit log and reports the time to restore. It refuses the source and any
server it did not start. :func:`backups_section` is the reliability report's ``backups`` data.
"""

from __future__ import annotations

from pytest_reliability.ops.restore_drill._cluster import ThrowawayCluster, started_here
from pytest_reliability.ops.restore_drill._drill import (
    DrillResult,
    backups_section,
    run_drill,
    session_drills,
)

__all__ = [
    "DrillResult",
    "ThrowawayCluster",
    "backups_section",
    "run_drill",
    "session_drills",
    "started_here",
]
