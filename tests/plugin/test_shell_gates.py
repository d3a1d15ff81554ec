"""The shell gates, run as CI runs them, on small suites made for the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_reliability.report import validate_report, violations
from tests.plugin._helpers import load_report

ROOT = Path(__file__).resolve().parents[2]
SUITE = """
import pytest

@pytest.mark.chaos
def test_chaos(chaos):
    pass

@pytest.mark.kill_switch
def test_switch():
    pass

@pytest.mark.idempotency
def test_idem():
    {idem_body}
"""


def _gate(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    full.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        ["bash", str(ROOT / "ci" / script)],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _suite(pytester: pytest.Pytester, idem_body: str = "pass") -> dict[str, str]:
    pytester.makepyfile(test_suite=SUITE.format(idem_body=idem_body))
    return {
        "RELIABILITY_SUITE_DIR": str(pytester.path),
        "RELIABILITY_PYTEST_ARGS": "-p no:cacheprovider -p no:benchmark test_suite.py",
        "RELIABILITY_REPORT": str(pytester.path / "out" / "report.json"),
    }


def test_reliability_gate_passes_and_writes_a_valid_report(pytester: pytest.Pytester) -> None:
    env = _suite(pytester)
    done = _gate("reliability-validation.sh", env, pytester.path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = load_report(pytester.path / "out" / "report.json")
    assert report["run"]["required_categories"] == ["chaos", "kill_switch", "idempotency"]
    assert "## Reliability report: PASSED" in done.stdout
    assert "reliability-validation: PASSED" in done.stdout


def test_reliability_gate_fails_naming_the_gate_and_the_reason(pytester: pytest.Pytester) -> None:
    env = _suite(pytester, idem_body="pytest.skip('not ready')")
    done = _gate("reliability-validation.sh", env, pytester.path)
    assert done.returncode == 1
    assert "gate required-categories failed" in done.stderr
    assert "no passing test in required category 'idempotency'" in done.stderr
    validate_report(load_report(pytester.path / "out" / "report.json"))


def test_reliability_gate_required_categories_are_configurable(
    pytester: pytest.Pytester,
) -> None:
    env = _suite(pytester, idem_body="pytest.skip('not ready')")
    env["RELIABILITY_REQUIRED_CATEGORIES"] = "chaos kill_switch"
    done = _gate("reliability-validation.sh", env, pytester.path)
    assert done.returncode == 0, done.stdout + done.stderr


def _production_report(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert violations(document, "production-validation-report.schema.json") == []
    return document


def test_production_gate_runs_selected_gates_and_stops_at_the_first_failure(
    pytester: pytest.Pytester,
) -> None:
    env = _suite(pytester, idem_body="assert False, 'double charge'")
    env["PRODUCTION_REPORT"] = str(pytester.path / "prod.json")
    env["PRODUCTION_GATES"] = "audit reliability"
    done = _gate("production-validation.sh", env, pytester.path)
    assert done.returncode == 1
    assert "FAILED at gate reliability" in done.stderr
    assert "double charge" in done.stderr
    report = _production_report(pytester.path / "prod.json")
    assert report["status"] == "failed"
    assert report["failed_gate"] == "reliability"
    # gates run in their fixed order (reliability before audit); the first failure stops the run
    assert [(g["name"], g["status"]) for g in report["gates"]] == [("reliability", "failed")]


def test_production_gate_audit_passes_and_unknown_gates_are_refused(
    pytester: pytest.Pytester,
) -> None:
    env = {"PRODUCTION_REPORT": str(pytester.path / "prod.json"), "PRODUCTION_GATES": "audit"}
    done = _gate("production-validation.sh", env, pytester.path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = _production_report(pytester.path / "prod.json")
    assert report["status"] == "passed"
    assert [g["name"] for g in report["gates"]] == ["audit"]
    env["PRODUCTION_GATES"] = "audit deploy"
    refused = _gate("production-validation.sh", env, pytester.path)
    assert refused.returncode == 2
    assert "unknown gate 'deploy'" in refused.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_gate_scripts_are_shellcheck_clean() -> None:
    scripts = [
        str(ROOT / "ci" / s)
        for s in ("reliability-validation.sh", "production-validation.sh", "chaos-validation.sh")
    ]
    done = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
    for script in scripts:
        assert "set -euo pipefail" in Path(script).read_text()


def test_gate_scripts_only_call_commands() -> None:
    for script in ("reliability-validation.sh", "production-validation.sh", "chaos-validation.sh"):
        text = (ROOT / "ci" / script).read_text(encoding="utf-8")
        assert "<<'" not in text, f"{script} embeds a heredoc"
        assert '"$python" -' not in text.replace('"$python" -m', ""), script


def test_production_cli_writes_audit_events_and_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_reliability.cli import main

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    assert main(["production", "audit-smoke", "--database-url", url]) == 0
    assert main(["audit", "verify", "--database-url", url]) == 0
    results = tmp_path / "gates.tsv"
    results.write_text("lint\tpassed\t3\t\naudit\tfailed\t1\texit 1: broken chain\n")
    out = tmp_path / "production.json"
    args = ["production", "report", "--results", str(results), "--started", "2026-01-01T00:00:00Z"]
    assert main([*args, "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    validate_report(report, "production-validation-report.schema.json")
    assert report["status"] == "failed"
    assert report["failed_gate"] == "audit"
    assert report["gates"][1]["reason"] == "exit 1: broken chain"
    capsys.readouterr()
    results.write_text("lint\tmaybe\tx\n")
    assert main([*args, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "line 1" in err
    assert len(err.strip().splitlines()) == 1


def test_report_gates_prints_what_did_not_pass(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_reliability.cli import main

    pytester.makepyfile("def test_x():\n    assert False\n")
    pytester.runpytest("-p", "reliability", "--reliability-report=r.json")
    capsys.readouterr()
    assert main(["report", "gates", str(pytester.path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "status: failed"
    assert "gate no-failures failed: test_report_gates_prints_what_did_not_pass.py::test_x" in out
