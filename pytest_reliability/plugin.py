"""The pytest plugin: ``pytest -p reliability`` (entry point ``reliability``).

``-p no:reliability`` turns it off.

What it adds: the options of the ``reliability`` group (each with an ini twin), category markers,
the fixtures of :mod:`pytest_reliability.fixtures`, one seed per run, deterministic ids scoped by
node id, per-test reliability facts, the restore drills of the session (the report's
``backups``), the JSON report and the gates.

Loading it is cheap: nothing here imports SQLAlchemy, Hypothesis, docker or jsonschema at import
time. Under pytest-xdist each worker puts its facts on the test reports and its totals in
``workeroutput``; the controller alone builds, validates and writes the report.
"""

from __future__ import annotations

import os
import random
import re
import sys
import uuid
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_reliability import hookspecs, ids
from pytest_reliability._facts import RUN_SEED, facts_for, recorded_facts, recording_tests
from pytest_reliability._plugin_settings import (
    DEFAULT_REPORT,
    OPT_ALLOW_NO_TESTS,
    OPT_CAPTURE,
    OPT_CAPTURE_MAX,
    OPT_CHAOS_EXAMPLES,
    OPT_DETERMINISTIC_IDS,
    OPT_DETERMINISTIC_UUID4,
    OPT_FLAKY_BUDGET,
    OPT_HTML,
    OPT_PROJECT,
    OPT_REDACT,
    OPT_REPORT,
    OPT_REPORT_INDENT,
    OPT_REQUIRE,
    OPT_SEED,
    categories,
    count_arg,
    examples_arg,
    html_path,
    indent_arg,
    parse_bool,
    parse_capture,
    parse_count,
    parse_examples,
    parse_indent,
    parse_positive,
    positive_arg,
    report_path,
    seed_arg,
    setting,
)
from pytest_reliability._session_drills import SessionDrills
from pytest_reliability.errors import ConfigurationError, ReportError
from pytest_reliability.fixtures import FIXTURE_MODULES
from pytest_reliability.report._collector import (
    CATEGORIES_KEY,
    FACTS_KEY,
    WORKER_KEY,
    LocalFacts,
)

if TYPE_CHECKING:
    from _pytest.nodes import Node  # pytest exports no name for Item-or-Collector

pytest_plugins = list(FIXTURE_MODULES)

CATEGORY_MARKERS = ("chaos", "kill_switch", "idempotency", "audit", "abuse")
"""Markers that each declare the category of the same name."""
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")
_STATE = pytest.StashKey["_RunState"]()
_CATEGORIES = pytest.StashKey[tuple[str, ...]]()
_SESSION_PLUGIN = "reliability-report-session"
_SCOPE_PLUGIN = "reliability-test-scope"
_DRILLS_PLUGIN = "reliability-session-drills"


class _RunState:
    # Not a dataclass: this module loads in every run where the package is installed, and a
    # dataclass execs generated source at import.
    __slots__ = (
        "categorized",
        "collected",
        "deselected",
        "deterministic_ids",
        "deterministic_uuid4",
        "flaky_budget",
        "items",
        "report_path",
        "required",
        "saved_ids",
        "seed",
        "tests_run",
        "worker",
    )

    def __init__(
        self,
        *,
        seed: int,
        deterministic_ids: bool,
        deterministic_uuid4: bool,
        required: tuple[str, ...],
        flaky_budget: int,
        report_path: Path | None,
        worker: str | None,
    ) -> None:
        self.seed = seed
        self.deterministic_ids = deterministic_ids
        self.deterministic_uuid4 = deterministic_uuid4
        self.required = required
        self.flaky_budget = flaky_budget
        self.report_path = report_path
        self.worker = worker
        self.tests_run = 0
        self.collected: int | None = None
        self.deselected = 0
        self.items: dict[str, pytest.Item] = {}
        self.categorized: dict[str, tuple[str, ...]] = {}
        self.saved_ids: tuple[int | None, bool | None] = (None, None)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the ``pytest_reliability_*`` hook specifications."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``reliability`` option group and the ini twins."""
    group = parser.getgroup("reliability", "reliability report, seed and gates")
    group.addoption(
        OPT_REPORT,
        dest="reliability_report",
        metavar="PATH",
        default=None,
        help=f"write the JSON reliability report to PATH (default: {DEFAULT_REPORT})",
    )
    group.addoption(
        OPT_SEED,
        dest="reliability_seed",
        metavar="N",
        type=seed_arg,
        default=None,
        help="seed for chaos and deterministic ids (default: $RELIABILITY_SEED, "
        "else random; printed in the header)",
    )
    group.addoption(
        OPT_REQUIRE,
        dest="reliability_require",
        metavar="CATEGORY",
        action="append",
        default=None,
        help="fail the gate unless CATEGORY has a passing test (repeatable)",
    )
    group.addoption(
        OPT_FLAKY_BUDGET,
        dest="reliability_flaky_budget",
        metavar="N",
        type=count_arg,
        default=None,
        help="flaky tests allowed (default 0)",
    )
    group.addoption(
        OPT_DETERMINISTIC_IDS,
        dest="reliability_deterministic_ids",
        action="store_true",
        default=None,
        help="derive ids from the seed and node id (as DETERMINISTIC_TEST_IDS=true)",
    )
    group.addoption(
        OPT_DETERMINISTIC_UUID4,
        dest="reliability_deterministic_uuid4",
        action="store_true",
        default=None,
        help="make uuid.uuid4() deterministic inside each test",
    )
    group.addoption(
        OPT_REDACT,
        dest="reliability_redact",
        metavar="REGEX",
        action="append",
        default=None,
        help="mask matches of REGEX in the report (repeatable; secret-looking environment "
        "variables are always masked)",
    )
    group.addoption(
        OPT_ALLOW_NO_TESTS,
        dest="reliability_allow_no_tests",
        action="store_true",
        default=None,
        help="let a run in which no test ran pass the gates",
    )
    _add_detail_options(parser, group)
    group.addoption(
        OPT_CHAOS_EXAMPLES,
        dest="reliability_chaos_examples",
        metavar="N",
        type=examples_arg,
        default=None,
        help="schedules each property-based chaos test explores (Hypothesis max_examples; "
        "default: the test's own settings)",
    )
    parser.addini("reliability_chaos_examples", "schedules per property-based chaos test")
    parser.addini("reliability_report", f"reliability report path (default {DEFAULT_REPORT})")
    parser.addini("reliability_redact", "regular expressions masked in the report", type="linelist")
    parser.addini("reliability_allow_no_tests", "a run without tests passes the gates (bool)")
    parser.addini("reliability_seed", "seed for chaos and deterministic ids")
    parser.addini("reliability_require", "categories that need a passing test", type="args")
    parser.addini("reliability_flaky_budget", "flaky tests allowed by the gate (default 0)")
    parser.addini("reliability_deterministic_ids", "derive ids from seed and node id (bool)")
    parser.addini("reliability_deterministic_uuid4", "deterministic uuid.uuid4() in tests (bool)")


def _add_detail_options(parser: pytest.Parser, group: Any) -> None:
    """The HTML page and the JSON report's optional detail (schema 1.2), with ini twins."""
    group.addoption(
        OPT_HTML,
        dest="reliability_html",
        metavar="PATH",
        default=None,
        help="also write the self-contained HTML report to PATH (implies the JSON report)",
    )
    group.addoption(
        OPT_REPORT_INDENT,
        dest="reliability_report_indent",
        metavar="N",
        type=indent_arg,
        default=None,
        help="indent the JSON report by N spaces (default: compact)",
    )
    group.addoption(
        OPT_CAPTURE,
        dest="reliability_capture",
        choices=("off", "failed", "all"),
        default=None,
        help="keep captured stdout, stderr and log in the report, masked: off (default), "
        "failed (failed, error, flaky tests) or all",
    )
    group.addoption(
        OPT_CAPTURE_MAX,
        dest="reliability_capture_max_chars",
        metavar="N",
        type=positive_arg,
        default=None,
        help="keep at most N characters of each captured stream, head and tail (default 2000)",
    )
    group.addoption(
        OPT_PROJECT,
        dest="reliability_project",
        metavar="NAME",
        default=None,
        help="project name recorded in the report (default: the rootdir's name)",
    )
    parser.addini("reliability_html", "HTML report path (implies the JSON report)")
    parser.addini("reliability_report_indent", "indent the JSON report by N spaces")
    parser.addini("reliability_capture", "keep captured output: off, failed or all")
    parser.addini("reliability_capture_max_chars", "characters kept of each captured stream")
    parser.addini("reliability_project", "project name recorded in the report")


def _report_options(config: pytest.Config) -> Any:
    from pytest_reliability.report._collector import Detail
    from pytest_reliability.report._session import ReportOptions

    html = html_path(config)
    if html is not None:
        from pytest_reliability.report._io import check_writable

        try:
            check_writable(html)
        except ReportError as exc:
            raise pytest.UsageError(f"{OPT_HTML}: {exc}") from None
    capture = setting(config, "reliability_capture", parse_capture)
    most = setting(config, "reliability_capture_max_chars", parse_positive)
    detail = Detail(
        capture=capture or "off",
        capture_max_chars=most or 2000,
        root=str(config.rootpath),
    )
    indent = setting(config, "reliability_report_indent", parse_indent)
    return ReportOptions(indent=indent, html=html, detail=detail)


def _choose_seed(config: pytest.Config) -> int:
    seed = setting(config, "reliability_seed", ids.parse_seed, ids.SEED_ENV)
    return seed if seed is not None else random.SystemRandom().randrange(2**32)


def _masker(config: pytest.Config) -> Any:
    from pytest_reliability.report._mask import Masker, compile_patterns

    raw = [*(config.getoption("reliability_redact") or ()), *config.getini("reliability_redact")]
    try:
        patterns = compile_patterns(raw, OPT_REDACT)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    return Masker.from_environ(os.environ, patterns)


def pytest_configure(config: pytest.Config) -> None:
    """Read the settings, fix the seed, configure ids and check the report can be written."""
    for name in CATEGORY_MARKERS:
        config.addinivalue_line("markers", f"{name}: the test proves the {name} category")
    config.addinivalue_line(
        "markers", "reliability(*categories): the reliability categories the test proves"
    )
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    deterministic = setting(config, "reliability_deterministic_ids", parse_bool)
    uuid4 = setting(config, "reliability_deterministic_uuid4", parse_bool)
    budget = setting(config, "reliability_flaky_budget", parse_count)
    allow_no_tests = setting(config, "reliability_allow_no_tests", parse_bool)
    required = categories(config.getoption("reliability_require") or [], OPT_REQUIRE)
    if not required:
        required = categories(list(config.getini("reliability_require")), "reliability_require")
    path: Path | None = None
    if workerinput is not None:
        # The controller's seed; a controller without this plugin sent none, so pick one here.
        sent = workerinput.get("reliability_seed")
        seed = int(sent) if sent is not None else _choose_seed(config)
    else:
        seed = _choose_seed(config)
        path = report_path(config)
        if path is None and html_path(config) is not None:
            path = config.rootpath / DEFAULT_REPORT  # the page is made from the report
        if path is not None:
            from pytest_reliability.report._io import check_writable

            try:
                check_writable(path)
            except ReportError as exc:
                raise pytest.UsageError(f"{OPT_REPORT}: {exc}") from None
    try:
        # The environment itself, not ids' override: an outer run (pytester) may have set one.
        deterministic_env = ids.parse_bool(
            ids.DETERMINISTIC_ENV, os.environ.get(ids.DETERMINISTIC_ENV)
        )
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None
    state = _RunState(
        seed=seed,
        deterministic_ids=bool(deterministic) or (deterministic is None and deterministic_env),
        deterministic_uuid4=bool(uuid4),
        required=required,
        flaky_budget=budget or 0,
        report_path=path,
        worker=None if workerinput is None else str(workerinput.get("workerid")),
    )
    # pytester runs pytest inside pytest: put the outer run's id settings back at unconfigure.
    state.saved_ids = ids.current_overrides()
    ids.configure(seed=seed, deterministic=state.deterministic_ids)
    config.stash[_STATE] = state
    config.stash[RUN_SEED] = seed
    if path is not None:
        from pytest_reliability.report._session import ReportSession

        info = _run_info(config, state)
        info.allow_no_tests = bool(allow_no_tests)
        project = setting(config, "reliability_project", lambda _where, raw: raw)
        info.project = project or config.rootpath.name
        drills = SessionDrills(worker=False)
        session = ReportSession(
            config,
            info,
            path,
            _local_facts(config, state),
            _masker(config),
            drills.report_parts,
            options=_report_options(config),
        )
        config.pluginmanager.register(session, _SESSION_PLUGIN)
        config.pluginmanager.register(drills, _DRILLS_PLUGIN)
    elif workerinput is not None and workerinput.get("reliability_report"):
        # A worker of a run that writes a report: its facts travel on the reports it sends,
        # its restore drills in workeroutput.
        config.pluginmanager.register(_WorkerReports(state), _SESSION_PLUGIN)
        config.pluginmanager.register(SessionDrills(worker=True), _DRILLS_PLUGIN)


def _run_info(config: pytest.Config, state: _RunState) -> Any:
    from pytest_reliability.report._build import RunInfo

    # pytest-xdist registers its plugin module under its entry point's name.
    xdist = config.pluginmanager.get_plugin("xdist")
    xdist_version = None
    if xdist is not None:
        from importlib.metadata import version

        xdist_version = version("pytest-xdist")
    return RunInfo(
        run_id=str(uuid.UUID(bytes=os.urandom(16), version=4)),
        seed=state.seed,
        deterministic_ids=state.deterministic_ids,
        deterministic_uuid4=state.deterministic_uuid4,
        required_categories=state.required,
        flaky_budget=state.flaky_budget,
        started_at=datetime.now(UTC),
        environ=dict(os.environ),
        xdist_version=xdist_version,
        pytest_version=pytest.__version__,
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put back the id settings this run replaced."""
    state = config.stash.get(_STATE, None)
    if state is not None:
        ids.configure(seed=state.saved_ids[0], deterministic=state.saved_ids[1])
    for name in (_SESSION_PLUGIN, _SCOPE_PLUGIN, _DRILLS_PLUGIN):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)


def pytest_report_header(config: pytest.Config) -> str:
    """Print the seed, so a failing run can be replayed with ``--reliability-seed``."""
    state = config.stash[_STATE]
    on = "on" if state.deterministic_ids else "off"
    report = state.report_path if state.report_path is not None else "off"
    return f"reliability: seed={state.seed} deterministic-ids={on} report={report}"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Send the controller's seed, and whether it writes a report, to an xdist worker."""
    state = node.config.stash[_STATE]
    node.workerinput["reliability_seed"] = state.seed
    node.workerinput["reliability_report"] = state.report_path is not None


def _marked_categories(markers: list[pytest.Mark], item: pytest.Item) -> frozenset[str]:
    found: set[str] = set()
    for mark in markers:
        if mark.name in CATEGORY_MARKERS:
            found.add(mark.name)
        elif mark.name == "reliability":
            for name in mark.args:
                if not isinstance(name, str) or not _CATEGORY.match(name):
                    raise pytest.UsageError(
                        f"{item.nodeid}: reliability marker category {name!r} is not a "
                        "category name ([a-z][a-z0-9_]*)"
                    )
                found.add(name)
    return frozenset(found)


def _inherited_categories(
    node: Node, item: pytest.Item, cache: dict[int, frozenset[str]]
) -> frozenset[str]:
    """Return the categories ``node`` and its parents are marked with, once per node."""
    found = cache.get(id(node))
    if found is None:
        parent = node.parent
        found = frozenset() if parent is None else _inherited_categories(parent, item, cache)
        if node.own_markers:
            found |= _marked_categories(node.own_markers, item)
        cache[id(node)] = found
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Read each test's category markers once (a bad category is a usage error)."""
    state = config.stash[_STATE]
    known, marked = state.items, state.categorized
    # What item.iter_markers() would give, the union of the own markers of the item and its
    # parents, but each module's and class's markers read once, not once per test in it.
    cache: dict[int, frozenset[str]] = {}
    chaos: list[pytest.Item] = []  # the tests that may be property-based chaos tests
    for item in items:
        nodeid = item.nodeid
        known[nodeid] = item
        parent = item.parent
        if parent is None:
            found: frozenset[str] = frozenset()
        else:  # the cache's hit written out: this runs once per test of the run
            hit = cache.get(id(parent))
            found = _inherited_categories(parent, item, cache) if hit is None else hit
        if item.own_markers:
            found |= _marked_categories(item.own_markers, item)
        if found:  # most tests have none: leave their stash alone (attach_facts defaults to ())
            item.stash[_CATEGORIES] = marked[nodeid] = tuple(sorted(found))
        if "chaos" in getattr(item, "fixturenames", ()):
            chaos.append(item)
    examples = setting(config, "reliability_chaos_examples", parse_examples)
    if chaos:
        # Imported here: a fixture module imported with the plugin could not be assertion-
        # rewritten.
        from pytest_reliability.fixtures._chaos import configure_property_chaos

        configure_property_chaos(config, chaos, run_seed=config.stash[RUN_SEED], examples=examples)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Wrap each test only when something needs it: the per-test cost is then zero."""
    state = session.config.stash[_STATE]
    # The test modules are imported by now: if they use the audit log, count its events.
    audit = "pytest_reliability.audit" in sys.modules
    if state.deterministic_ids or state.deterministic_uuid4 or audit:
        manager = session.config.pluginmanager
        if manager.get_plugin(_SCOPE_PLUGIN) is None:
            manager.register(_TestScope(state), _SCOPE_PLUGIN)


def _uuid4_patch(seed: int, nodeid: str) -> Callable[[], None]:
    original = uuid.uuid4
    counter = iter(range(sys.maxsize))

    def deterministic_uuid4() -> uuid.UUID:
        return ids.derive_uuid(seed, nodeid, "uuid4", next(counter))

    uuid.uuid4 = deterministic_uuid4

    def undo() -> None:
        uuid.uuid4 = original

    return undo


def _audit_listener(item: pytest.Item) -> Callable[[], None] | None:
    # Only when the test code already imported the audit package: never import SQLAlchemy here.
    audit = sys.modules.get("pytest_reliability.audit")
    if audit is None:
        return None
    facts = facts_for(item)

    def count(event: Any) -> None:
        facts.count_in("audit", "events_by_action", str(event.action))

    audit.add_listener(count)
    return lambda: audit.remove_listener(count)


class _TestScope:
    """Runs each test with ids scoped by its node id, audit events counted, uuid4 if asked."""

    def __init__(self, state: _RunState) -> None:
        self.state = state

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        """Wrap setup, call and teardown of one test."""
        state = self.state
        # Again for every test: a test may have reset the ids module's configuration.
        ids.configure(seed=state.seed, deterministic=state.deterministic_ids)
        undo: list[Callable[[], None]] = []
        if state.deterministic_uuid4:
            undo.append(_uuid4_patch(state.seed, item.nodeid))
        remove_listener = _audit_listener(item)
        if remove_listener is not None:
            undo.append(remove_listener)
        try:
            if state.deterministic_ids:
                with ids.id_scope(item.nodeid):
                    return (yield)
            # Random ids ignore the scope: skip its cost on every test.
            return (yield)
        finally:
            for step in reversed(undo):
                step()


def _local_facts(config: pytest.Config, state: _RunState) -> LocalFacts:
    """Return the report attributes of a test run in this process, read only where needed.

    Most tests record no facts, carry no statistics and no category marker: their attributes
    are built from the run's sparse records without touching the item's stash.
    """
    items = state.items
    marked = state.categorized
    recorded = recording_tests(config)

    def local(nodeid: str) -> tuple[dict[str, Any], list[str]] | tuple[()] | None:
        item = items.get(nodeid)
        if item is None:
            return None
        if nodeid in recorded or "hypothesis_statistics" in item.__dict__:
            return facts_and_categories(item)
        own = marked.get(nodeid)
        return ({}, list(own)) if own else ()

    return local


def attach_facts(item: pytest.Item, data: dict[str, Any]) -> None:
    """Put the test's facts and categories into a teardown report's ``__dict__``."""
    data[FACTS_KEY], data[CATEGORIES_KEY] = facts_and_categories(item)


def facts_and_categories(item: pytest.Item) -> tuple[dict[str, Any], list[str]]:
    """Return the facts ``item`` recorded (Hypothesis' statistics among them) and its categories."""
    facts = recorded_facts(item)
    # Hypothesis sets this on the item; a dict lookup spares an AttributeError per test.
    stats = item.__dict__.get("hypothesis_statistics")
    if stats:
        facts = facts or facts_for(item)
        facts.set("hypothesis", "statistics", str(stats))
    stash = item.stash
    # Membership, not stash.get, whose miss raises and catches a KeyError on most tests.
    own: tuple[str, ...] = stash[_CATEGORIES] if _CATEGORIES in stash else ()  # noqa: SIM401
    if facts is None:
        return {}, list(own)
    return facts.as_dict(), sorted({*own, *facts.categories})


class _WorkerReports:
    """On an xdist worker: put the worker id, facts and categories on the reports it sends."""

    def __init__(self, state: _RunState) -> None:
        self.state = state

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Count deselected tests, for the controller's summary."""
        self.state.deselected += len(items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Count collected tests (deselected ones included), for the controller's summary."""
        self.state.collected = len(session.items) + self.state.deselected

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Annotate each report; teardown reports carry the facts."""
        report = yield
        data = report.__dict__
        data[WORKER_KEY] = self.state.worker
        if report.when == "teardown":
            attach_facts(item, data)
            self.state.tests_run += 1
        return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker, send the worker's totals to the controller in ``workeroutput``."""
    state = session.config.stash.get(_STATE, None)
    if state is not None and state.worker is not None:
        workeroutput: dict[str, Any] = session.config.workeroutput  # type: ignore[attr-defined]
        workeroutput["reliability"] = {
            "worker": state.worker,
            "seed": state.seed,
            "tests_run": state.tests_run,
            "collected": state.collected,
            "deselected": state.deselected,
        }
