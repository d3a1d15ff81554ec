"""The SLO engine: error budgets, burn rates and multiwindow, multi-burn-rate alerts.

Pure functions over immutable values, no I/O and no clock reads (the instant is an argument).
:func:`evaluate` takes an :class:`SLO`, its event counts (raw buckets or an indexed
:class:`Series`) and an instant, and returns an :class:`SLOStatus`: the SLI over the SLO window,
the error budget (total, consumed, remaining, in events and as fractions), the burn rate over
every window of the :class:`AlertPolicy`, the time to exhaustion, and each alert's state.

:data:`DEFAULT_POLICY` is the SRE workbook's (page at 14.4x over 1 h and 5 m, page at 6x over
6 h and 30 m, ticket at 1x over 3 days and 6 h, for 30 days; scaled to other windows);
:data:`SLOTH_POLICY` is the four-alert variant Sloth generates. Sloth ``prometheus/v1`` specs
load with :func:`load_sloth_spec` and render back as Sloth's rules with :func:`sloth_rules`;
Prometheus scrapes feed the engine through :func:`series_from_scrapes`. See ``docs/slo.md``.
"""

from __future__ import annotations

from pytest_reliability.ops.slo_engine._evaluate import (
    AlertState,
    ErrorBudget,
    SLOStatus,
    WindowStats,
    evaluate,
    window_stats,
)
from pytest_reliability.ops.slo_engine._model import (
    DEFAULT_POLICY,
    SLO,
    SLOTH_POLICY,
    AlertPolicy,
    AlertRule,
    CalendarMonth,
    RollingWindow,
    format_duration,
    parse_duration,
    parse_window,
)
from pytest_reliability.ops.slo_engine._ops import SLOHealthCheck, read_slo_status
from pytest_reliability.ops.slo_engine._rules import go_float, render_sloth_rules, sloth_rules
from pytest_reliability.ops.slo_engine._scrape import Selector, series_from_scrapes
from pytest_reliability.ops.slo_engine._series import Series
from pytest_reliability.ops.slo_engine._sloth import (
    SLOTH_VERSION,
    SlothAlert,
    SlothSLO,
    SlothSpec,
    load_sloth_spec,
)

__all__ = [
    "DEFAULT_POLICY",
    "SLO",
    "SLOTH_POLICY",
    "SLOTH_VERSION",
    "AlertPolicy",
    "AlertRule",
    "AlertState",
    "CalendarMonth",
    "ErrorBudget",
    "RollingWindow",
    "SLOHealthCheck",
    "SLOStatus",
    "Selector",
    "Series",
    "SlothAlert",
    "SlothSLO",
    "SlothSpec",
    "WindowStats",
    "evaluate",
    "format_duration",
    "go_float",
    "load_sloth_spec",
    "parse_duration",
    "parse_window",
    "read_slo_status",
    "render_sloth_rules",
    "series_from_scrapes",
    "sloth_rules",
    "window_stats",
]
