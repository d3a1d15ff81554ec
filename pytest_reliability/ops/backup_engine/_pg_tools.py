"""PostgreSQL client programs and connection settings for the backup, validation and drill.

The tools come from a configured directory, else from the server's own version under
``/usr/lib/postgresql/*/bin``, else from ``PATH``. A ``pg_dump`` older than the server cannot
read it faithfully, so that is an error, never a silent fallback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import final

from sqlalchemy.engine import URL, make_url

from pytest_reliability.errors import BackupToolError

PG_LIB_ROOT = Path("/usr/lib/postgresql")
_VERSION_RE = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")
_SEARCH_PATH_RE = re.compile(r"-c\s*search_path=([^\s]+)")
TOOL_TIMEOUT_S = 30.0


@final
@dataclass(frozen=True, slots=True)
class Tool:
    """A located PostgreSQL program, its major version and its full version string."""

    path: Path
    major: int
    version: str


def tool_version(path: Path) -> tuple[int, str]:
    """Return (major, version) that ``path --version`` prints."""
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupToolError(f"cannot run {path}: {exc}", tool=path.name) from exc
    found = _VERSION_RE.search(out)
    if found is None:
        raise BackupToolError(f"{path} --version printed {out.strip()!r}", tool=path.name)
    major = int(found.group(1))
    return major, f"{major}.{found.group(2) or 0}"


def _candidates(name: str, bin_dir: Path | None) -> list[Path]:
    if bin_dir is not None:
        return [bin_dir / name] if (bin_dir / name).is_file() else []
    found = sorted(PG_LIB_ROOT.glob(f"*/bin/{name}"), key=lambda p: _major_of_dir(p), reverse=True)
    on_path = shutil.which(name)
    if on_path is not None:
        found.append(Path(on_path))
    return found


def _major_of_dir(path: Path) -> int:
    try:
        return int(path.parent.parent.name)
    except ValueError:
        return 0


def find_tool(name: str, *, server_major: int | None = None, bin_dir: Path | None = None) -> Tool:
    """Locate ``name``: the server's own major version first, else the nearest newer one.

    Raises :class:`BackupToolError` when it is missing, or when every copy found is older than
    ``server_major``.
    """
    candidates = _candidates(name, bin_dir)
    if server_major is not None:
        # The server's own version first: one --version call instead of one per copy installed.
        own = [p for p in candidates if _major_of_dir(p) == server_major]
        for path in own:
            tool = Tool(path, *tool_version(path))
            if tool.major == server_major:
                return tool
    if not candidates:
        where = str(bin_dir) if bin_dir is not None else f"{PG_LIB_ROOT}/*/bin or PATH"
        raise BackupToolError(f"{name} not found in {where}; install postgresql-client", tool=name)
    tools = [Tool(p, *tool_version(p)) for p in candidates]
    if server_major is None:
        return max(tools, key=lambda t: t.major)
    usable = sorted((t for t in tools if t.major >= server_major), key=lambda t: t.major)
    if not usable:
        newest = max(tools, key=lambda t: t.major)
        raise BackupToolError(
            f"{name} {newest.version} ({newest.path}) is older than the server "
            f"(PostgreSQL {server_major}); install the server's own client tools",
            tool=name,
        )
    return usable[0]


def libpq_env(url: str | URL) -> dict[str, str]:
    """Return the environment that points libpq programs at ``url``.

    The password travels in ``PGPASSWORD``, never on a command line where ``ps`` shows it.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=parsed.host or "127.0.0.1",
        PGPORT=str(parsed.port or 5432),
        PGUSER=parsed.username or "postgres",
        PGDATABASE=parsed.database or "postgres",
        PGCONNECT_TIMEOUT="10",
    )
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return env


def url_schema(url: str | URL) -> str | None:
    """Return the first schema of a ``options=-csearch_path=...`` in ``url``, if any."""
    parsed = make_url(url) if isinstance(url, str) else url
    options = parsed.query.get("options")
    text = options if isinstance(options, str) else " ".join(options or ())
    found = _SEARCH_PATH_RE.search(text)
    if found is None:
        return None
    first = found.group(1).split(",")[0].strip().strip('"')
    return first or None


def psycopg_params(url: str | URL) -> dict[str, object]:
    """Return psycopg connection keywords for ``url`` (with a bounded connect timeout)."""
    parsed = make_url(url) if isinstance(url, str) else url
    params: dict[str, object] = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "dbname": parsed.database or "postgres",
        "connect_timeout": 10,
    }
    if parsed.password is not None:
        params["password"] = parsed.password
    options = parsed.query.get("options")
    if isinstance(options, str):
        params["options"] = options
    return params
