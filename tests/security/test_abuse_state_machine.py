"""The abuse protection invariants over random signal sequences and clock jumps, in memory.

The same machine runs, bounded, on SQLite, PostgreSQL and Redis in ``test_abuse_stores.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from pytest_reliability.security.abuse_protection import MemoryAbuseStore
from tests.security.abuse_machine import AbuseMachine

pytestmark = pytest.mark.abuse


class MemoryMachine(AbuseMachine):
    make_store = staticmethod(MemoryAbuseStore)


TestMemoryMachine = MemoryMachine.TestCase
TestMemoryMachine.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
