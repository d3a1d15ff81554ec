"""Build (or find) the suite's PostgreSQL and Redis images, and say how long it took.

No image registry is reachable from CI, so images are assembled from the host's installed
binaries (``pytest_reliability.chaos_infra``) and tagged by a content hash: a second run reuses
them. ``--cold`` removes the current tags first, to time a build from nothing.

    python -m harness.docker_images            # build what is missing; print tag, seconds
    python -m harness.docker_images --cold     # time a cold build (removes the tags first)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from pytest_reliability.chaos_infra import docker_client, ensure_image
from pytest_reliability.chaos_infra._images import RECIPES
from pytest_reliability.errors import DockerUnavailable


def build(kinds: list[str], cold: bool) -> list[tuple[str, str, str, float]]:
    """Ensure each image; return ``(kind, tag, "cold"|"warm", seconds)`` per kind."""
    client = docker_client()
    rows = []
    for kind in kinds:
        start = time.monotonic()
        recipe = RECIPES[kind]()
        tag = recipe.tag
        if cold:
            import docker.errors

            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
            start = time.monotonic()
            recipe = RECIPES[kind]()  # hash again: a cold build pays for it too
        existed = bool(client.images.list(name=tag))
        ensure_image(client, recipe)
        rows.append((kind, tag, "warm" if existed else "cold", time.monotonic() - start))
    return rows


def main(argv: list[str]) -> int:
    """Command-line entry point; exit status 1 with the reason when no image can be built."""
    parser = argparse.ArgumentParser(prog="python -m harness.docker_images")
    parser.add_argument("--kind", choices=sorted(RECIPES), action="append")
    parser.add_argument("--cold", action="store_true", help="remove the tags first, then build")
    args = parser.parse_args(argv)
    try:
        rows = build(args.kind or sorted(RECIPES), args.cold)
    except DockerUnavailable as exc:
        print(f"docker_images: {exc.reason}", file=sys.stderr)
        return 1
    for kind, tag, how, seconds in rows:
        print(f"{kind:9} {tag:45} {how} {seconds:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
