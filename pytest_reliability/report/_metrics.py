"""A report's figures in the Prometheus text exposition format, through ``prometheus-client``.

For a node-exporter textfile collector (write the output atomically to ``*.prom`` in its
directory: ``report metrics -o`` does) or a Pushgateway (``curl --data-binary @-``). Every
metric is a gauge of the run the report describes, prefixed ``reliability_``; units are in the
name (``_seconds``) as Prometheus' naming conventions ask, and labels have bounded values (no
test names: a test per label value would explode a time series database).

Metrics (all gauges but the histogram; labels in brackets):

* ``reliability_report_info{project, status, schema_version, plugin_version, seed}``: 1
* ``reliability_run_status{status}``: 1 for the run's status, 0 for every other status
* ``reliability_run_duration_seconds``, ``reliability_run_finished_timestamp_seconds``,
  ``reliability_run_exit_code`` (pytest's, gates included)
* ``reliability_tests{outcome}``: tests by final outcome (every outcome, zeros included)
* ``reliability_tests_collected``, ``reliability_tests_deselected`` (schema 1.2 reports),
  ``reliability_collection_errors``
* ``reliability_test_duration_seconds``: histogram of test durations (:data:`DURATION_BUCKETS`)
* ``reliability_gate_passed{gate, source}``: 1 passed, 0 failed or error
* ``reliability_category_tests{category, required}``,
  ``reliability_category_passing_tests{category, required}``
* ``reliability_chaos_faults_injected{kind}``, ``reliability_chaos_faults_fired{kind}``
* ``reliability_kill_switch_exercised_tests{switch}``: tests that exercised the switch
* ``reliability_idempotency{measure}``: ``examples``, ``duplicates_suppressed``, ... totals
* ``reliability_audit_events{action}``: audit events recorded
* ``reliability_restore_drills{status}``: restore drills passed, failed (when any ran; a planted
  fault not caught counts as failed), and ``expected_failure`` (those that failed as planted,
  when any drill declared an expected outcome)
* ``reliability_warnings``: warnings recorded (schema 1.2 reports)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pytest_reliability._drill_outcome import drill_counts
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.report._collector import OUTCOMES
from pytest_reliability.report._tally import tally_facts
from pytest_reliability.report._trend import categories_of

STATUSES = ("passed", "failed", "interrupted", "error", "incomplete", "no_tests")
"""Every report status, each a ``reliability_run_status`` series."""
DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0)
"""Upper bounds of the test duration histogram, in seconds (``+Inf`` added)."""


def _families(report: Mapping[str, Any]) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

    run = report["run"]
    summary = report["summary"]
    status = str(report["status"])

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=list(labels))

    info = gauge(
        "reliability_report_info",
        "The report's run: project, status, schema and plugin version, seed.",
        ("project", "status", "schema_version", "plugin_version", "seed"),
    )
    info.add_metric(
        [
            str(run.get("project") or ""),
            status,
            str(report["schema_version"]),
            str(run.get("versions", {}).get("plugin", "")),
            str(run["seed"]),
        ],
        1,
    )
    yield info
    statuses = gauge("reliability_run_status", "1 for the run's status, 0 otherwise.", ("status",))
    for name in (*STATUSES, *([status] if status not in STATUSES else [])):
        statuses.add_metric([name], 1 if name == status else 0)
    yield statuses
    duration = gauge("reliability_run_duration_seconds", "How long the run took.")
    duration.add_metric([], float(run["duration_s"]))
    yield duration
    finished = gauge("reliability_run_finished_timestamp_seconds", "When the run finished.")
    finished.add_metric([], _timestamp(str(run["finished_at"])))
    yield finished
    exit_code = gauge("reliability_run_exit_code", "pytest's exit code, gates included.")
    exit_code.add_metric([], int(run["exit_code"]))
    yield exit_code

    tests = report["tests"]
    by_outcome = Counter(str(t["outcome"]) for t in tests)
    outcomes = gauge("reliability_tests", "Tests by final outcome.", ("outcome",))
    for name in (*OUTCOMES, *sorted(set(by_outcome) - set(OUTCOMES))):
        outcomes.add_metric([name], by_outcome.get(name, 0))
    yield outcomes
    for key, doc in (
        ("collected", "Test items collected, deselected ones included."),
        ("deselected", "Test items deselected."),
    ):
        if key in summary:
            family = gauge(f"reliability_tests_{key}", doc)
            family.add_metric([], int(summary[key]))
            yield family
    errors = gauge("reliability_collection_errors", "Collection errors.")
    errors.add_metric([], int(summary["collection_errors"]))
    yield errors

    durations = sorted(float(t["duration_s"]) for t in tests)
    buckets: list[tuple[str, float]] = []
    index = 0
    for bound in DURATION_BUCKETS:
        while index < len(durations) and durations[index] <= bound:
            index += 1
        buckets.append((_float(bound), float(index)))
    buckets.append(("+Inf", float(len(durations))))
    histogram = HistogramMetricFamily(
        "reliability_test_duration_seconds", "Test durations, all phases and attempts."
    )
    histogram.add_metric([], buckets, sum(durations))
    yield histogram

    gates = gauge("reliability_gate_passed", "1 when the gate passed.", ("gate", "source"))
    for gate in report["gates"]:
        gates.add_metric([str(gate["name"]), str(gate["source"])], gate["status"] == "passed")
    yield gates

    found = categories_of(report)
    required = set(run.get("required_categories") or ())
    tests_in = gauge("reliability_category_tests", "Tests per category.", ("category", "required"))
    passing_in = gauge(
        "reliability_category_passing_tests",
        "Passing tests per category (passed, flaky, xpassed).",
        ("category", "required"),
    )
    for category in sorted(set(found) | required):
        passing, total = found.get(category, (0, 0))
        flag = "true" if category in required else "false"
        tests_in.add_metric([category, flag], total)
        passing_in.add_metric([category, flag], passing)
    yield tests_in
    yield passing_in
    yield from _fact_families(report, gauge)

    backups = report.get("backups")
    if backups:
        drills = gauge("reliability_restore_drills", "Restore drills by status.", ("status",))
        # Counted from the items: a merged section, or an older one, is counted the same way.
        counts = drill_counts(backups["drills"])
        drills.add_metric(["passed"], counts.passed)
        drills.add_metric(["failed"], counts.failed)
        if counts.planted:
            drills.add_metric(["expected_failure"], counts.expected_failures)
        yield drills
    if "warnings" in report:
        warnings = gauge("reliability_warnings", "Warnings recorded in the run.")
        warnings.add_metric([], len(report["warnings"]))
        yield warnings


def _fact_families(report: Mapping[str, Any], gauge: Any) -> Iterator[Any]:
    tally = tally_facts(report)
    injected, fired, switches = tally.injected, tally.fired, tally.switches
    idempotency, audit = tally.idempotency, tally.audit
    for name, doc, label, counts in (
        ("reliability_chaos_faults_injected", "Chaos faults set up, by kind.", "kind", injected),
        ("reliability_chaos_faults_fired", "Times chaos faults fired, by kind.", "kind", fired),
        (
            "reliability_kill_switch_exercised_tests",
            "Tests that exercised each kill switch.",
            "switch",
            switches,
        ),
        (
            "reliability_idempotency",
            "Idempotency check totals, by measure.",
            "measure",
            idempotency,
        ),
        ("reliability_audit_events", "Audit events recorded, by action.", "action", audit),
    ):
        family = gauge(name, doc, (label,))
        for key in sorted(counts):
            family.add_metric([key], counts[key])
        yield family


def _float(value: float) -> str:
    return repr(float(value))


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class _ReportCollector:
    """A prometheus-client collector over one report (no process-wide registry touched)."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        self.report = report

    def collect(self) -> Iterator[Any]:
        """Yield the report's metric families."""
        return _families(self.report)


def metrics_text(report: Mapping[str, Any]) -> str:
    """Return ``report``'s figures in the Prometheus text exposition format (version 0.0.4)."""
    try:
        from prometheus_client import CollectorRegistry, generate_latest
    except ImportError:
        raise ConfigurationError(
            "report metrics needs prometheus-client: pip install 'pytest-reliability[html]'"
        ) from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))
    return generate_latest(registry).decode("utf-8")
