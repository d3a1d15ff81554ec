"""Rendering the Prometheus rules Sloth generates for a spec, in the same shape.

Three groups an SLO: ``sloth-slo-sli-recordings-{id}`` (the error ratio over every alert window,
plus the SLO period computed from the 5-minute ratio), ``sloth-slo-meta-recordings-{id}``
(objective, budget, period, burn rates, info) and ``sloth-slo-alerts-{id}`` (one page and one
ticket multiwindow alert, each the ``or`` of a quick and a slow pair of windows). Numbers are
written as Go's ``%g`` writes them, so ``14.4 * 0.0009999999999999432`` reads as in Sloth's output.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pytest_reliability.ops.slo_engine._model import SLOTH_POLICY, AlertPolicy, format_duration
from pytest_reliability.ops.slo_engine._sloth import WINDOW_TEMPLATE, SlothSLO, SlothSpec
from pytest_reliability.ops.slo_engine._yaml import require

_ALERT_EXPR = """(
    ({qs} > ({qf} * {eb}))
    and ignoring (sloth_window)
    ({ql} > ({qf} * {eb}))
)
or ignoring (sloth_window)
(
    ({ss} > ({sf} * {eb}))
    and ignoring (sloth_window)
    ({sl} > ({sf} * {eb}))
)
"""
_BURN_EXPR = """{metric}{f}
/ on(sloth_id, sloth_slo, sloth_service) group_left
slo:error_budget:ratio{f}
"""


def go_float(value: float) -> str:
    """Write ``value`` as Go's ``%v``/``%g`` does: shortest digits, exponent below 1e-4 or ≥ 1e6."""
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    exp10 = len(text) + exponent - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    elif exp10 < 0:
        out = "0." + "0" * (-exp10 - 1) + text
    elif len(text) <= exp10 + 1:
        out = text + "0" * (exp10 + 1 - len(text))
    else:
        out = text[: exp10 + 1] + "." + text[exp10 + 1 :]
    return ("-" if sign else "") + out


def _id_labels(slo: SlothSLO) -> dict[str, str]:
    return {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.slo.name}


def _filter(slo: SlothSLO) -> str:
    labels = _id_labels(slo)
    return "{" + ", ".join(f'{k}="{labels[k]}"' for k in sorted(labels)) + "}"


def _metric(window: float) -> str:
    return f"slo:sli_error:ratio_rate{format_duration(window)}"


def _sli_rules(slo: SlothSLO, policy: AlertPolicy, period: float) -> list[dict[str, Any]]:
    rules = []
    for window in policy.windows():
        text = format_duration(window)
        if slo.error_ratio_query is not None:
            expr = f"({slo.error_ratio_query})"
        else:
            expr = f"({slo.error_query})\n/\n({slo.total_query})\n"
        labels = {**_id_labels(slo), "sloth_window": text, **slo.labels}
        rules.append(
            {"record": _metric(window), "expr": WINDOW_TEMPLATE.sub(text, expr), "labels": labels}
        )
    f, short = _filter(slo), _metric(min(r.short for r in policy.rules))
    rules.append(
        {
            "record": _metric(period),
            "expr": f"sum_over_time({short}{f}[{format_duration(period)}])\n"
            f"/ ignoring (sloth_window)\ncount_over_time({short}{f}[{format_duration(period)}])\n",
            "labels": {"sloth_window": format_duration(period)},
        }
    )
    return rules


def _meta_rules(slo: SlothSLO, period: float, current: float, version: str) -> list[Any]:
    labels = {**_id_labels(slo), **slo.labels}
    objective, f = slo.slo.objective / 100, _filter(slo)
    exprs = [
        ("slo:objective:ratio", f"vector({go_float(objective)})"),
        ("slo:error_budget:ratio", f"vector(1-{go_float(objective)})"),
        ("slo:time_period:days", f"vector({go_float(period / 86400)})"),
        ("slo:current_burn_rate:ratio", _BURN_EXPR.format(metric=_metric(current), f=f)),
        ("slo:period_burn_rate:ratio", _BURN_EXPR.format(metric=_metric(period), f=f)),
        ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{f}"),
    ]
    rules: list[dict[str, Any]] = [{"record": r, "expr": e, "labels": labels} for r, e in exprs]
    info = {
        "sloth_mode": "cli-gen-prom",
        "sloth_objective": format(Decimal(repr(slo.slo.objective)).normalize(), "f"),
        "sloth_spec": "prometheus/v1",
        "sloth_version": version,
    }
    rules.append({"record": "sloth_slo_info", "expr": "vector(1)", "labels": labels | info})
    return rules


def _alert_rules(slo: SlothSLO, policy: AlertPolicy, period: float) -> list[dict[str, Any]]:
    f, eb = _filter(slo), go_float(slo.slo.error_budget_ratio)
    out = []
    for severity, meta in (("page", slo.page), ("ticket", slo.ticket)):
        rules = [r for r in policy.rules if r.severity == severity]
        if meta.disable or not rules:
            continue
        quick, slow = rules[0], rules[-1]
        expr = _ALERT_EXPR.format(
            qs=_metric(quick.short) + f,
            ql=_metric(quick.long) + f,
            qf=go_float(quick.burn_rate_threshold(period)),
            ss=_metric(slow.short) + f,
            sl=_metric(slow.long) + f,
            sf=go_float(slow.burn_rate_threshold(period)),
            eb=eb,
        )
        title = (
            f"({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error "
            "budget burn rate is too fast."
        )
        summary = "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected."  # noqa: E501 - Sloth's text, verbatim
        out.append(
            {
                "alert": slo.alert_name,
                "expr": expr,
                "labels": {"sloth_severity": severity, **slo.alert_labels, **meta.labels},
                "annotations": {
                    "title": title,
                    "summary": summary,
                    **slo.alert_annotations,
                    **meta.annotations,
                },
            }
        )
    return out


def sloth_rules(
    spec: SlothSpec, *, policy: AlertPolicy = SLOTH_POLICY, version: str = "dev"
) -> dict[str, Any]:
    """Return the rule groups Sloth generates for ``spec`` (``{"groups": [...]}``).

    ``policy`` must have page and ticket rules, quick first; Sloth's own is the default.
    ``version`` fills the ``sloth_version`` label of ``sloth_slo_info``.
    """
    groups: list[dict[str, Any]] = []
    for slo in spec.slos:
        # Sloth only knows rolling periods; a calendar month renders over its 30-day equivalent.
        period = getattr(spec.window, "days", 30) * 86400.0
        current = min(r.short for r in policy.rules if r.severity == "page")
        groups.append(
            {"name": f"sloth-slo-sli-recordings-{slo.id}", "rules": _sli_rules(slo, policy, period)}
        )
        groups.append(
            {
                "name": f"sloth-slo-meta-recordings-{slo.id}",
                "rules": _meta_rules(slo, period, current, version),
            }
        )
        alerts = _alert_rules(slo, policy, period)
        if alerts:
            groups.append({"name": f"sloth-slo-alerts-{slo.id}", "rules": alerts})
    return {"groups": groups}


def render_sloth_rules(spec: SlothSpec, *, policy: AlertPolicy = SLOTH_POLICY) -> str:
    """Return :func:`sloth_rules` as the YAML document Prometheus loads."""
    header = "# Generated by pytest-reliability from a Sloth prometheus/v1 spec.\n"
    yaml = require("yaml")
    body: str = yaml.safe_dump(sloth_rules(spec, policy=policy), sort_keys=True, width=1000)
    return header + body
