"""``pytest-reliability report``: validate, summary, diff and merge on reports real runs wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_reliability.cli import main
from tests.plugin._helpers import REPORT, RunInner, load_report

SHARD_A = """
import pytest

@pytest.mark.chaos
def test_chaos_ok():
    pass

def test_slow():
    import time
    time.sleep({slow})

def test_flips():
    assert {flips_ok}
"""

SHARD_B = """
import pytest

@pytest.mark.idempotency
def test_idem_ok():
    pass
"""


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_reliability", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def two_runs(pytester: pytest.Pytester, run_inner: RunInner) -> tuple[Path, Path]:
    """An old report (test_flips fails, test_slow fast) and a new one (fixed, slower)."""
    pytester.makepyfile(test_shard=SHARD_A.format(slow=0, flips_ok=False))
    run_inner()
    old = pytester.path / "old.json"
    (pytester.path / REPORT).rename(old)
    pytester.makepyfile(test_shard=SHARD_A.format(slow=0.3, flips_ok=True))
    run_inner()
    new = pytester.path / "new.json"
    (pytester.path / REPORT).rename(new)
    return old, new


def test_validate_accepts_a_real_report_and_names_json_pointers_of_errors(
    two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _ = two_runs
    assert main(["report", "validate", str(old)]) == 0
    assert "valid" in capsys.readouterr().out
    broken = json.loads(old.read_text())
    broken["tests"][0]["outcome"] = "maybe"
    del broken["summary"]["flaky"]
    assert main(["report", "validate", str(_write(tmp_path / "b.json", broken))]) == 1
    err = capsys.readouterr().err
    assert "/tests/0/outcome: 'maybe' is not one of" in err
    assert "/summary: 'flaky' is a required property" in err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "is not JSON"),
        ('{"name": "package.json", "version": "1.0.0"}', "not a reliability report"),
        ("[1, 2, 3]", "not a reliability report"),
        (b"\xff\xfe\x00".decode("latin-1"), "not"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "summary"])
def test_corrupt_or_foreign_files_exit_1_with_a_reason_and_no_traceback(
    tmp_path: Path, content: str, reason: str, command: str
) -> None:
    path = tmp_path / "input.json"
    path.write_text(content, encoding="latin-1")
    done = _cli("report", command, str(path))
    assert done.returncode == 1
    assert reason in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_file_exits_1_without_traceback(tmp_path: Path) -> None:
    done = _cli("report", "validate", str(tmp_path / "absent.json"))
    assert done.returncode == 1
    assert "cannot read" in done.stderr
    assert "Traceback" not in done.stderr


def test_summary_markdown_and_text(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, _ = two_runs
    assert main(["report", "summary", str(old)]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("## Reliability report: FAILED")
    assert "| failed | 1 |" in markdown
    assert "| no-failures | FAILED |" in markdown
    assert "| chaos | 1 | 1 |" in markdown
    assert "- FAILED test\\_shard.py\\:\\:test\\_flips" in markdown
    assert main(["report", "summary", "--format", "text", str(old)]) == 0
    text = capsys.readouterr().out
    assert "gate no-failures: FAILED" in text
    assert "|" not in text


def test_diff_finds_fixed_tests_and_duration_regressions(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = two_runs
    assert main(["report", "diff", "--format", "json", str(old), str(new)]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["fixed"] == ["test_shard.py::test_flips"]
    assert diff["newly_failing"] == []
    assert [s["nodeid"] for s in diff["slower"]] == ["test_shard.py::test_slow"]
    assert diff["status"] == {"old": "failed", "new": "passed"}
    assert main(["report", "diff", "--check", str(new), str(old)]) == 1
    text = capsys.readouterr().out
    assert "newly failing: 1\n  test_shard.py::test_flips" in text


def test_merge_shards_reruns_gates_over_all_tests(
    pytester: pytest.Pytester, run_inner: RunInner, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_a=SHARD_A.format(slow=0, flips_ok=True))
    pytester.makepyfile(test_b=SHARD_B)
    shards = []
    for name, target in (("a", "test_a.py"), ("b", "test_b.py")):
        _, report = run_inner(target, "--reliability-require=chaos,idempotency")
        # each shard alone misses one required category
        assert report["status"] == "failed"
        shards.append(pytester.path / f"shard-{name}.json")
        (pytester.path / REPORT).rename(shards[-1])
    out = pytester.path / "merged" / "all.json"
    assert main(["report", "merge", *map(str, shards), "-o", str(out)]) == 0
    merged = load_report(out)
    assert merged["summary"]["total"] == 4
    assert merged["status"] == "passed"
    assert all(g["status"] == "passed" for g in merged["gates"])
    assert len(merged["run"]["merged_from"]) == 2
    assert "merged 2 reports" in capsys.readouterr().out
