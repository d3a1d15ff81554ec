"""``audit verify`` examines evidence without changing it, and answers clearly.

Read-only open (the file's bytes and the absence of ``-wal``/``-shm`` unchanged, a read-only copy
checkable), exit 2 when there is nothing to check, a wrong-typed value reported as a break, and
flat memory on a broken chain of 500,000 events.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pytest_reliability.audit import AuditLog
from pytest_reliability.audit._chain import GENESIS_HASH, ChainRow, event_hash
from pytest_reliability.db import create_schema, make_engine
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.audit

_TRIGGERS = (
    "audit_events_no_update",
    "audit_events_no_delete",
    "audit_events_extend_head",
    "audit_events_advance_head",
    "audit_heads_forward_only",
    "audit_heads_no_delete",
    "audit_heads_start_at_one",
)


def _cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pytest_reliability", "audit", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _fill(url: str, *, plain: bool, events: int = 5) -> None:
    engine = sa.create_engine(url) if plain else make_engine(url)
    create_schema(engine)
    log = AuditLog(engine)
    with tenant_scope("acme"):
        for i in range(events):
            log.append("a", actor="x", target=f"t{i}", outcome="ok")
    engine.dispose()


def _state(directory: Path) -> tuple[list[str], dict[str, str]]:
    names = sorted(os.listdir(directory))
    digests = {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in names}
    return names, digests


@pytest.mark.parametrize("journal", ["rollback", "wal"])
def test_verify_writes_nothing_to_the_database(tmp_path: Path, journal: str) -> None:
    url = f"sqlite:///{tmp_path / 'evidence.db'}"
    _fill(url, plain=journal == "rollback")
    before = _state(tmp_path)
    assert before[0] == ["evidence.db"]
    out = _cli("verify", "--database-url", url)
    assert out.returncode == 0, out.stderr
    assert "intact: 5 events" in out.stdout
    assert _state(tmp_path) == before, "verify changed the file or left -wal/-shm files"


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of a WAL database as a 0444 file in a 0555 directory, removed afterwards."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    _fill(url, plain=False)
    # Not under tmp_path: the checking process may lose root's right to traverse 0700 dirs.
    directory = Path(tempfile.mkdtemp(prefix="audit-ro-"))
    shutil.copy(tmp_path / "live.db", directory / "copy.db")
    (directory / "copy.db").chmod(0o444)
    directory.chmod(0o555)
    yield directory / "copy.db"
    directory.chmod(0o755)
    shutil.rmtree(directory)


def _unprivileged() -> tuple[str, ...]:
    """A command prefix under which file permissions apply (root ignores them otherwise)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make permissions apply")
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner")


def test_a_read_only_copy_can_be_checked(read_only_copy: Path) -> None:
    prefix = _unprivileged()
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", f"open({str(read_only_copy)!r}, 'a')"],
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0, "the copy must really be read-only for the checking process"
    before = _state(read_only_copy.parent)
    out = _cli("verify", "--database-url", f"sqlite:///{read_only_copy}", prefix=prefix)
    assert out.returncode == 0, out.stderr
    assert "intact: 5 events in 1 tenants" in out.stdout
    assert _state(read_only_copy.parent) == before


def test_a_missing_file_exits_two_and_creates_nothing(tmp_path: Path) -> None:
    out = _cli("verify", "--database-url", f"sqlite:///{tmp_path / 'typo.db'}")
    assert out.returncode == 2
    assert "no such database file" in out.stderr
    assert "Traceback" not in out.stderr
    assert os.listdir(tmp_path) == []


def test_an_unknown_tenant_exits_two(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    _fill(url, plain=False)
    out = _cli("verify", "--database-url", url, "--tenant", "nobody")
    assert out.returncode == 2
    assert "tenant 'nobody' has no audit log" in out.stderr
    assert _cli("verify", "--database-url", url, "--tenant", "acme").returncode == 0


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("seq", "3.5", "column seq holds a float, not int"),
        ("actor", "X'6d61'", "column actor holds a bytes, not str"),
        ("occurred_at_us", "X'00ff'", "column occurred_at_us holds a bytes, not int"),
        ("occurred_at_us", "'soon'", "column occurred_at_us holds a str, not int"),
        ("details", "X'7b7d'", "column details holds a bytes, not str"),
        ("correlation_id", "X'00'", "column correlation_id holds a bytes, not str or NULL"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_break(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    path = tmp_path / "a.db"
    _fill(f"sqlite:///{path}", plain=False)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute(f"UPDATE audit_events SET {column} = {value} WHERE seq = 3")
    out = _cli("verify", "--database-url", f"sqlite:///{path}")
    assert out.returncode == 1, out.stderr
    assert "BROKEN" in out.stdout
    assert reason in out.stdout
    assert "Traceback" not in out.stderr


_MEASURE = r"""
import json, resource, sys
from pytest_reliability.audit import AuditLog
from pytest_reliability.db import make_engine
engine = make_engine(sys.argv[1])
log = AuditLog(engine)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = log.verify()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "after_kib": after, "checked": result.events_checked,
                  "break": str(result.break_)}))
"""


def _bulk_chain(path: Path, count: int) -> None:
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    engine.dispose()
    columns = ", ".join(ChainRow._fields)
    insert = f"INSERT INTO audit_events ({columns}) VALUES ({', '.join('?' * 12)})"
    conn = sqlite3.connect(path)
    for trigger in _TRIGGERS:
        conn.execute(f"DROP TRIGGER {trigger}")
    prev = GENESIS_HASH
    batch: list[ChainRow] = []
    for seq in range(1, count + 1):
        partial = ("bulk", seq, uuid.UUID(int=seq).hex, seq, "a", "x", "t", "ok", "{}", None, prev)
        row = ChainRow(*partial, event_hash(partial))
        batch.append(row)
        prev = row.hash
        if len(batch) == 50_000:
            conn.executemany(insert, batch)
            batch = []
    conn.executemany(insert, batch)
    conn.execute("INSERT INTO audit_heads VALUES ('bulk', ?, ?)", (count, prev))
    conn.commit()
    conn.close()


@pytest.mark.slow
def test_memory_stays_flat_on_a_broken_chain_of_500000_events(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    _bulk_chain(path, 500_000)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 250000")
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, f"sqlite:///{path}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert "changed event at sequence 250000" in found["break"]
    growth_mib = (found["after_kib"] - found["before_kib"]) / 1024
    # Reading the whole chain into memory took about 700 MB; streaming needs a few MB.
    assert growth_mib < 40, f"verify grew the process by {growth_mib:.0f} MiB"
