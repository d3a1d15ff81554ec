"""The tenant context: fail closed, nest, follow threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from pytest_reliability.errors import InvalidTenant, TenantRequired
from pytest_reliability.tenancy import (
    TENANT_ID_MAX_LENGTH,
    current_tenant,
    current_tenant_or_none,
    tenant_scope,
    validate_tenant_id,
)


def test_no_tenant_raises_rather_than_defaulting() -> None:
    with pytest.raises(TenantRequired, match="tenant_scope"):
        current_tenant()
    assert current_tenant_or_none() is None


def test_scope_sets_and_restores() -> None:
    with tenant_scope("acme") as tenant:
        assert tenant == "acme"
        assert current_tenant() == "acme"
    with pytest.raises(TenantRequired):
        current_tenant()


def test_nested_scopes_restore_the_outer_tenant() -> None:
    with tenant_scope("outer"):
        with tenant_scope("inner"):
            assert current_tenant() == "inner"
        assert current_tenant() == "outer"


def test_scope_is_restored_when_the_block_raises() -> None:
    with tenant_scope("outer"):
        with pytest.raises(RuntimeError), tenant_scope("inner"):
            raise RuntimeError("boom")
        assert current_tenant() == "outer"


def test_threads_with_a_copied_context_see_the_tenant_and_others_do_not() -> None:
    seen: dict[str, str | None] = {}

    def read(name: str) -> None:
        seen[name] = current_tenant_or_none()

    with tenant_scope("acme"):
        ctx = contextvars.copy_context()
        copied = threading.Thread(target=ctx.run, args=(read, "copied"))
        bare = threading.Thread(target=read, args=("bare",))
        copied.start()
        bare.start()
        copied.join()
        bare.join()
    assert seen == {"copied": "acme", "bare": None}


def test_threads_keep_their_own_tenants_apart() -> None:
    barrier = threading.Barrier(8)
    results: dict[int, str] = {}

    def work(i: int) -> None:
        with tenant_scope(f"tenant-{i}"):
            barrier.wait()
            results[i] = current_tenant()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"tenant-{i}" for i in range(8)}


def test_asyncio_tasks_inherit_and_isolate_the_tenant() -> None:
    async def child(expected: str) -> str:
        await asyncio.sleep(0)
        assert current_tenant() == expected
        with tenant_scope(f"{expected}-child"):
            await asyncio.sleep(0)
            return current_tenant()

    async def main() -> tuple[list[str], str]:
        with tenant_scope("acme"):
            inner = await asyncio.gather(child("acme"), child("acme"))
            return list(inner), current_tenant()

    inner, after = asyncio.run(main())
    assert inner == ["acme-child", "acme-child"]
    assert after == "acme"


@pytest.mark.parametrize(
    "bad",
    ["", " ", "a b", "-leading", "ten/ant", "é", "a" * (TENANT_ID_MAX_LENGTH + 1), "x\n"],
)
def test_invalid_tenant_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidTenant), tenant_scope(bad):
        pass
    assert current_tenant_or_none() is None


def test_non_string_tenant_is_refused() -> None:
    with pytest.raises(InvalidTenant, match="must be a str"):
        validate_tenant_id(42)


@pytest.mark.parametrize("good", ["a", "acme", "ACME_1", "org:42", "a.b-c", "9" * 64])
def test_valid_tenant_ids(good: str) -> None:
    assert validate_tenant_id(good) == good
