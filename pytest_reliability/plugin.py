"""The pytest plugin: ``pytest -p reliability`` (entry point ``reliability``).

``-p no:reliability`` turns it off.

What it adds: the options of the ``reliability`` group (each with an ini twin), category markers,
the fixtures of :mod:`pytest_reliability.fixtures`, one seed per run, deterministic ids scoped by
node id, per-test reliability facts, the JSON report and the gates.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_reliability import hookspecs, ids
from pytest_reliability._facts import RUN_SEED, facts_for, recorded_facts
from pytest_reliability.fixtures import FIXTURE_MODULES
from pytest_reliability.report._collector import CATEGORIES_KEY, FACTS_KEY, WORKER_KEY

if TYPE_CHECKING:
    from _pytest.nodes import Node  # pytest exports no name for Item-or-Collector

pytest_plugins = list(FIXTURE_MODULES)

OPT_REPORT = "--reliability-report"
"""Where to write the JSON report (ini ``reliability_report``)."""
OPT_SEED = "--reliability-seed"
"""The run's seed (ini ``reliability_seed``; else ``RELIABILITY_SEED``; else random)."""
OPT_REQUIRE = "--reliability-require"
"""A category that needs a passing test (repeatable, comma lists; ini ``reliability_require``)."""
OPT_FLAKY_BUDGET = "--reliability-flaky-budget"
"""How many flaky tests the gate allows (ini ``reliability_flaky_budget``; default 0)."""
OPT_DETERMINISTIC_IDS = "--reliability-deterministic-ids"
"""Derive ids from the seed and node id (ini ``reliability_deterministic_ids``)."""
OPT_DETERMINISTIC_UUID4 = "--reliability-deterministic-uuid4"
"""Make ``uuid.uuid4()`` deterministic in each test (ini ``reliability_deterministic_uuid4``)."""

DEFAULT_REPORT = "reports/reliability-validation-report.json"
"""The report path when neither the option nor the ini sets one (relative to the rootdir)."""
CATEGORY_MARKERS = ("chaos", "kill_switch", "idempotency", "audit")
"""Markers that each declare the category of the same name."""
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")
_STATE = pytest.StashKey["_RunState"]()
_CATEGORIES = pytest.StashKey[tuple[str, ...]]()
_SESSION_PLUGIN = "reliability-report-session"
_SCOPE_PLUGIN = "reliability-test-scope"


@dataclass
class _RunState:
    seed: int
    deterministic_ids: bool
    deterministic_uuid4: bool
    required: tuple[str, ...]
    flaky_budget: int
    report_path: Path | None
    worker: str | None
    tests_run: int = 0
    items: dict[str, pytest.Item] = field(default_factory=dict)
    saved_ids: tuple[int | None, bool | None] = (None, None)


def _seed_arg(raw: str) -> int:
    # argparse turns this error into a usage error naming the option.
    import argparse

    try:
        return ids.parse_seed(OPT_SEED, raw)
    except Exception as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count_arg(raw: str) -> int:
    import argparse

    if not raw.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{raw!r} is not a non-negative integer")
    return int(raw)


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
        type=_seed_arg,
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
        type=_count_arg,
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
    parser.addini("reliability_report", f"reliability report path (default {DEFAULT_REPORT})")
    parser.addini("reliability_seed", "seed for chaos and deterministic ids")
    parser.addini("reliability_require", "categories that need a passing test", type="args")
    parser.addini("reliability_flaky_budget", "flaky tests allowed by the gate (default 0)")
    parser.addini("reliability_deterministic_ids", "derive ids from seed and node id (bool)")
    parser.addini("reliability_deterministic_uuid4", "deterministic uuid.uuid4() in tests (bool)")


def _ini_bool(config: pytest.Config, name: str) -> bool | None:
    raw = config.getini(name)
    if not raw:
        return None
    try:
        return ids.parse_bool(name, str(raw))
    except Exception as exc:
        raise pytest.UsageError(f"ini option {name}: {exc}") from None


def _ini_int(config: pytest.Config, name: str) -> int | None:
    raw = str(config.getini(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise pytest.UsageError(f"ini option {name}: {raw!r} is not a non-negative integer")
    return int(raw)


def _categories(values: list[str], where: str) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not _CATEGORY.match(name):
                raise pytest.UsageError(
                    f"{where}: {name!r} is not a category name ([a-z][a-z0-9_]*)"
                )
            if name not in found:
                found.append(name)
    return tuple(found)


def _choose_seed(config: pytest.Config) -> int:
    seed: int | None = config.getoption("reliability_seed")
    if seed is not None:
        return seed
    raw = str(config.getini("reliability_seed") or "").strip()
    try:
        if raw:
            return ids.parse_seed("ini option reliability_seed", raw)
        env = os.environ.get(ids.SEED_ENV, "").strip()
        if env:
            return ids.parse_seed(ids.SEED_ENV, env)
    except Exception as exc:
        raise pytest.UsageError(str(exc)) from None
    return random.SystemRandom().randrange(2**32)


def _report_path(config: pytest.Config) -> Path:
    option = config.getoption("reliability_report")
    if option:
        return config.invocation_params.dir / str(option)
    ini = str(config.getini("reliability_report") or "").strip()
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return base / ini
    return config.rootpath / DEFAULT_REPORT


def pytest_configure(config: pytest.Config) -> None:
    """Read the settings, fix the seed, configure ids and check the report can be written."""
    for name in CATEGORY_MARKERS:
        config.addinivalue_line("markers", f"{name}: the test proves the {name} category")
    config.addinivalue_line(
        "markers", "reliability(*categories): the reliability categories the test proves"
    )
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    deterministic = config.getoption("reliability_deterministic_ids")
    if deterministic is None:
        deterministic = _ini_bool(config, "reliability_deterministic_ids")
    uuid4 = config.getoption("reliability_deterministic_uuid4")
    if uuid4 is None:
        uuid4 = _ini_bool(config, "reliability_deterministic_uuid4")
    budget = config.getoption("reliability_flaky_budget")
    if budget is None:
        budget = _ini_int(config, "reliability_flaky_budget")
    required = _categories(config.getoption("reliability_require") or [], OPT_REQUIRE)
    if not required:
        required = _categories(list(config.getini("reliability_require")), "reliability_require")
    if workerinput is not None:
        # The controller's seed; a controller without this plugin sent none, so pick one here.
        sent = workerinput.get("reliability_seed")
        seed = int(sent) if sent is not None else _choose_seed(config)
        report_path = None
    else:
        seed = _choose_seed(config)
        report_path = _report_path(config)
        from pytest_reliability.report._io import check_writable

        try:
            check_writable(report_path)
        except Exception as exc:
            raise pytest.UsageError(f"{OPT_REPORT}: {exc}") from None
    try:
        # The environment itself, not ids' override: an outer run (pytester) may have set one.
        deterministic_env = ids.parse_bool(
            ids.DETERMINISTIC_ENV, os.environ.get(ids.DETERMINISTIC_ENV)
        )
    except Exception as exc:
        raise pytest.UsageError(str(exc)) from None
    state = _RunState(
        seed=seed,
        deterministic_ids=bool(deterministic) or (deterministic is None and deterministic_env),
        deterministic_uuid4=bool(uuid4),
        required=required,
        flaky_budget=budget or 0,
        report_path=report_path,
        worker=None if workerinput is None else str(workerinput.get("workerid")),
    )
    # pytester runs pytest inside pytest: put the outer run's id settings back at unconfigure.
    state.saved_ids = ids.current_overrides()
    ids.configure(seed=seed, deterministic=state.deterministic_ids)
    config.stash[_STATE] = state
    config.stash[RUN_SEED] = seed
    if report_path is not None:
        from pytest_reliability.report._session import ReportSession

        info = _run_info(config, state)
        session = ReportSession(config, info, report_path, attach_facts, state.items.get)
        config.pluginmanager.register(session, _SESSION_PLUGIN)
    else:
        config.pluginmanager.register(_WorkerReports(state), _SESSION_PLUGIN)


def _run_info(config: pytest.Config, state: _RunState) -> Any:
    from pytest_reliability.report._build import RunInfo

    xdist = config.pluginmanager.get_plugin("xdist.plugin")
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
    for name in (_SESSION_PLUGIN, _SCOPE_PLUGIN):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)


def pytest_report_header(config: pytest.Config) -> str:
    """Print the seed, so a failing run can be replayed with ``--reliability-seed``."""
    state = config.stash[_STATE]
    on = "on" if state.deterministic_ids else "off"
    return f"reliability: seed={state.seed} deterministic-ids={on} report={state.report_path}"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Send the controller's seed to an xdist worker."""
    node.workerinput["reliability_seed"] = node.config.stash[_STATE].seed


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
    known = config.stash[_STATE].items
    # What item.iter_markers() would give, the union of the own markers of the item and its
    # parents, but each module's and class's markers read once, not once per test in it.
    cache: dict[int, frozenset[str]] = {}
    for item in items:
        known[item.nodeid] = item
        found = _inherited_categories(item.parent, item, cache) if item.parent else frozenset()
        if item.own_markers:
            found |= _marked_categories(item.own_markers, item)
        if found:  # most tests have none: leave their stash alone (attach_facts defaults to ())
            item.stash[_CATEGORIES] = tuple(sorted(found))


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


def attach_facts(item: pytest.Item, data: dict[str, Any]) -> None:
    """Put the test's facts and categories into a teardown report's ``__dict__``."""
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
        data[FACTS_KEY] = {}
        data[CATEGORIES_KEY] = list(own)
        return
    data[FACTS_KEY] = facts.as_dict()
    data[CATEGORIES_KEY] = sorted({*own, *facts.categories})


class _WorkerReports:
    """On an xdist worker: put the worker id, facts and categories on the reports it sends."""

    def __init__(self, state: _RunState) -> None:
        self.state = state

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
        }
