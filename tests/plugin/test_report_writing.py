"""Where and how the report is written: modes, symlinks, devices, FIFOs, text of any kind."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin._helpers import REPORT, RunInner, by_nodeid


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_report_gets_the_mode_the_umask_gives(
    pytester: pytest.Pytester, run_inner: RunInner, umask_022: None
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    run_inner()
    assert stat.S_IMODE((pytester.path / REPORT).stat().st_mode) == 0o644


def test_an_existing_report_keeps_its_mode(
    pytester: pytest.Pytester, run_inner: RunInner, umask_022: None
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    path = pytester.path / REPORT
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o640)
    run_inner()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_symlinked_report_path_stays_a_link_to_the_new_report(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    real = pytester.path / "elsewhere" / "real.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = pytester.path / REPORT
    link.parent.mkdir()
    link.symlink_to(real)
    _, report = run_inner()
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert json.loads(real.read_text())["run"]["id"] == report["run"]["id"]


def test_a_fifo_with_a_reader_gets_the_report_written_through(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    fifo = pytester.path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as handle:  # blocks until the run opens it for writing
            received.append(handle.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    result = pytester.runpytest("-p", "reliability", f"--reliability-report={fifo}")
    reader.join(timeout=30)
    assert result.ret == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # One document (the in-progress report goes to regular files only), the finished one.
    assert json.loads(received[0])["status"] == "passed"


def test_a_fifo_without_a_reader_fails_the_run_instead_of_hanging(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    fifo = pytester.path / "report.fifo"
    os.mkfifo(fifo)
    result = pytester.runpytest("-p", "reliability", f"--reliability-report={fifo}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*report not written*no process is reading the FIFO*"])


def test_a_character_device_is_written_through_not_replaced(
    pytester: pytest.Pytester,
) -> None:
    # A private null device (same numbers as /dev/null): the real /dev/null is never at risk.
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root (CAP_MKNOD)")
    pytester.makepyfile("def test_one():\n    pass\n")
    node = pytester.path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("this container does not allow mknod")
    result = pytester.runpytest("-p", "reliability", f"--reliability-report={node}")
    assert result.ret == 0
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert os.major(os.lstat(node).st_rdev) == 1


@pytest.mark.parametrize("kind", ["directory", "dangling-symlink", "socket"])
def test_a_path_that_is_no_file_is_a_usage_error_before_any_test(
    pytester: pytest.Pytester, kind: str, tmp_path: Path
) -> None:
    import socket

    pytester.makepyfile("def test_one():\n    open('ran', 'w').close()\n")
    # Short: a socket path must fit in 108 bytes.
    target = tmp_path / "t"
    if kind == "directory":
        target.mkdir()
    elif kind == "dangling-symlink":
        target.symlink_to(tmp_path / "missing")
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
        server.close()
    result = pytester.runpytest("-p", "reliability", f"--reliability-report={target}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--reliability-report" in result.stderr.str()
    assert not (pytester.path / "ran").exists()


def test_lone_surrogates_in_failures_and_facts_are_kept_visibly(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        from pytest_reliability._facts import facts_for

        def test_surrogate(request):
            facts_for(request.node).set("custom", "note", "half \\ud800 pair")
            assert False, "bad \\ud800 text"
        """
    )
    result, report = run_inner()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    test = by_nodeid(report)["test_surrogate"]
    assert "bad \\ud800 text" in test["failure"]
    assert test["facts"]["custom"]["note"] == "half \\ud800 pair"


def test_the_directory_is_fsynced_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_reliability.report._io import write_bytes

    # A spy on the real call: the data must reach the disk, and so must the directory entry.
    synced: list[bool] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_bytes(tmp_path / "r.json", b"{}\n")
    assert synced == [False, True]
