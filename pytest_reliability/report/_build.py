"""Assembling the report document: run metadata, CI environment, summary, gates and status."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pytest_reliability._version import __version__
from pytest_reliability.report._collector import Collector, LocalFacts, summarize
from pytest_reliability.report._gates import GateResult
from pytest_reliability.report._schema import SCHEMA_VERSION

# provider, detecting variable, commit variable, branch variable, url variable
_CI_PROVIDERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("github-actions", "GITHUB_ACTIONS", "GITHUB_SHA", "GITHUB_REF_NAME", ""),
    ("gitlab-ci", "GITLAB_CI", "CI_COMMIT_SHA", "CI_COMMIT_REF_NAME", "CI_JOB_URL"),
    ("circleci", "CIRCLECI", "CIRCLE_SHA1", "CIRCLE_BRANCH", "CIRCLE_BUILD_URL"),
    ("buildkite", "BUILDKITE", "BUILDKITE_COMMIT", "BUILDKITE_BRANCH", "BUILDKITE_BUILD_URL"),
    ("azure-pipelines", "TF_BUILD", "BUILD_SOURCEVERSION", "BUILD_SOURCEBRANCHNAME", ""),
    ("jenkins", "JENKINS_URL", "GIT_COMMIT", "GIT_BRANCH", "BUILD_URL"),
    ("travis-ci", "TRAVIS", "TRAVIS_COMMIT", "TRAVIS_BRANCH", "TRAVIS_BUILD_WEB_URL"),
)


def ci_environment(environ: Mapping[str, str]) -> dict[str, str | None]:
    """Return the CI provider, commit, branch and job URL as far as ``environ`` tells."""

    def get(name: str) -> str | None:
        value: str = environ.get(name, "").strip() if name else ""
        return value or None

    for provider, marker, commit, branch, url in _CI_PROVIDERS:
        if get(marker):
            found: dict[str, str | None] = {
                "provider": provider,
                "commit": get(commit),
                "branch": get(branch),
            }
            if provider == "github-actions" and get("GITHUB_RUN_ID"):
                server = get("GITHUB_SERVER_URL") or "https://github.com"
                repo = get("GITHUB_REPOSITORY") or ""
                found["url"] = f"{server}/{repo}/actions/runs/{get('GITHUB_RUN_ID')}"
            else:
                found["url"] = get(url)
            return found
    generic = get("CI")
    detected = "generic" if generic and generic.lower() not in ("0", "false", "no") else None
    return {"provider": detected, "commit": None, "branch": None, "url": None}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class RunInfo:
    """What the plugin knows about the run besides the tests."""

    # Not a dataclass: one is made at every opted-in run's start, and a dataclass execs
    # generated source at import.
    __slots__ = (
        "allow_no_tests",
        "deterministic_ids",
        "deterministic_uuid4",
        "environ",
        "flaky_budget",
        "internal_error",
        "interruption",
        "project",
        "pytest_version",
        "required_categories",
        "run_id",
        "seed",
        "started_at",
        "workers",
        "xdist_version",
    )

    def __init__(
        self,
        run_id: str,
        seed: int,
        deterministic_ids: bool,
        deterministic_uuid4: bool,
        required_categories: Sequence[str],
        flaky_budget: int,
        started_at: datetime,
        environ: Mapping[str, str],
        workers: list[str] | None = None,
        xdist_version: str | None = None,
        pytest_version: str = "",
        interruption: dict[str, str] | None = None,
        internal_error: str | None = None,
        allow_no_tests: bool = False,
        project: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.seed = seed
        self.deterministic_ids = deterministic_ids
        self.deterministic_uuid4 = deterministic_uuid4
        self.required_categories = required_categories
        self.flaky_budget = flaky_budget
        self.started_at = started_at
        self.environ = environ
        self.workers: list[str] = [] if workers is None else workers
        self.xdist_version = xdist_version
        self.pytest_version = pytest_version
        self.interruption = interruption
        self.internal_error = internal_error
        self.allow_no_tests = allow_no_tests
        self.project = project

    def replace(self, **changes: Any) -> RunInfo:
        """Return a copy with ``changes`` applied (the workers list is copied too)."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values["workers"] = list(self.workers)
        values.update(changes)
        return RunInfo(**values)


def overall_status(
    exit_code: int,
    interruption: Mapping[str, str] | None,
    gates: Sequence[GateResult],
    summary: Mapping[str, Any] | None = None,
) -> str:
    """Return ``error``, ``interrupted``, ``failed``, ``no_tests`` or ``passed``, worst first."""
    internal = interruption is not None and interruption.get("kind") == "internal_error"
    if internal or any(g.status == "error" for g in gates):
        return "error"
    if interruption is not None:
        return "interrupted"
    if exit_code not in (0, 5) or any(g.status == "failed" for g in gates):
        return "failed"
    if summary is not None and ran_no_tests(summary):
        return "no_tests"
    return "passed"


def ran_no_tests(summary: Mapping[str, Any]) -> bool:
    """Whether a summary is of a run where no test ran and nothing failed to collect."""
    return int(summary["total"]) == 0 and int(summary["collection_errors"]) == 0


def build_tests_part(
    collector: Collector,
    local: LocalFacts | None = None,
    closing: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Return ``tests``, ``collection_errors`` and ``summary`` from the collected reports.

    ``local`` gives the facts of tests run in this process (see :meth:`Collector.tests`);
    ``closing`` pytest's closing-line counts (see :func:`summarize`).
    """
    tests = collector.tests(local)
    errors = collector.collection_error_list()
    return {
        "summary": summarize(tests, len(errors), closing),
        "tests": tests,
        "collection_errors": errors,
    }


INCOMPLETE_REASON = (
    "the run has not finished: it is still running, or it was killed before it wrote its report"
)


def placeholder(info: RunInfo) -> dict[str, Any]:
    """Return the report written at session start, which a finished run replaces.

    A run that dies (SIGKILL, a second Ctrl-C, power loss) leaves this behind instead of the
    previous run's report: status ``incomplete``, exit code 1 so that a reader that only checks
    the exit code fails closed too.
    """
    unfinished = info.replace(interruption={"kind": "incomplete", "reason": INCOMPLETE_REASON})
    run = build_run(unfinished, 1, info.started_at)
    return assemble(run, build_tests_part(Collector()), [], {}, status="incomplete")


def build_run(info: RunInfo, exit_code: int, finished_at: datetime) -> dict[str, Any]:
    """Return the ``run`` object."""
    uname = platform.uname()
    return {
        "id": info.run_id,
        "started_at": _iso(info.started_at),
        "finished_at": _iso(finished_at),
        "duration_s": round(max(0.0, (finished_at - info.started_at).total_seconds()), 6),
        "seed": info.seed,
        "deterministic_ids": info.deterministic_ids,
        "deterministic_uuid4": info.deterministic_uuid4,
        "complete": info.interruption is None,
        "interruption": info.interruption,
        "exit_code": exit_code,
        "workers": sorted(set(info.workers)),
        "versions": {
            "python": platform.python_version(),
            "pytest": info.pytest_version,
            "plugin": __version__,
            "xdist": info.xdist_version,
        },
        "platform": {
            "system": uname.system,
            "release": uname.release,
            "machine": uname.machine,
            "implementation": sys.implementation.name,
        },
        "ci": ci_environment(info.environ),
        "required_categories": list(info.required_categories),
        "flaky_budget": info.flaky_budget,
        "allow_no_tests": info.allow_no_tests,
        **({"project": info.project} if info.project else {}),
    }


def assemble(
    run: dict[str, Any],
    tests_part: dict[str, Any],
    gates: Sequence[GateResult],
    sections: dict[str, Any],
    parts: Mapping[str, Any] | None = None,
    *,
    status: str | None = None,
) -> dict[str, Any]:
    """Return the report document in its canonical key order.

    ``parts`` are optional top-level parts the schema defines (``backups``), added last.
    """
    if status is None:
        status = overall_status(run["exit_code"], run["interruption"], gates, tests_part["summary"])
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "run": run,
        "summary": tests_part["summary"],
        "tests": tests_part["tests"],
        "collection_errors": tests_part["collection_errors"],
        "gates": [g.as_dict() for g in gates],
        "sections": sections,
        **(parts or {}),
    }
