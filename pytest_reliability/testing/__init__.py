"""Test tooling for the modules: the idempotency property checker and its request sequences,
and the invariants of property-based chaos (``assert_exactly_once`` and the rest).

This floor sits with :mod:`pytest_reliability.strategies` (which draws the sequences) and below
the fixtures (``idempotency_check`` is a thin shell over :class:`IdempotencyChecker`); it imports
the modules, never the other way round. The crash points a handler calls stay in
:mod:`pytest_reliability.idempotency`, since production code keeps them. The names here are also
re-exported from :mod:`pytest_reliability.idempotency`, where they used to live.
"""

from __future__ import annotations

from pytest_reliability.testing._chaos_invariants import (
    assert_exactly_once,
    assert_kill_switch_engaged,
    assert_no_acknowledged_write_lost,
    assert_not_ready,
)
from pytest_reliability.testing._checker import (
    CheckStats,
    IdempotencyChecker,
    exactly_once_violation,
)
from pytest_reliability.testing._sequences import (
    DELIVERY_KINDS,
    Delivery,
    DeliveryKind,
    RequestSequence,
)

__all__ = [
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
]
