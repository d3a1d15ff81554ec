"""Find or start the real servers the suite talks to.

PostgreSQL: ``RELIABILITY_TEST_POSTGRES_URL`` if set (it must answer), else the server on
127.0.0.1:5432 if it answers, else a private cluster made with ``initdb`` and started with
``pg_ctl`` in a temporary directory on a free port. Redis: ``RELIABILITY_TEST_REDIS_URL`` if set,
else 127.0.0.1:6379 if it answers, else a private ``redis-server`` on a free port.

Run as a script for shell gates: ``python -m harness.services postgres-url`` prints a URL (starting
a private server when needed, which then outlives the command: stop it with ``stop``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POSTGRES_URL_ENV = "RELIABILITY_TEST_POSTGRES_URL"
REDIS_URL_ENV = "RELIABILITY_TEST_REDIS_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
STATE_DIR = Path(tempfile.gettempdir()) / "pytest-reliability-services"


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_answers(url: str) -> bool:
    """Return whether a PostgreSQL server at ``url`` accepts a query."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    try:
        with psycopg.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username or "postgres",
            password=u.password,
            dbname=u.database or "postgres",
            connect_timeout=3,
        ) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"PostgreSQL binary {name!r} not found; install postgresql")


def start_private_postgres(state_dir: Path = STATE_DIR) -> str:
    """Start a private PostgreSQL cluster under ``state_dir`` and return its URL.

    A cluster already running there is reused.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    data = state_dir / "pgdata"
    url_file = state_dir / "postgres.url"
    if url_file.exists() and postgres_answers(url_file.read_text().strip()):
        return url_file.read_text().strip()
    port = _free_port()
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        # initdb refuses to run as root; a private cluster runs as the unprivileged 'postgres'
        # user when we are root.
        cmd = [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        _run_as_pg_user(cmd, data.parent)
    log = state_dir / "postgres.log"
    _run_as_pg_user(
        [
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {state_dir} -c fsync=off",
        ],
        data.parent,
    )
    base = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'test'").fetchone()
        if not exists:
            conn.execute("CREATE DATABASE test")
    url = f"{base}/test"
    url_file.write_text(url)
    return url


def _run_as_pg_user(cmd: list[str], workdir: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres", str(workdir)], check=True)
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, cwd="/", stdout=sys.stderr)


def stop_private_postgres(state_dir: Path = STATE_DIR) -> None:
    """Stop the private cluster under ``state_dir``, if one was started."""
    data = state_dir / "pgdata"
    if (data / "postmaster.pid").exists():
        _run_as_pg_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], state_dir)
    (state_dir / "postgres.url").unlink(missing_ok=True)


def postgres_url() -> str:
    """Return a URL of an answering PostgreSQL server, starting a private one when needed."""
    explicit = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if explicit:
        if not postgres_answers(explicit):
            raise RuntimeError(f"{POSTGRES_URL_ENV}={explicit} does not answer")
        return explicit
    if _port_open("127.0.0.1", 5432) and postgres_answers(DEFAULT_POSTGRES_URL):
        return DEFAULT_POSTGRES_URL
    return start_private_postgres()


def redis_url() -> str:
    """Return a URL of an answering Redis server, starting a private one when needed."""
    explicit = os.environ.get(REDIS_URL_ENV, "").strip()
    if explicit:
        return explicit
    if _port_open("127.0.0.1", 6379):
        return DEFAULT_REDIS_URL
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("no Redis on 127.0.0.1:6379 and no redis-server binary to start one")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    subprocess.run(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            str(STATE_DIR / "redis.pid"),
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while not _port_open("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


def main(argv: list[str]) -> int:
    """``postgres-url``, ``redis-url`` or ``stop``."""
    if argv == ["postgres-url"]:
        print(postgres_url())
    elif argv == ["redis-url"]:
        print(redis_url())
    elif argv == ["stop"]:
        stop_private_postgres()
    else:
        print("usage: python -m harness.services postgres-url|redis-url|stop", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
