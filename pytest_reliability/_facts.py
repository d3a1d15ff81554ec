"""Per-test reliability facts: what each fixture did, carried into the report.

A fixture records into the :class:`TestFacts` of the test it serves (:func:`facts_for`). The plugin
copies the facts onto the test report, so they travel from pytest-xdist workers to the controller,
which alone writes the report. Facts are JSON values grouped in sections; the section and key
names below are part of the report schema:

========================  =====================================================================
section                   keys
========================  =====================================================================
``chaos``                 ``faults`` (list of {target, kind, trigger, fired}), ``injected``,
                          ``fired``; ``property`` (property-based chaos: ``examples``,
                          ``distinct_schedules``, ``fired_by_kind``, ``unfired_by_kind``,
                          ``shrunk``)
``kill_switches``         ``exercised`` (sorted switch names), ``engaged``, ``released``,
                          ``blocked_calls``, ``allowed_calls``
``idempotency``           ``examples``, ``requests``, ``keys``, ``duplicates_suppressed``,
                          ``replays``, ``effects``
``audit``                 ``events_by_action`` ({action: count})
``abuse``                 ``signals``, ``decisions_by_tier`` ({tier: count}), ``escalations``,
                          ``denied``
``correlation``           ``ids_issued``
``hypothesis``            the statistics Hypothesis reports for the test
========================  =====================================================================
"""

from __future__ import annotations

import threading
from typing import Any, final

import pytest

__all__ = ["TestFacts", "facts_for", "recorded_facts", "run_seed"]


@final
class TestFacts:
    """The facts one test recorded, by section. Thread-safe (fixtures may record from threads)."""

    __test__ = False  # not a test class, whatever its name says
    __slots__ = ("_lock", "_sections", "categories")

    def __init__(self) -> None:
        self._sections: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.categories: set[str] = set()
        """Reliability categories the test exercised (``chaos``, ``kill_switch``, ...)."""

    def count(self, section: str, key: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``section.key``."""
        with self._lock:
            bucket = self._sections.setdefault(section, {})
            bucket[key] = int(bucket.get(key, 0)) + amount

    def count_in(self, section: str, key: str, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name`` inside the mapping ``section.key``."""
        with self._lock:
            mapping = self._sections.setdefault(section, {}).setdefault(key, {})
            mapping[name] = int(mapping.get(name, 0)) + amount

    def add_name(self, section: str, key: str, name: str) -> None:
        """Add ``name`` to the sorted, duplicate-free list ``section.key``."""
        with self._lock:
            bucket = self._sections.setdefault(section, {})
            bucket[key] = sorted({*bucket.get(key, ()), name})

    def append(self, section: str, key: str, value: Any) -> None:
        """Append the JSON value ``value`` to the list ``section.key``."""
        with self._lock:
            self._sections.setdefault(section, {}).setdefault(key, []).append(value)

    def set(self, section: str, key: str, value: Any) -> None:
        """Set ``section.key`` to the JSON value ``value``."""
        with self._lock:
            self._sections.setdefault(section, {})[key] = value

    def get(self, section: str, key: str, default: Any = None) -> Any:
        """Return ``section.key``, or ``default``."""
        with self._lock:
            return self._sections.get(section, {}).get(key, default)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Return a deep-enough copy of every section, for the report."""
        with self._lock:
            return {name: dict(bucket) for name, bucket in self._sections.items()}


_FACTS = pytest.StashKey[TestFacts]()
_RECORDED = pytest.StashKey[set[str]]()


def facts_for(node: pytest.Item | pytest.FixtureRequest) -> TestFacts:
    """Return the facts of the test ``node`` (an item, or a fixture's ``request``)."""
    item = node.node if isinstance(node, pytest.FixtureRequest) else node
    stash = item.stash
    # Membership, not stash.get: a miss in get raises and catches a KeyError.
    if _FACTS in stash:
        return stash[_FACTS]
    facts = stash[_FACTS] = TestFacts()
    recording_tests(item.config).add(item.nodeid)
    return facts


def recording_tests(config: pytest.Config) -> set[str]:
    """Return the node ids of the tests that recorded facts in this process, so far.

    The same set, updated as tests record: the report reads facts only for these tests (and
    for those Hypothesis ran), not for the thousands that recorded none.
    """
    stash = config.stash
    if _RECORDED in stash:
        return stash[_RECORDED]
    found: set[str] = set()
    stash[_RECORDED] = found
    return found


def recorded_facts(item: pytest.Item) -> TestFacts | None:
    """Return the facts ``item`` recorded, or ``None`` when no fixture recorded any."""
    # Asked once per test, and most tests record nothing: spare them get's KeyError.
    stash = item.stash
    return stash[_FACTS] if _FACTS in stash else None  # noqa: SIM401 - see above


RUN_SEED = pytest.StashKey[int]()
"""Where the plugin keeps the run's seed in ``config.stash``."""


def run_seed(config: pytest.Config) -> int:
    """Return the run's seed (chosen once on the controller), else the ids module's seed."""
    seed = config.stash.get(RUN_SEED, None)
    if seed is None:
        from pytest_reliability.ids import current_seed

        return current_seed()
    return seed
