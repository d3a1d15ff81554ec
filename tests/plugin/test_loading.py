"""Loading the plugin: -p reliability with and without autoload, -p no:reliability, import cost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.plugin._helpers import REPORT, RunInner

OPTIONS = (
    "--reliability-report",
    "--reliability-seed",
    "--reliability-require",
    "--reliability-flaky-budget",
    "--reliability-deterministic-ids",
    "--reliability-deterministic-uuid4",
)
INI = (
    "reliability_report",
    "reliability_seed",
    "reliability_require",
    "reliability_flaky_budget",
    "reliability_deterministic_ids",
    "reliability_deterministic_uuid4",
)


def test_help_has_a_reliability_group_with_every_option_and_ini_twin(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("-p", "reliability", "--help")
    assert result.ret == 0
    out = result.stdout.str()
    group = out.index("reliability report, seed and gates:")
    for option in OPTIONS:
        assert out.index(option) > group, option
    for ini in INI:
        assert f"  {ini} " in out, ini


def test_plugin_loads_with_autoload_disabled_and_writes_the_report(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    result, report = run_inner()
    assert result.ret == 0
    assert report["summary"]["passed"] == 1
    result.stdout.fnmatch_lines(["reliability: seed=* deterministic-ids=off report=*"])


def test_autoload_loads_the_entry_point_and_no_reliability_turns_it_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    pytester.makepyfile("def test_one():\n    pass\n")
    on = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark")
    assert on.ret == 0
    assert (pytester.path / REPORT).is_file()
    (pytester.path / REPORT).unlink()
    off = pytester.runpytest("-p", "no:reliability", "-p", "no:benchmark")
    assert off.ret == 0
    assert not (pytester.path / REPORT).exists()
    unknown = pytester.runpytest("-p", "no:reliability", "--reliability-seed=1")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR


def test_loading_the_plugin_imports_no_sqlalchemy_hypothesis_docker_or_jsonschema(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    script = textwrap.dedent(
        """
        import os, sys
        import pytest
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        code = pytest.main(["-q", "-p", "reliability", "-p", "no:cacheprovider", "test_plain.py"])
        names = ("sqlalchemy", "hypothesis", "docker", "jsonschema")
        heavy = sorted(m for m in names if m in sys.modules)
        print("HEAVY:", ",".join(heavy) or "none", "CODE:", int(code))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "HEAVY: none CODE: 0" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("mode", ["--collect-only", "--fixtures", "--fixtures-per-test"])
def test_listing_modes_write_no_report_and_run_no_gate(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile("def test_one(correlation_ids):\n    pass\n")
    result = pytester.runpytest("-p", "reliability", "--reliability-require=chaos", mode)
    assert result.ret == 0
    assert not (pytester.path / REPORT).exists()
