"""Totals of the facts every test recorded, the one pass the HTML page and the metrics share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class FactTally:
    """Chaos faults injected and fired by kind, kill switches by tests, idempotency and audit."""

    injected: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    switches: Counter[str] = field(default_factory=Counter)
    idempotency: Counter[str] = field(default_factory=Counter)
    audit: Counter[str] = field(default_factory=Counter)


def tally_facts(report: Mapping[str, Any]) -> FactTally:
    """Add up the facts of every test in ``report``."""
    tally = FactTally()
    for test in report["tests"]:
        facts = test["facts"]
        for fault in facts.get("chaos", {}).get("faults", []):
            tally.injected[str(fault["kind"])] += 1
            tally.fired[str(fault["kind"])] += int(fault["fired"])
        for switch in facts.get("kill_switches", {}).get("exercised", []):
            tally.switches[str(switch)] += 1
        for key, value in facts.get("idempotency", {}).items():
            tally.idempotency[str(key)] += int(value)
        for action, count in facts.get("audit", {}).get("events_by_action", {}).items():
            tally.audit[str(action)] += int(count)
    return tally
