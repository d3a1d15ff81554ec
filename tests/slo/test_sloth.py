"""Sloth ``prometheus/v1`` specs: read into SLOs, rendered back as the rules Sloth generates.

The test vector is Sloth's own example: ``data/getting-started.yml`` is the spec and
``data/getting-started.rules.yml`` the rules Sloth generated from it (see the headers of both
files for the commit). The window catalogue comes from Sloth's ``internal/alert/windows/
google-30d.yaml`` and ``google-28d.yaml``: page 2 % over 1h/5m and 5 % over 6h/30m, ticket 10 %
over 1d/2h and 10 % over 3d/6h, with factor = percent x period hours / 100 / long-window hours.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_reliability.errors import SLOError, SlothSpecError
from pytest_reliability.ops.slo_engine import (
    SLOTH_POLICY,
    RollingWindow,
    go_float,
    load_sloth_spec,
    render_sloth_rules,
    sloth_rules,
)

DATA = Path(__file__).parent / "data"
SPEC = (DATA / "getting-started.yml").read_text()


def test_the_spec_reads_into_the_engines_slo() -> None:
    spec = load_sloth_spec(SPEC)
    assert spec.service == "myservice"
    (item,) = spec.slos
    assert item.id == "myservice-requests-availability"
    assert item.slo.objective == 99.9
    assert item.slo.sli == "bad"  # Sloth counts errors
    assert item.slo.window == RollingWindow(30)
    assert item.slo.error_budget_ratio == (100 - 99.9) / 100
    assert item.page.labels == {"severity": "pageteam", "routing_key": "myteam"}
    assert not item.ticket.disable


def test_rendered_rules_are_the_rules_sloth_generated() -> None:
    expected = yaml.safe_load((DATA / "getting-started.rules.yml").read_text())
    got = sloth_rules(load_sloth_spec(SPEC))
    assert [g["name"] for g in got["groups"]] == [g["name"] for g in expected["groups"]]
    for mine, theirs in zip(got["groups"], expected["groups"], strict=True):
        assert mine["rules"] == theirs["rules"], mine["name"]
    # The text form loads back to the same data.
    assert yaml.safe_load(render_sloth_rules(load_sloth_spec(SPEC))) == got


def test_the_28_day_catalogue_gives_sloths_28_day_names_and_factors() -> None:
    rules = sloth_rules(load_sloth_spec(SPEC, window=RollingWindow(28)))
    records = [r["record"] for r in rules["groups"][0]["rules"]]
    assert records[-1] == "slo:sli_error:ratio_rate4w"  # Prometheus writes 28d as 4w
    page = rules["groups"][2]["rules"][0]["expr"]
    # 2 * 672 / 100 / 1 and 5 * 672 / 100 / 6, as Go's %g prints them.
    assert f"({go_float(2 * 672 / 100 / 1)} * " in page
    assert "(13.44 * 0.0009999999999999432)" in page
    assert f"({go_float(5 * 672 / 100 / 6)} * 0.0009999999999999432)" in page
    assert "slo:time_period:days" in str(rules)
    assert "vector(28)" in str(rules)


def test_engine_thresholds_match_the_rendered_factors() -> None:
    spec = load_sloth_spec(SPEC)
    alerts = sloth_rules(spec)["groups"][2]["rules"]
    text = alerts[0]["expr"] + alerts[1]["expr"]
    for rule in SLOTH_POLICY.rules:
        assert f"({go_float(rule.burn_rate_threshold(30 * 86400))} * " in text


@pytest.mark.parametrize(
    ("value", "text"),
    [(14.4, "14.4"), (6.0, "6"), (1e-7, "1e-07"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001")],
)
def test_numbers_are_written_as_go_writes_them(value: float, text: str) -> None:
    assert go_float(value) == text


def test_disabled_ticket_alert_is_not_rendered() -> None:
    spec = SPEC.replace(
        '        labels:\n          severity: "slack"',
        '        disable: true\n        labels:\n          severity: "slack"',
    )
    alerts = sloth_rules(load_sloth_spec(spec))["groups"][2]["rules"]
    assert [a["labels"]["sloth_severity"] for a in alerts] == ["page"]


BAD_SPECS = [
    # (spec text, line, field, words in the message)
    ("version: prometheus/v2\nservice: s\nslos: []\n", 1, "version", "prometheus/v1"),
    ('version: "prometheus/v1"\nslos: []\n', 1, "service", "required"),
    ('version: "prometheus/v1"\nservice: s\nslos: []\n', 3, "slos", "at least one"),
    ('version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: 101\n'
     "    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n    alerting: {name: A}\n",
     5, "slos[0].objective", "outside (0, 100]"),
    ('version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: 0\n'
     "    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n    alerting: {name: A}\n",
     5, "slos[0].objective", "outside (0, 100]"),
    ('version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: "high"\n'
     "    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n    alerting: {name: A}\n",
     5, "slos[0].objective", "not a number"),
    ('version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objectve: 99\n',
     5, "slos[0].objectve", "unknown field"),
    ('version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: 99\n'
     "    sli:\n      events:\n        error_query: errors\n        total_query: t[{{.window}}]\n"
     "    alerting: {name: A}\n", 8, "slos[0].sli.events.error_query", "{{.window}}"),
    ('version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: 99\n'
     "    sli:\n      events:\n        total_query: t[{{.window}}]\n    alerting: {name: A}\n",
     7, "slos[0].sli.events.error_query", "required"),
    ('version: "prometheus/v1"\nservice: s\nservice: t\nslos: []\n', 3, "service", "duplicate"),
    ('version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: [99\n',
     6, "spec", "not valid YAML"),
    ('version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: 99\n'
     "    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n", 4, "slos[0].alerting", "required"),
    ('version: "prometheus/v1"\nservice: s\nlabels: {tier: [1]}\nslos: []\n', 3, "labels.tier",
     "not a string"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "field", "words"), BAD_SPECS)
def test_malformed_specs_name_the_line_and_the_field(
    text: str, line: int, field: str, words: str
) -> None:
    with pytest.raises(SlothSpecError) as info:
        load_sloth_spec(text)
    assert (info.value.line, info.value.field) == (line, field), str(info.value)
    assert words in str(info.value)
    assert f"line {line}: {field}: " in str(info.value)
    assert isinstance(info.value, SLOError)
    assert isinstance(info.value, ValueError)
