"""The plugin's settings: options, their ini twins, the environment, and the opt-in rule.

Every setting is read by :func:`setting`: the command-line option, else the ini value, else (for
the few the design names) an environment variable. A malformed value is a ``pytest.UsageError``
naming where it came from.

The opt-in rule: the fixtures and markers are always there, but the report is written and the
gates applied only when the run asked for them (:func:`opted_in`).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from pytest_reliability import ids
from pytest_reliability.errors import ConfigurationError

T = TypeVar("T")

OPT_REPORT = "--reliability-report"
"""Where to write the JSON report (ini ``reliability_report``; else ``RELIABILITY_REPORT``)."""
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
OPT_REDACT = "--reliability-redact"
"""A regular expression whose matches are masked in the report (repeatable; ini twin)."""
OPT_ALLOW_NO_TESTS = "--reliability-allow-no-tests"
"""Let a run in which no test ran pass the gates (ini ``reliability_allow_no_tests``)."""
OPT_CHAOS_EXAMPLES = "--reliability-chaos-examples"
"""Schedules each property-based chaos test explores (ini ``reliability_chaos_examples``)."""

# The report's HTML page and JSON detail (schema 1.2).
OPT_HTML = "--reliability-html"
"""Where to write the self-contained HTML report (ini ``reliability_html``)."""
OPT_REPORT_INDENT = "--reliability-report-indent"
"""Indent the JSON report by N spaces for people (ini ``reliability_report_indent``)."""
OPT_CAPTURE = "--reliability-capture"
"""Keep captured stdout, stderr and log: ``off``, ``failed`` or ``all`` (ini twin)."""
OPT_CAPTURE_MAX = "--reliability-capture-max-chars"
"""Most characters of each captured stream kept (ini ``reliability_capture_max_chars``)."""
OPT_PROJECT = "--reliability-project"
"""The project name recorded in the report (ini ``reliability_project``; default the rootdir's)."""
MAX_INDENT = 8
"""Largest JSON indent accepted."""

REPORT_ENV = "RELIABILITY_REPORT"
"""Environment variable that opts in: a report path, or a true word for the default path."""
DEFAULT_REPORT = "reports/reliability-validation-report.json"
"""The report path when nothing else names one (relative to the rootdir)."""
PLUGIN_NAMES = frozenset({"reliability", "pytest_reliability.plugin"})
"""What ``-p`` may name to load this plugin explicitly."""
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def seed_arg(raw: str) -> int:
    """argparse type of the seed option (its error becomes a usage error naming the option)."""
    try:
        return ids.parse_seed(OPT_SEED, raw)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def count_arg(raw: str) -> int:
    """argparse type of a non-negative integer option."""
    if not raw.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{raw!r} is not a non-negative integer")
    return int(raw)


def examples_arg(raw: str) -> int:
    """argparse type of the chaos examples option: a whole number of 1 or more."""
    try:
        return parse_examples(OPT_CHAOS_EXAMPLES, raw)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_examples(where: str, raw: str) -> int:
    """Parse an examples count: Hypothesis needs at least one example."""
    text = raw.strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigurationError(f"{where}: {raw!r} is not a whole number of examples (1 or more)")
    return int(text)


def setting(
    config: pytest.Config,
    dest: str,
    parse: Callable[[str, str], T],
    env: str | None = None,
) -> T | None:
    """Return the option ``dest``, else its ini twin (same name), else ``env``, parsed.

    ``parse(where, raw)`` turns the ini or environment text into a value; a
    :class:`ConfigurationError` or ``ValueError`` from it becomes a usage error.
    """
    value = config.getoption(dest)
    if value is not None:
        return value  # type: ignore[no-any-return]  # argparse already parsed it
    sources = [(f"ini option {dest}", str(config.getini(dest) or "").strip())]
    if env is not None:
        sources.append((env, os.environ.get(env, "").strip()))
    for where, raw in sources:
        if raw:
            try:
                return parse(where, raw)
            except (ConfigurationError, ValueError) as exc:
                message = str(exc)  # ids' parsers name the setting already
                if not message.startswith(where):
                    message = f"{where}: {message}"
                raise pytest.UsageError(message) from None
    return None


def parse_bool(where: str, raw: str) -> bool:
    """Parse a boolean setting (``true/false/1/0/yes/no/on/off``)."""
    return ids.parse_bool(where, raw)


def parse_count(where: str, raw: str) -> int:
    """Parse a non-negative integer setting."""
    if not raw.isdigit():
        raise ConfigurationError(f"{raw!r} is not a non-negative integer")
    return int(raw)


def categories(values: list[str], where: str) -> tuple[str, ...]:
    """Return the category names in ``values`` (comma lists allowed), checked, in order."""
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


def explicitly_loaded(config: pytest.Config) -> bool:
    """Whether ``-p reliability`` was given (command line, ``addopts`` or ``PYTEST_ADDOPTS``).

    pytest puts ``addopts`` and ``PYTEST_ADDOPTS`` before the command line and parses them all
    into ``config.option.plugins``; autoloading the entry point does not add to it.
    """
    named = getattr(config.option, "plugins", None) or []
    return any(str(name).strip() in PLUGIN_NAMES for name in named)


def report_path(config: pytest.Config) -> Path | None:
    """Return where the report goes if the run opted in, else ``None`` (no report, no gates).

    Opted in: ``--reliability-report``, the ``reliability_report`` ini value,
    ``RELIABILITY_REPORT`` (a path, or a true word for the default; a false word opts out), or
    ``-p reliability`` given explicitly. An option path is relative to the invocation
    directory, an ini path to the ini file's directory, an environment path to the invocation
    directory, the default to the rootdir.
    """
    option = config.getoption("reliability_report")
    if option:
        return config.invocation_params.dir / str(option)
    ini = str(config.getini("reliability_report") or "").strip()
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return base / ini
    env = os.environ.get(REPORT_ENV, "").strip()
    if env.lower() in _FALSE:
        env = ""
    if env and env.lower() not in _TRUE:
        return config.invocation_params.dir / env
    if env or explicitly_loaded(config):
        return config.rootpath / DEFAULT_REPORT
    return None


def parse_indent(where: str, raw: str) -> int:
    """Parse a JSON indent setting: 0 to :data:`MAX_INDENT` spaces."""
    value = parse_count(where, raw)
    if value > MAX_INDENT:
        raise ConfigurationError(f"indent {value} is more than {MAX_INDENT} spaces")
    return value


def indent_arg(raw: str) -> int:
    """argparse type of ``--reliability-report-indent``."""
    try:
        return parse_indent(OPT_REPORT_INDENT, raw.strip())
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_capture(where: str, raw: str) -> str:
    """Parse ``off``, ``failed`` or ``all`` (whose captured output the report keeps)."""
    value = raw.strip().lower()
    if value not in ("off", "failed", "all"):
        raise ConfigurationError(f"{raw!r} is not one of off, failed, all")
    return value


def parse_positive(where: str, raw: str) -> int:
    """Parse a positive integer setting."""
    value = parse_count(where, raw)
    if value < 1:
        raise ConfigurationError(f"{raw!r} is not a positive integer")
    return value


def positive_arg(raw: str) -> int:
    """argparse type of a positive integer option."""
    try:
        return parse_positive("", raw.strip())
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def html_path(config: pytest.Config) -> Path | None:
    """Return where the HTML report goes (option relative to the invocation directory, ini to
    the ini file's), or ``None``."""
    option = config.getoption("reliability_html")
    if option:
        return config.invocation_params.dir / str(option)
    ini = str(config.getini("reliability_html") or "").strip()
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return base / ini
    return None
