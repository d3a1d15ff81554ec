"""The report CLI facing hostile files: bounded reads, one-line errors, never a traceback."""

from __future__ import annotations

import copy
import json
import os
import resource
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_reliability.cli import main
from pytest_reliability.report._build import RunInfo, assemble, build_run
from pytest_reliability.report._collector import summarize
from pytest_reliability.report._schema import validate_report

COMMANDS = (
    ("validate",),
    ("summary",),
    ("summary", "--format", "text"),
    ("gates",),
    ("diff", "{other}"),
    ("merge", "{other}", "-o", "-"),
)


def sample_report(nodeids: list[str], seed: int = 7) -> dict[str, Any]:
    """A schema-valid report of passing tests, built by the plugin's own functions."""
    info = RunInfo(
        run_id=f"run-{seed}-{len(nodeids)}",
        seed=seed,
        deterministic_ids=False,
        deterministic_uuid4=False,
        required_categories=(),
        flaky_budget=0,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        environ={},
        pytest_version="9",
    )
    tests = [
        {
            "nodeid": nodeid,
            "outcome": "passed",
            "duration_s": 0.5,
            "categories": [],
            "worker": None,
            "attempts": [{"outcome": "passed", "duration_s": 0.5, "failure": None}],
            "failure": None,
            "facts": {},
        }
        for nodeid in nodeids
    ]
    part = {"summary": summarize(tests, 0), "tests": tests, "collection_errors": []}
    document = assemble(build_run(info, 0, datetime(2026, 1, 1, 0, 1, tzinfo=UTC)), part, [], {})
    validate_report(document)
    return document


def _run(command: tuple[str, ...], path: Path, other: Path) -> int:
    args = [a.format(other=other) for a in command]
    return main(["report", args[0], str(path), *args[1:]])


def _assert_one_line_error(err: str, path: Path) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert str(path) in lines[0]
    assert "Traceback" not in err


@pytest.fixture
def other(tmp_path: Path) -> Path:
    path = tmp_path / "other.json"
    path.write_text(json.dumps(sample_report(["t.py::test_other"], seed=1)))
    return path


HOSTILE = {
    "deep-nesting": "[" * 100_000 + "]" * 100_000,
    "deep-in-sections": None,  # filled below: a valid report with 70 levels in sections
    "huge-integer": '{"schema_version": "1.1", "n": ' + "9" * 5000 + "}",
    "huge-duration": None,
    "nan": '{"schema_version": "1.1", "x": NaN}',
    "infinity": '{"schema_version": "1.1", "x": -Infinity}',
    "float-overflow": '{"schema_version": "1.1", "x": 1e400}',
    "version-2": '{"schema_version": "2.0"}',
    "not-utf8": b"\xff\xfe{}",
}


def _hostile(name: str) -> str | bytes:
    if name == "deep-in-sections":
        document = sample_report(["t.py::a"])
        nested: Any = {}
        for _ in range(70):
            nested = {"x": nested}
        document["sections"]["deep"] = nested
        return json.dumps(document)
    if name == "huge-duration":
        document = sample_report(["t.py::a"])
        document["run"]["duration_s"] = 10**30
        return json.dumps(document)
    content = HOSTILE[name]
    assert content is not None
    return content


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_hostile_content_exits_1_with_one_line_naming_the_file(
    tmp_path: Path,
    other: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    command: tuple[str, ...],
) -> None:
    path = tmp_path / "hostile.json"
    content = _hostile(name)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    assert _run(command, path, other) == 1
    err = capsys.readouterr().err
    _assert_one_line_error(err, path)
    if name == "version-2":
        assert "schema version '2.0' is not supported" in err


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_non_regular_files_are_refused_without_reading(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif kind == "dev-zero":
        path = Path("/dev/zero")  # read-only use: nothing is written to it
    else:
        path = tmp_path

    # A subprocess with a timeout and a memory cap: the old code hung on the FIFO and read
    # zeros until memory ran out, which must not take the shared machine's memory with it.
    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run(
        [sys.executable, "-m", "pytest_reliability", "report", "summary", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=cap_memory,
    )
    assert done.returncode == 1
    _assert_one_line_error(done.stderr, path)


def test_the_size_limit_is_configurable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(sample_report([f"t.py::test_{i}" for i in range(50)])))
    assert main(["report", "validate", "--max-bytes", "100", str(path)]) == 1
    assert "larger than 100 bytes" in capsys.readouterr().err
    monkeypatch.setenv("RELIABILITY_REPORT_MAX_BYTES", "100")
    assert main(["report", "validate", str(path)]) == 1
    monkeypatch.setenv("RELIABILITY_REPORT_MAX_BYTES", "1000000")
    assert main(["report", "validate", str(path)]) == 0


def test_surrogate_node_ids_survive_diff_and_merge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.json"
    new = tmp_path / "new.json"
    # json.dumps writes the lone surrogate as the escape \ud800, which JSON parsers accept.
    old.write_text(json.dumps(sample_report(["t.py::a\ud800"], seed=1)))
    new.write_text(json.dumps(sample_report(["t.py::b\udfff"], seed=2)))
    assert main(["report", "diff", str(old), str(new)]) == 0
    assert "t.py::b\\udfff" in capsys.readouterr().out
    out = tmp_path / "merged.json"
    assert main(["report", "merge", str(old), str(new), "-o", str(out)]) == 0
    merged = json.loads(out.read_text(encoding="utf-8"))
    assert [t["nodeid"] for t in merged["tests"]] == ["t.py::a\\ud800", "t.py::b\\udfff"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_arbitrary_bytes_never_crash_any_command(
    tmp_path: Path, other: Path, data: bytes
) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    for command in COMMANDS:
        assert _run(command, path, other) in (0, 1)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_a_report_with_any_value_replaced_never_crashes(
    tmp_path: Path, other: Path, data: st.DataObject
) -> None:
    document = sample_report(["t.py::test_a", "t.py::test_b"], seed=3)
    mutated = copy.deepcopy(document)
    # Walk to a random place in the report and put any JSON value there.
    node: Any = mutated
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        node[key] = data.draw(JSON_VALUES)
        break
    path = tmp_path / "mutated.json"
    path.write_text(json.dumps(mutated), encoding="utf-8")
    for command in COMMANDS:
        assert _run(command, path, other) in (0, 1)


def test_validate_takes_several_paths_and_reports_each(
    tmp_path: Path, other: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["report", "validate", str(other), str(other)]) == 0
    assert capsys.readouterr().out.count(": valid") == 2
    assert main(["report", "validate", str(other), str(bad)]) == 1
    captured = capsys.readouterr()
    assert ": valid" in captured.out
    assert str(bad) in captured.err


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps(sample_report([f"t.py::test_{i}" for i in range(20_000)])))
    command = [sys.executable, "-m", "pytest_reliability", "report", "diff", str(path), str(path)]
    other = tmp_path / "none.json"
    other.write_text(json.dumps(sample_report([], seed=9)))
    command[-2] = str(other)  # 20,000 added tests: far more than a pipe buffer
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        process.stdout.readline()
        process.stdout.close()  # as `| head -1` does
        _, err = process.communicate(timeout=60)
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
    assert process.returncode == 1


def test_merge_keeps_every_seed_and_refuses_a_run_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(json.dumps(sample_report(["t.py::a"], seed=11)))
    b.write_text(json.dumps(sample_report(["t.py::b"], seed=22)))
    out = tmp_path / "m.json"
    assert main(["report", "merge", str(a), str(b), "-o", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["run"]["seeds"] == [11, 22]
    capsys.readouterr()
    assert main(["report", "merge", str(a), str(a), "-o", str(tmp_path / "x.json")]) == 1
    assert "repeats run" in capsys.readouterr().err
    # A merged report already holds a's run.
    assert main(["report", "merge", str(out), str(a), "-o", str(tmp_path / "y.json")]) == 1
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("kind", ["directory", "empty", "proc", "fifo", "missing-dir-parent"])
def test_merge_output_that_is_no_regular_file_is_refused(
    tmp_path: Path, other: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    target: str
    if kind == "directory":
        target = str(tmp_path)
    elif kind == "empty":
        target = ""
    elif kind == "proc":
        target = "/proc/self/reliability-merged.json"
    elif kind == "fifo":
        os.mkfifo(tmp_path / "pipe")
        target = str(tmp_path / "pipe")
    else:
        (tmp_path / "file").write_text("x")
        target = str(tmp_path / "file" / "sub" / "m.json")
    assert main(["report", "merge", str(other), "-o", target]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)


def test_merge_output_through_a_symlink_keeps_the_link_and_dash_is_stdout(
    tmp_path: Path, other: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o644)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert main(["report", "merge", str(other), "-o", str(link)]) == 0
    assert link.is_symlink()
    assert json.loads(real.read_text())["summary"]["total"] == 1
    assert stat.S_IMODE(real.stat().st_mode) == 0o644
    capsys.readouterr()
    assert main(["report", "merge", str(other), "-o", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["total"] == 1
