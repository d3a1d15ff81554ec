"""PostgreSQL and Redis images built locally from the host's own binaries, with no registry.

Machines that run this suite reach no image registry, so an image is assembled from what the host
already has installed: the server binary, every shared library ``ldd`` names for it (and the
dynamic loader), the data files the server reads, and a tiny ``/etc``. The files go straight into
a tar stream (owners set in the tar, so nothing needs root on the host) that ``docker import``
turns into an image.

The tag is a content hash of everything that went in (paths, bytes, the recipe's version and
start command), so a second run finds the image and reuses it, and an upgraded host package gives
a new tag instead of a stale image.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_reliability.errors import ImageBuildError

RECIPE_VERSION = "1"
"""Bumped when the way images are assembled changes, so old tags stop matching."""

REPOSITORY = "pytest-reliability"
LABEL = "pytest-reliability.image"
PG_UID = 999
_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


_DIGESTS: dict[tuple[str, int, int, int], bytes] = {}


def _file_digest(kind: str, path: Path) -> bytes:
    """SHA-256 of ``path``'s bytes, remembered for this process while its inode, size and mtime
    stay the same (a PostgreSQL recipe hashes about 1,800 files)."""
    try:
        st = path.stat()
        key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in _DIGESTS:
            with path.open("rb") as fh:
                _DIGESTS[key] = hashlib.file_digest(fh, "sha256").digest()
    except OSError as exc:
        raise ImageBuildError(f"cannot build the {kind} image: {exc}") from exc
    return _DIGESTS[key]


@dataclass(frozen=True, slots=True)
class ImageRecipe:
    """What goes into one image: host files (copied, symlinks followed) and generated files."""

    kind: str
    files: dict[str, Path]
    """Path inside the image -> file on the host."""
    generated: dict[str, bytes] = field(default_factory=dict)
    changes: tuple[str, ...] = ()
    """Dockerfile instructions applied at import (``CMD``, ``USER``, ``ENV``)."""

    def digest(self) -> str:
        """Return the content hash that names this recipe's image."""
        h = hashlib.sha256(f"{RECIPE_VERSION}\0{self.kind}\0".encode())
        for change in self.changes:
            h.update(change.encode() + b"\0")
        for inside in sorted(self.files):
            h.update(inside.encode() + b"\0")
            h.update(_file_digest(self.kind, self.files[inside]))
        for inside in sorted(self.generated):
            h.update(inside.encode() + b"\0" + hashlib.sha256(self.generated[inside]).digest())
        return h.hexdigest()[:16]

    @property
    def tag(self) -> str:
        """The image reference, ``pytest-reliability/<kind>:<hash>``."""
        return f"{REPOSITORY}/{self.kind}:{self.digest()}"


def shared_libraries(binary: Path) -> list[Path]:
    """Return every shared library ``ldd`` resolves for ``binary``, the loader included."""
    try:
        out = subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ImageBuildError(f"ldd {binary} failed: {exc}") from exc
    return [Path(m.group(1)) for m in map(_LDD_LINE.search, out.splitlines()) if m]


def _with_libraries(binaries: Iterable[Path]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for binary in binaries:
        files[str(binary)] = binary
        for lib in shared_libraries(binary):
            files[str(lib)] = lib
    return files


def _tree(root: Path) -> dict[str, Path]:
    return {str(p): p for p in sorted(root.rglob("*")) if p.is_file()}


def _etc(users: str) -> dict[str, bytes]:
    return {
        "/etc/passwd": f"root:x:0:0:root:/root:/nonexistent\n{users}".encode(),
        "/etc/group": f"root:x:0:\npostgres:x:{PG_UID}:\nnogroup:x:65534:\n".encode(),
        "/etc/nsswitch.conf": b"passwd: files\ngroup: files\nhosts: files\n",
        "/etc/hosts": b"127.0.0.1 localhost\n",
    }


def redis_recipe() -> ImageRecipe:
    """Redis from the host's ``redis-server``, run as ``nobody`` with persistence off."""
    found = shutil.which("redis-server")
    if found is None:
        raise ImageBuildError("cannot build a Redis image: no redis-server on this host")
    # Debian's redis-server is a symlink; the binary picks its role from its name, so the
    # real file must sit in the image under the name redis-server.
    real = Path(found).resolve()
    files = _with_libraries([real])
    files["/usr/bin/redis-server"] = files.pop(str(real))
    return ImageRecipe(
        kind="redis",
        files=files,
        generated=_etc("nobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n"),
        changes=(
            "USER 65534",
            'CMD ["/usr/bin/redis-server", "--port", "6379", "--bind", "0.0.0.0", '
            '"--protected-mode", "no", "--save", "", "--appendonly", "no"]',
        ),
    )


def _pg_bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True):
        return candidate.parent
    raise ImageBuildError("cannot build a PostgreSQL image: no /usr/lib/postgresql/*/bin/postgres")


def postgres_recipe() -> ImageRecipe:
    """PostgreSQL from the host's server binaries; the cluster is made when the image is built."""
    bindir = _pg_bindir()
    version = bindir.parent.name
    # JIT pulls in LLVM (100 MB) and is turned off in the container; leave it out.
    modules = [p for p in sorted((bindir.parent / "lib").glob("*.so")) if "llvmjit" not in p.name]
    files = _with_libraries([bindir / "postgres", *modules])
    files.update(_tree(Path(f"/usr/share/postgresql/{version}")))
    files.update(_tree(Path("/usr/share/zoneinfo")))
    return ImageRecipe(
        kind="postgres",
        files=files,
        generated=_etc(f"postgres:x:{PG_UID}:{PG_UID}:postgres:/var/lib/postgresql:/nonexistent\n"),
        changes=(
            f"USER {PG_UID}",
            "ENV LANG=C",
            f'CMD ["{bindir}/postgres", "-D", "/var/lib/postgresql/data", '
            '"-c", "listen_addresses=*", "-c", "unix_socket_directories=", '
            '"-c", "fsync=off", "-c", "jit=off", "-c", "max_connections=200"]',
        ),
    )


def _initdb(workdir: Path) -> Path:
    """Make a trust-auth cluster under ``workdir`` with the host's initdb; return its data dir."""
    initdb = _pg_bindir() / "initdb"
    data = workdir / "data"
    cmd = [str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    cmd += ["--locale=C", "--no-sync"]
    if os.geteuid() == 0:
        # initdb refuses root; run it as the host's postgres user (the tar rewrites the owner).
        subprocess.run(["chown", "-R", "postgres", str(workdir)], check=True, timeout=30)
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    try:
        subprocess.run(cmd, check=True, capture_output=True, cwd="/", timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise ImageBuildError(f"initdb failed: {exc} {detail.decode(errors='replace')}") from exc
    # Clients come through Docker's port publishing, from the bridge's gateway address.
    (data / "pg_hba.conf").write_text(
        "local all all trust\nhost all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n"
    )
    return data


def _add(
    tar: tarfile.TarFile,
    inside: str,
    *,
    data: bytes | None = None,
    src: Path | None = None,
    uid: int = 0,
    mode: int = 0o644,
) -> None:
    info = tarfile.TarInfo(inside.lstrip("/"))
    info.uid = info.gid = uid
    if src is not None:
        st = src.stat()  # follows symlinks: the image gets the bytes, not a dangling link
        info.size, info.mode = st.st_size, st.st_mode & 0o7777
        with src.open("rb") as fh:
            tar.addfile(info, fh)
    else:
        payload = data or b""
        info.size, info.mode = len(payload), mode
        tar.addfile(info, io.BytesIO(payload))


def _dir(tar: tarfile.TarFile, inside: str, *, uid: int = 0, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(inside.lstrip("/"))
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
    tar.addfile(info)


def write_rootfs(recipe: ImageRecipe, out: Path) -> None:
    """Write the root file system of ``recipe`` as a tar at ``out``."""
    with tarfile.open(out, "w") as tar, tempfile.TemporaryDirectory() as work:
        _dir(tar, "/tmp", mode=0o1777)
        for inside, src in recipe.files.items():
            _add(tar, inside, src=src)
        for inside, payload in recipe.generated.items():
            _add(tar, inside, data=payload)
        if recipe.kind == "postgres":
            data = _initdb(Path(work))
            _dir(tar, "/var/lib/postgresql", uid=PG_UID)
            _dir(tar, "/var/lib/postgresql/data", uid=PG_UID, mode=0o700)
            for path in sorted(data.rglob("*")):
                inside = f"/var/lib/postgresql/data/{path.relative_to(data)}"
                if path.is_dir():
                    _dir(tar, inside, uid=PG_UID, mode=0o700)
                else:
                    _add(tar, inside, src=path, uid=PG_UID)


def ensure_image(client: Any, recipe: ImageRecipe) -> str:
    """Return the tag of ``recipe``'s image, importing it first unless it already exists."""
    import docker.errors

    tag = recipe.tag
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"cannot look up image {tag}: {exc}") from exc
    repository, _, version = tag.partition(":")
    with tempfile.TemporaryDirectory(prefix="reliability-image-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        try:
            write_rootfs(recipe, rootfs)
            changes = [*recipe.changes, f"LABEL {LABEL}={recipe.kind}"]
            client.api.import_image_from_file(
                str(rootfs), repository=repository, tag=version, changes=changes
            )
            client.images.get(tag)
        except (OSError, docker.errors.DockerException) as exc:
            raise ImageBuildError(f"cannot build image {tag}: {exc}") from exc
    return tag


RECIPES = {"postgres": postgres_recipe, "redis": redis_recipe}
