"""Comparing two reports: what newly fails, what was fixed, what turned flaky, what got slower."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

_BAD = frozenset({"failed", "error"})
_GOOD = frozenset({"passed", "flaky", "xfailed", "xpassed", "skipped"})


@final
@dataclass(frozen=True, slots=True)
class Slowdown:
    """A test that took notably longer in the new report."""

    nodeid: str
    old_s: float
    new_s: float

    @property
    def ratio(self) -> float:
        """New duration over old duration."""
        return self.new_s / self.old_s if self.old_s > 0 else float("inf")


@final
@dataclass(frozen=True, slots=True)
class ReportDiff:
    """The differences between two reports that a release engineer acts on."""

    newly_failing: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    newly_flaky: tuple[str, ...] = ()
    slower: tuple[Slowdown, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    status_change: tuple[str, str] = ("", "")
    gates_newly_failing: tuple[str, ...] = field(default=())

    @property
    def regressed(self) -> bool:
        """Whether anything got worse (new failures, new flakiness, slowdowns, failing gates)."""
        return bool(
            self.newly_failing or self.newly_flaky or self.slower or self.gates_newly_failing
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the diff as JSON values."""
        return {
            "status": {"old": self.status_change[0], "new": self.status_change[1]},
            "newly_failing": list(self.newly_failing),
            "fixed": list(self.fixed),
            "newly_flaky": list(self.newly_flaky),
            "slower": [
                {"nodeid": s.nodeid, "old_s": s.old_s, "new_s": s.new_s} for s in self.slower
            ],
            "added": list(self.added),
            "removed": list(self.removed),
            "gates_newly_failing": list(self.gates_newly_failing),
        }


def diff_reports(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    slower_ratio: float = 1.5,
    slower_min_s: float = 0.1,
) -> ReportDiff:
    """Compare ``old`` and ``new``.

    A test is slower when it took more than ``slower_ratio`` times as long and at least
    ``slower_min_s`` seconds more (so noise in millisecond tests does not count).
    """
    before = {t["nodeid"]: t for t in old["tests"]}
    after = {t["nodeid"]: t for t in new["tests"]}
    newly_failing, fixed, newly_flaky, slower = [], [], [], []
    for nodeid in sorted(after):
        test = after[nodeid]
        prior = before.get(nodeid)
        outcome = test["outcome"]
        was = prior["outcome"] if prior else None
        if outcome in _BAD and was not in _BAD:
            newly_failing.append(nodeid)
        if outcome in _GOOD and was in _BAD:
            fixed.append(nodeid)
        if outcome == "flaky" and was != "flaky":
            newly_flaky.append(nodeid)
        if prior is not None:
            old_s, new_s = float(prior["duration_s"]), float(test["duration_s"])
            if new_s - old_s >= slower_min_s and new_s > old_s * slower_ratio:
                slower.append(Slowdown(nodeid, old_s, new_s))
    old_gates = {g["name"]: g["status"] for g in old["gates"]}
    gates_failing = tuple(
        g["name"]
        for g in new["gates"]
        if g["status"] != "passed" and old_gates.get(g["name"]) == "passed"
    )
    return ReportDiff(
        newly_failing=tuple(newly_failing),
        fixed=tuple(fixed),
        newly_flaky=tuple(newly_flaky),
        slower=tuple(slower),
        added=tuple(sorted(set(after) - set(before))),
        removed=tuple(sorted(set(before) - set(after))),
        status_change=(str(old["status"]), str(new["status"])),
        gates_newly_failing=gates_failing,
    )
