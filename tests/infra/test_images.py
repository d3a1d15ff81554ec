"""Local images: named by a content hash, reused when present, refused clearly when unbuildable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pytest_reliability.chaos_infra as chaos_infra
from pytest_reliability.chaos_infra import ImageRecipe, docker_client, ensure_image, redis_recipe
from pytest_reliability.errors import DockerUnavailable, ImageBuildError


def _recipe(tmp_path: Path, content: bytes) -> ImageRecipe:
    binary = tmp_path / "server"
    binary.write_bytes(content)
    return ImageRecipe(kind="probe", files={"/usr/bin/server": binary}, changes=('CMD ["/x"]',))


def test_the_tag_is_a_content_hash(tmp_path: Path) -> None:
    first = _recipe(tmp_path, b"version 1").tag
    assert first == _recipe(tmp_path, b"version 1").tag
    assert first.startswith("pytest-reliability/probe:")
    assert _recipe(tmp_path, b"version 2").tag != first  # an upgraded binary: a new image


def test_a_missing_file_is_an_image_build_error(tmp_path: Path) -> None:
    recipe = ImageRecipe(kind="probe", files={"/usr/bin/server": tmp_path / "absent"})
    with pytest.raises(ImageBuildError, match="cannot build the probe image"):
        recipe.digest()


def test_no_redis_server_is_an_image_build_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ImageBuildError, match="no redis-server on this host"):
        redis_recipe()


@pytest.mark.docker
def test_a_second_build_reuses_the_image() -> None:
    try:
        client: Any = docker_client()
    except DockerUnavailable as exc:
        pytest.skip(f"containers: {exc.reason}")
    tag = ensure_image(client, redis_recipe())
    image_id = client.images.get(tag).id
    assert ensure_image(client, redis_recipe()) == tag
    assert client.images.get(tag).id == image_id  # found, not imported again


def test_all_lists_the_public_names() -> None:
    public = {name for name in dir(chaos_infra) if not name.startswith("_")}
    assert set(chaos_infra.__all__) == public - {"annotations"}  # the __future__ import
