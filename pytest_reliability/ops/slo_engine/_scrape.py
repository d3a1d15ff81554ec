"""Feeding the engine from Prometheus text-format scrapes taken at several instants.

Each scrape is parsed with ``prometheus_client``'s parser. A :class:`Selector` picks the counter
series of the SLI (``http_requests_total{code=~"5.."}``) and of the total; their increases between
consecutive scrapes become buckets. Each series is followed on its own, as Prometheus'
``increase`` does: a series that goes down was reset (its increase is its new value), unless its
``_created`` sample says it was not, which is an
:class:`~pytest_reliability.errors.SLOCounterError`. A series first seen in a later scrape counts
from zero (a 5xx counter often appears with the first error).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import final

from pytest_reliability.errors import SLOCounterError, SLODataError, SLOScrapeError
from pytest_reliability.ops.slo_engine._model import SLIKind
from pytest_reliability.ops.slo_engine._series import Series, Timestamp, to_seconds
from pytest_reliability.ops.slo_engine._yaml import require

_SELECTOR_RE = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*")
_MATCHER_RE = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)'
)

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@final
@dataclass(frozen=True, slots=True)
class Selector:
    """A metric name and label matchers, as in PromQL (``=``, ``!=``, ``=~``, ``!~``)."""

    name: str
    matchers: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse ``name{label="value",code=~"5.."}``; malformed text is an SLOScrapeError."""
        match = _SELECTOR_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise SLOScrapeError(f'series selector {text!r} is not name{{label="value",...}}')
        name, body = match.group(1), (match.group(2) or "").strip()
        matchers = []
        pos = 0
        while pos < len(body):
            m = _MATCHER_RE.match(body, pos)
            if m is None:
                raise SLOScrapeError(f"series selector {text!r}: bad matcher at {body[pos:]!r}")
            label, op, value = m.group(1), m.group(2), m.group(3).encode().decode("unicode_escape")
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise SLOScrapeError(f"series selector {text!r}: {exc}") from None
            matchers.append((label, op, value))
            pos = m.end()
        return cls(name, tuple(matchers))

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        """True when a sample called ``name`` with ``labels`` is selected."""
        if name != self.name:
            return False
        for label, op, value in self.matchers:
            actual = labels.get(label, "")
            if (op == "=" and actual != value) or (op == "!=" and actual == value):
                return False
            if op == "=~" and re.fullmatch(value, actual) is None:
                return False
            if op == "!~" and re.fullmatch(value, actual) is not None:
                return False
        return True


def _parse(text: str, index: int) -> dict[SeriesKey, float]:
    parser = require("prometheus_client.parser")
    samples: dict[SeriesKey, float] = {}
    try:
        for family in parser.text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise SLOScrapeError(f"scrape {index}: not Prometheus text format: {exc}") from None
    return samples


def _increase(
    selector: Selector,
    before: dict[SeriesKey, float],
    after: dict[SeriesKey, float],
    when: float,
) -> tuple[float, int]:
    total, seen = 0.0, 0
    for key, value in after.items():
        name, labels = key
        if not selector.matches(name, dict(labels)):
            continue
        seen += 1
        previous = before.get(key)
        if previous is None:
            total += value
            continue
        if value >= previous:
            total += value - previous
            continue
        created = (name.removesuffix("_total") + "_created", labels)
        if created in after and after.get(created) == before.get(created):
            raise SLOCounterError(
                f"scrape at {when}: {name}{dict(labels)} went down ({previous} -> {value}) "
                "with an unchanged _created time: not a counter reset"
            )
        total += value
    return total, seen


def series_from_scrapes(
    scrapes: Iterable[tuple[Timestamp, str]],
    *,
    total: str | Selector,
    good: str | Selector | None = None,
    bad: str | Selector | None = None,
) -> tuple[Series, SLIKind]:
    """Build a :class:`Series` from ``(timestamp, scrape_text)`` pairs taken at several instants.

    Give ``total`` and one of ``good`` or ``bad`` (selectors or their text). Returns the series
    and the SLI kind it carries. A scrape where nothing matches ``total`` is an
    :class:`~pytest_reliability.errors.SLOScrapeError`: no traffic shows as a zero counter, a
    missing one means the selector or the scrape is wrong.
    """
    if (good is None) == (bad is None):
        raise SLOScrapeError("give exactly one of good= or bad= beside total=")
    kind: SLIKind = "good" if good is not None else "bad"
    chosen = good if good is not None else bad
    pick = Selector.parse(chosen) if isinstance(chosen, str) else chosen
    assert pick is not None
    whole = Selector.parse(total) if isinstance(total, str) else total
    parsed = sorted(
        ((to_seconds(when, index=i), _parse(text, i)) for i, (when, text) in enumerate(scrapes)),
        key=lambda pair: pair[0],
    )
    if parsed and not _increase(whole, {}, parsed[0][1], parsed[0][0])[1]:
        # Without the total in the first scrape, the second would count everything since start.
        raise SLOScrapeError(
            f"scrape at {parsed[0][0]}: no series matches the total selector {total}"
        )
    buckets = []
    for i in range(1, len(parsed)):
        (t0, before), (t1, after) = parsed[i - 1], parsed[i]
        if t1 == t0:
            raise SLOScrapeError(f"two scrapes at the same instant {t1}")
        n, seen = _increase(whole, before, after, t1)
        if not seen:
            raise SLOScrapeError(f"scrape at {t1}: no series matches the total selector {total}")
        x, _ = _increase(pick, before, after, t1)
        if x > n:
            raise SLODataError(
                f"scrape at {t1}: {kind} events ({x}) exceed the total ({n}); "
                "do the selectors pick the same requests?",
                index=i,
            )
        buckets.append((t1, x, n))
    return Series.from_buckets(buckets, sli=kind), kind
