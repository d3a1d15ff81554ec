"""The controller's side of the plugin: collects every report, then writes the JSON report.

Registered by ``plugin.py`` on the process that owns the run (the xdist controller, or the only
process) as a plugin object, so report hooks, which get no ``config``, still find their run.
"""

from __future__ import annotations

import gc
import importlib
import signal
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_reliability.errors import ReportError
from pytest_reliability.report._build import (
    RunInfo,
    assemble,
    build_run,
    build_tests_part,
    placeholder,
)
from pytest_reliability.report._collector import (
    Collector,
    Detail,
    LocalFacts,
    json_value,
    relative_path,
)
from pytest_reliability.report._gates import Gate, GateResult, builtin_gates, run_gate
from pytest_reliability.report._io import classify, encode_report, write_bytes
from pytest_reliability.report._mask import Masker
from pytest_reliability.report._schema import validate_report

MAX_WARNINGS = 1000
"""Most warnings kept in the report (the rest are counted in the closing line only)."""
WARNING_MAX = 2000
"""Longest warning message kept, in characters."""


class ReportOptions:
    """How the report is written: JSON indent, an HTML page beside it, captured output."""

    __slots__ = ("detail", "html", "indent")  # not a dataclass: see RunInfo

    def __init__(
        self, indent: int | None = None, html: Path | None = None, detail: Detail | None = None
    ) -> None:
        self.indent = indent
        self.html = html
        self.detail = Detail() if detail is None else detail


def environment_metadata(config: pytest.Config) -> dict[str, Any] | None:
    """Return pytest-metadata's environment metadata as JSON values, when that plugin runs."""
    if config.pluginmanager.get_plugin("metadata") is None:
        return None
    try:
        metadata_key = importlib.import_module("pytest_metadata.plugin").metadata_key
    except (ImportError, AttributeError):  # an old pytest-metadata: say nothing, never guess
        return None
    found = config.stash.get(metadata_key, None)
    if not isinstance(found, dict):
        return None
    value: dict[str, Any] = json_value(found)
    return value


class RunTerminated(KeyboardInterrupt):
    """SIGTERM arrived: stop the run as Ctrl-C would, so the report says so."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise RunTerminated("SIGTERM")


def _nothing_runs(config: pytest.Config) -> bool:
    option = config.option
    return bool(
        option.collectonly
        or getattr(option, "showfixtures", False)
        or getattr(option, "show_fixtures_per_test", False)
    )


def closing_counts(config: pytest.Config) -> dict[str, int] | None:
    """Return the counts of pytest's closing line, or None without a terminal reporter."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    if not isinstance(stats, dict):
        return None
    return {str(key): _closing_count(reports) for key, reports in stats.items() if key}


def _closing_count(reports: list[Any]) -> int:
    # Counted as pytest counts. A TestReport always counts, and a list of nothing else (the
    # usual case, thousands long) is told apart in C; only subtests' and other plugins' reports
    # may say they do not count.
    if set(map(type, reports)) <= {pytest.TestReport}:
        return len(reports)
    return sum(1 for r in reports if getattr(r, "count_towards_summary", True))


class ReportSession:
    """Hooks that gather a run's reports and, at the end, write the reliability report.

    ``local`` gives the facts and categories of a test run in this process (see
    :meth:`Collector.tests`). ``parts``, called once at the end, returns the optional top-level
    parts of the report that the plugin gathers itself (``backups``), so that this package
    imports no module.
    """

    def __init__(
        self,
        config: pytest.Config,
        info: RunInfo,
        path: Path,
        local: LocalFacts,
        masker: Masker,
        parts: Callable[[], Mapping[str, Any]] | None = None,
        *,
        options: ReportOptions | None = None,
    ) -> None:
        self.config = config
        self.options = options or ReportOptions()
        self.warnings: list[dict[str, Any]] = []
        self.collected: int | None = None
        self.deselected = 0
        self.parts = parts
        self.masker = masker
        self.previous_sigterm: Any = None
        self.start_error: str | None = None
        self.local = local
        self.info = info
        self.path = path
        self.collector = Collector(self.options.detail)
        pending = self.collector.pending

        def pytest_runtest_logreport(report: pytest.TestReport) -> None:
            """Queue each phase report; the collector folds them all at the end of the run."""
            # Only an append: this runs three times per test, and a test's facts are final
            # after its teardown, so reading them at the end gives what reading them now would.
            pending.append(report)

        # A function over the queue rather than a method: pytest calls it on every phase of
        # every test, and a bound method and two attribute reads cost as much as the append.
        self.pytest_runtest_logreport = pytest_runtest_logreport
        self.gate_results: list[GateResult] = []
        self.status: str | None = None
        self.error: str | None = None
        self.html_written: Path | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Replace the previous report with an ``incomplete`` one; treat SIGTERM as Ctrl-C."""
        if _nothing_runs(self.config):
            return
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGTERM)
            if current in (signal.SIG_DFL, None):  # never take over an application's handler
                self.previous_sigterm = current
                signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            # Only a file: a device or FIFO gets the finished report alone.
            if classify(self.path, devices=True)[0] in ("new", "file"):
                document = placeholder(self.info)
                proven = validate_report(document)
                write_bytes(self.path, encode_report(document, proven=proven))
        except ReportError as exc:
            self.start_error = f"in-progress report not written to {self.path}: {exc}"

    def _restore_sigterm(self) -> None:
        if self.previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self.previous_sigterm)
            self.previous_sigterm = None

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Count deselected tests (``-k``, ``-m``, or a plugin)."""
        self.deselected += len(items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Count the collected tests, deselected ones included, as pytest's header does."""
        self.collected = len(session.items) + self.deselected

    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: Any
    ) -> None:
        """Keep each warning pytest records (bounded), from this process or an xdist worker."""
        if len(self.warnings) >= MAX_WARNINGS:
            return
        message = str(warning_message.message)
        if len(message) > WARNING_MAX:
            message = message[: WARNING_MAX - 1] + "…"
        category = getattr(warning_message, "category", None)
        lineno = getattr(warning_message, "lineno", None)
        self.warnings.append(
            {
                "message": message,
                "category": getattr(category, "__name__", str(category)),
                "path": relative_path(
                    str(getattr(warning_message, "filename", "") or ""), self.options.detail.root
                ),
                "line": lineno if isinstance(lineno, int) and lineno >= 0 else None,
                "when": str(when),
                "nodeid": str(nodeid or ""),
            }
        )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Record each collection error once."""
        if report.failed:
            self.collector.add_collect_report(report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """A worker died while running ``crashitem``: the run is incomplete."""
        self._interrupt("worker_crash", str(report.longrepr))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        """Record each worker as it starts: after Ctrl-C none reports that it went down."""
        self.info.workers.append(str(node.gateway.id))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Merge what a worker sent in ``workeroutput``; a dead worker makes the run incomplete."""
        sent = (getattr(node, "workeroutput", None) or {}).get("reliability") or {}
        self.info.workers.append(str(sent.get("worker") or node.gateway.id))
        # Every worker collects (and deselects) the whole suite: the counts are the same on each.
        if isinstance(sent.get("collected"), int):
            self.collected = max(self.collected or 0, sent["collected"])
            self.deselected = max(self.deselected, int(sent.get("deselected") or 0))
        if sent and sent.get("seed") != self.info.seed:
            self.error = f"worker {node.gateway.id} ran with seed {sent.get('seed')}"
        if error:
            self._interrupt("worker_crash", f"worker {node.gateway.id} went down: {error}")

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Remember Ctrl-C, ``pytest.exit``, or xdist's stop after ``-x``/``--maxfail``."""
        value = excinfo.value
        reason = str(getattr(value, "msg", None) or value) or type(value).__name__
        if isinstance(value, RunTerminated):
            kind = "terminated"
        elif isinstance(value, pytest.exit.Exception):
            kind = "exit"
        elif type(value).__module__.startswith("xdist") and reason.startswith("stopping after"):
            kind = "maxfail"
        else:
            kind = "keyboard_interrupt"
        self.info.interruption = {"kind": kind, "reason": reason}

    def pytest_internalerror(self, excrepr: Any) -> None:
        """Remember an internal error; the report still gets written, with status ``error``."""
        lines = str(excrepr).strip().splitlines()
        reason = lines[-1] if lines else "internal error"
        self.info.interruption = {"kind": "internal_error", "reason": reason}

    def _interrupt(self, kind: str, reason: str) -> None:
        if self.info.interruption is None:
            self.info.interruption = {"kind": kind, "reason": reason}

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Build the report, run the gates, write the report, make a failed gate fail pytest."""
        # The report of a large run is tens of thousands of acyclic dicts and lists, freed by
        # reference counting. Collections while it is built would only walk the whole session's
        # objects again (a full one costs tens of milliseconds on 5,000 tests) and promote the
        # report to the old generation, bringing the next full collection nearer.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._finish(session)
        finally:
            self._restore_sigterm()
            if enabled:
                gc.enable()

    def _finish(self, session: pytest.Session) -> None:
        if _nothing_runs(self.config):
            return  # nothing ran: no verdict, and no report to overwrite a real one with
        exit_code = int(session.exitstatus)
        stopped = session.shouldfail or session.shouldstop
        if stopped and exit_code != pytest.ExitCode.INTERRUPTED:
            self._interrupt("maxfail", str(stopped))
        if exit_code == pytest.ExitCode.INTERNAL_ERROR:
            self._interrupt("internal_error", "pytest raised an internal error")
        tests_part = build_tests_part(self.collector, self.local, closing_counts(self.config))
        # Workers seen on the tests too: after Ctrl-C no worker reports that it went down.
        self.info.workers.extend({t["worker"] for t in tests_part["tests"] if t["worker"]})
        if self.collected is not None:
            tests_part["summary"]["collected"] = self.collected
            tests_part["summary"]["deselected"] = self.deselected
        run = build_run(self.info, exit_code, datetime.now(UTC))
        environment = environment_metadata(self.config)
        if environment is not None:
            run["environment"] = environment
        view = {"run": run, **tests_part}
        info = self.info
        gates = [
            run_gate(g, view, "builtin")
            for g in builtin_gates(info.required_categories, info.flaky_budget, info.allow_no_tests)
        ]
        gates.extend(self._hook_gates(view))
        if self.error is not None:
            gates.append(GateResult("workers", "error", (self.error,), "builtin"))
        try:
            parts = dict(self.parts()) if self.parts is not None else {}
        except Exception as exc:  # a part that cannot be built is an error, not a lost report
            parts = {}
            reason = f"report part not built: {type(exc).__name__}: {exc}"
            gates.append(GateResult("report_parts", "error", (reason,), "builtin"))
        if self.warnings:
            parts["warnings"] = self.warnings
        if exit_code in (0, 5) and any(g.status != "passed" for g in gates):
            exit_code = int(pytest.ExitCode.TESTS_FAILED)
        run["exit_code"] = exit_code
        sections: dict[str, Any] = {}
        for found in self.config.hook.pytest_reliability_report_sections(config=self.config):
            sections.update(found or {})
        document = assemble(run, tests_part, gates, sections, parts)
        self.config.hook.pytest_reliability_modify_report(config=self.config, report=document)
        self.gate_results = gates
        try:
            indent = self.options.indent
            trusted = self._trusted()
            unchecked = self.collector.unchecked if trusted else None
            proven = validate_report(document, trusted=trusted, unchecked=unchecked)
            payload = encode_report(document, indent=indent, proven=proven)
            if self.masker and self.masker.needed(payload):
                document = self.masker.document(document)
                proven = validate_report(document)
                payload = encode_report(document, indent=indent, proven=proven)
            write_bytes(self.path, payload, devices=True)
        except Exception as exc:  # the run must say the report is missing, not crash
            self.error = f"reliability report not written to {self.path}: {exc}"
            if exit_code == 0:
                exit_code = int(pytest.ExitCode.TESTS_FAILED)
        else:
            self.status = document["status"]
            if not self._write_html(document) and exit_code == 0:
                exit_code = int(pytest.ExitCode.TESTS_FAILED)
        # Let the records go now: pytest runs full garbage collections at exit, and thousands of
        # finished records would only make each one slower. The queue is emptied in place: the
        # report hook holds it.
        self.collector.pending.clear()
        self.collector = Collector(self.options.detail)
        session.exitstatus = exit_code

    def _trusted(self) -> set[int]:
        """Return the entries the collector built, unless a hook could have changed them.

        The gates hook sees the tests and the modify hook the whole report: with either
        implemented anywhere, every entry is checked in full.
        """
        hook = self.config.hook
        if hook.pytest_reliability_modify_report.get_hookimpls():
            return set()
        if hook.pytest_reliability_gates.get_hookimpls():
            return set()
        return self.collector.built

    def _write_html(self, document: dict[str, Any]) -> bool:
        """Write the HTML page of the (masked) report, when asked; return False if it failed."""
        path = self.options.html
        if path is None:
            return True
        from pytest_reliability.report._html import render_html

        try:
            write_bytes(path, render_html([document]).encode("utf-8"), devices=True)
        except Exception as exc:  # the run must say the page is missing, not crash
            self.error = f"reliability HTML report not written to {path}: {exc}"
            return False
        self.html_written = path
        return True

    def _hook_gates(self, view: dict[str, Any]) -> list[GateResult]:
        results: list[GateResult] = []
        for gates in self.config.hook.pytest_reliability_gates(config=self.config, report=view):
            for gate in gates or ():
                if isinstance(gate, Gate):
                    results.append(run_gate(gate, view, "hook"))
                else:
                    reason = f"pytest_reliability_gates returned {type(gate).__name__}, not Gate"
                    results.append(GateResult(repr(gate)[:60], "error", (reason,), "hook"))
        return results

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the report went and, when a gate did not pass, which and why."""
        write = terminalreporter
        failing = [g for g in self.gate_results if g.status != "passed"]
        if failing:
            write.write_sep("=", "reliability gates failed", red=True, bold=True)
            for gate in failing:
                write.write_line(f"gate {gate.name}: {gate.status.upper()}")
                for reason in gate.reasons:
                    write.write_line(f"  - {self.masker.text(reason)}")
        for error in (self.start_error, self.error):
            if error is not None:
                write.write_line(f"reliability: {error}", red=True)
        if self.status is not None:
            write.write_line(f"reliability report: {self.path} (status: {self.status})")
        if self.html_written is not None:
            write.write_line(f"reliability HTML report: {self.html_written}")
