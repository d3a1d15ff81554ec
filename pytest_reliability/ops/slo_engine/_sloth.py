"""Reading Sloth ``prometheus/v1`` SLO specs into :class:`SLO` values.

The YAML is read with ``yaml.safe_load``'s constructors through a loader that records the line
of every key, so a malformed spec is a :class:`~pytest_reliability.errors.SlothSpecError` naming
the line and the field (``slos[0].objective``). Unknown fields and duplicate keys are errors too:
a typo would otherwise drop a setting without a word. SLI and SLO plugins are not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import final

from pytest_reliability.errors import SLOError, SlothSpecError
from pytest_reliability.ops.slo_engine._model import SLO, RollingWindow, SLOWindow
from pytest_reliability.ops.slo_engine._yaml import Mapping_ as _Mapping
from pytest_reliability.ops.slo_engine._yaml import Sequence_ as _Sequence
from pytest_reliability.ops.slo_engine._yaml import load_marked

SLOTH_VERSION = "prometheus/v1"
WINDOW_TEMPLATE = re.compile(r"\{\{\s*\.window\s*\}\}")
_NAME_RE = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]*")


@final
@dataclass(frozen=True, slots=True)
class SlothAlert:
    """A page or ticket alert of a Sloth SLO (``disable``, extra labels and annotations)."""

    disable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class SlothSLO:
    """One SLO of a spec: the engine's :class:`SLO` plus what Sloth needs to render rules."""

    slo: SLO
    service: str
    labels: dict[str, str]
    error_query: str | None
    total_query: str | None
    error_ratio_query: str | None
    alert_name: str
    alert_labels: dict[str, str]
    alert_annotations: dict[str, str]
    page: SlothAlert
    ticket: SlothAlert

    @property
    def id(self) -> str:
        """Sloth's SLO id, ``{service}-{name}``."""
        return f"{self.service}-{self.slo.name}"


@final
@dataclass(frozen=True, slots=True)
class SlothSpec:
    """A parsed ``prometheus/v1`` spec: the service and its SLOs, all over one SLO window."""

    service: str
    labels: dict[str, str]
    slos: tuple[SlothSLO, ...]
    window: SLOWindow

    def get(self, name: str) -> SlothSLO:
        """Return the SLO called ``name``; KeyError if the spec has none."""
        for slo in self.slos:
            if slo.slo.name == name:
                return slo
        raise KeyError(name)


class _Reader:
    """Typed access to a marked mapping, raising SlothSpecError with the path and line."""

    def __init__(self, data: object, path: str, line: int | None, allowed: set[str]) -> None:
        if not isinstance(data, _Mapping):
            raise SlothSpecError("must be a mapping", line=line, field=path or "spec")
        self.data, self.path = data, path
        self.key_line = line if line is not None else data.line
        for key in data:
            if key not in allowed:
                raise SlothSpecError("unknown field", line=data.lines[key], field=self.at(key))

    def at(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def line(self, key: str) -> int:
        # A missing key is reported at the key that names this mapping.
        return self.data.lines.get(key, self.key_line)

    def error(self, key: str, message: str) -> SlothSpecError:
        return SlothSpecError(message, line=self.line(key), field=self.at(key))

    def text(self, key: str, *, default: str | None = None) -> str:
        value = self.data.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "required, a non-empty string" if value is None else
                             f"must be a non-empty string, not {value!r}")  # fmt: skip
        return value

    def labels(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, _Mapping):
            raise self.error(key, "must be a mapping of label names to values")
        out = {}
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise SlothSpecError(
                    f"label value {item!r} is not a string", line=value.lines[name],
                    field=f"{self.at(key)}.{name}",
                )  # fmt: skip
            out[name] = str(item)
        return out

    def child(self, key: str, allowed: set[str], *, required: bool = False) -> _Reader | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return None
        return _Reader(value, self.at(key), self.line(key), allowed)


_SLO_FIELDS = {"name", "objective", "description", "labels", "sli", "alerting"}
_ALERT_FIELDS = {"disable", "labels", "annotations"}


def _query(reader: _Reader, key: str) -> str:
    query = reader.text(key)
    if WINDOW_TEMPLATE.search(query) is None:
        raise reader.error(key, "the query must use the {{.window}} template variable")
    return query


def _alert(reader: _Reader, key: str) -> SlothAlert:
    sub = reader.child(key, _ALERT_FIELDS)
    if sub is None:
        return SlothAlert()
    disable = sub.data.get("disable", False)
    if not isinstance(disable, bool):
        raise sub.error("disable", f"must be true or false, not {disable!r}")
    return SlothAlert(disable, sub.labels("labels"), sub.labels("annotations"))


def _slo(item: object, path: str, line: int, service: str, labels: dict[str, str],
         window: SLOWindow) -> SlothSLO:  # fmt: skip
    r = _Reader(item, path, line, _SLO_FIELDS)
    name = r.text("name")
    if _NAME_RE.fullmatch(name) is None:
        raise r.error("name", f"{name!r} must be letters, digits, '-', '_' or '.'")
    if "objective" not in r.data:
        raise r.error("objective", "required")
    sli = r.child("sli", {"events", "raw", "plugin"}, required=True)
    assert sli is not None
    if "plugin" in sli.data:
        raise sli.error("plugin", "SLI plugins are not supported; use events or raw")
    events = sli.child("events", {"error_query", "total_query"})
    raw = sli.child("raw", {"error_ratio_query"})
    if (events is None) == (raw is None):
        raise SlothSpecError("needs exactly one of events or raw", line=sli.data.line,
                             field=sli.path)  # fmt: skip
    error_query = total_query = ratio_query = None
    if events is not None:
        error_query, total_query = _query(events, "error_query"), _query(events, "total_query")
    if raw is not None:
        ratio_query = _query(raw, "error_ratio_query")
    alerting = r.child("alerting", {"name", "labels", "annotations", "page_alert",
                                    "ticket_alert"}, required=True)  # fmt: skip
    assert alerting is not None
    page, ticket = _alert(alerting, "page_alert"), _alert(alerting, "ticket_alert")
    # The name is required unless no alert is generated at all, as in Sloth.
    alert_name = alerting.text("name", default="" if page.disable and ticket.disable else None)
    try:
        slo = SLO(name, r.data["objective"], window, "bad", str(r.data.get("description") or ""))
    except SLOError as exc:
        raise r.error("objective", str(exc)) from None
    return SlothSLO(
        slo=slo,
        service=service,
        labels={**labels, **r.labels("labels")},
        error_query=error_query,
        total_query=total_query,
        error_ratio_query=ratio_query,
        alert_name=alert_name,
        alert_labels=alerting.labels("labels"),
        alert_annotations=alerting.labels("annotations"),
        page=page,
        ticket=ticket,
    )


def load_sloth_spec(text: str, *, window: SLOWindow | None = None) -> SlothSpec:
    """Parse a Sloth ``prometheus/v1`` YAML spec; every SLO gets ``window`` (Sloth's 30 days).

    Sloth takes the SLO period from its command line, not from the spec; so does this function.
    """
    window = window or RollingWindow(30)
    data = load_marked(text)
    top = _Reader(data, "", 1, {"version", "service", "labels", "slos", "slo_plugins"})
    if "slo_plugins" in top.data:
        raise top.error("slo_plugins", "SLO plugins are not supported")
    if top.data.get("version") != SLOTH_VERSION:
        raise top.error("version", f"must be {SLOTH_VERSION!r}, not {top.data.get('version')!r}")
    service = top.text("service")
    labels = top.labels("labels")
    slos = top.data.get("slos")
    if not isinstance(slos, _Sequence) or not slos:
        raise top.error("slos", "at least one SLO is required (a list)")
    parsed = tuple(
        _slo(item, top.at("slos") + f"[{i}]", slos.lines[i], service, labels, window)
        for i, item in enumerate(slos)
    )
    names = [s.slo.name for s in parsed]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise SlothSpecError(f"duplicate SLO name {name!r}", line=slos.lines[i],
                                 field=f"slos[{i}].name")  # fmt: skip
    return SlothSpec(service, labels, parsed, window)
