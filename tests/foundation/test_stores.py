"""One registry picks every module's store by URL scheme and says what is wrong when it cannot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_reliability import stores
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.idempotency import MemoryStore, SqlStore, store_from_url
from pytest_reliability.ops import KillSwitches


@pytest.fixture
def custom_scheme() -> Iterator[str]:
    """A scheme registered for both store kinds by the test, forgotten afterwards."""
    yield "reliability-test"
    stores.unregister_store("idempotency", "reliability-test")
    stores.unregister_store("kill_switch", "reliability-test")


@pytest.mark.parametrize("url", ["mysql://root@h/db", "etcd://h:2379", "not a url"])
def test_an_unknown_scheme_is_the_same_error_for_every_kind(url: str) -> None:
    with pytest.raises(ConfigurationError) as idem:
        store_from_url(url)
    with pytest.raises(ConfigurationError) as switch:
        KillSwitches.from_url(url, env={}, start=False)
    for error, kind in ((idem.value, "idempotency"), (switch.value, "kill_switch")):
        message = str(error)
        assert f"unsupported {kind} store URL scheme" in message
        # The known schemes, each with the extra it needs.
        for known in ("memory://", "sqlite://", "redis:// (pytest-reliability[redis])"):
            assert known in message
        assert "postgresql:// (pytest-reliability[postgres])" in message


@pytest.mark.parametrize("kind", ["idempotency", "kill_switch"])
def test_known_schemes_are_registered_by_each_module(kind: str) -> None:
    assert {"memory", "redis", "rediss", "unix", "sqlite", "postgresql", "postgres"} <= set(
        stores.known_schemes(kind)
    )


def test_a_driver_suffix_finds_its_backend(tmp_path: Path) -> None:
    store = store_from_url(f"sqlite+pysqlite:///{tmp_path / 'i.db'}")
    try:
        assert isinstance(store, SqlStore)
    finally:
        store.close()
    assert isinstance(store_from_url("MEMORY://"), MemoryStore)


def test_a_module_registers_a_scheme_and_both_kinds_use_it(custom_scheme: str) -> None:
    from pytest_reliability.ops.kill_switch._memory_store import MemoryStore as SwitchMemoryStore

    seen: list[tuple[str, dict[str, Any]]] = []

    def idempotency_factory(url: str, **options: Any) -> MemoryStore:
        seen.append((url, options))
        return MemoryStore()

    def switch_factory(url: str, **options: Any) -> SwitchMemoryStore:
        seen.append((url, options))
        return SwitchMemoryStore()

    stores.register_store("idempotency", custom_scheme, idempotency_factory)
    stores.register_store("kill_switch", custom_scheme, switch_factory)
    assert isinstance(store_from_url(f"{custom_scheme}://a"), MemoryStore)
    with KillSwitches.from_url(f"{custom_scheme}://b", namespace="ns", env={}, start=False) as ks:
        assert ks.store.kind == "memory"
    assert seen == [
        (f"{custom_scheme}://a", {}),
        (
            f"{custom_scheme}://b",
            {
                "namespace": "ns",
                "key_prefix": "",
                "channel": None,
                "durability": "require",
                "store_timeout": None,
            },
        ),
    ]
    assert f"{custom_scheme}://" in str(_unknown("idempotency"))


def _unknown(kind: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        stores.store_from_url(kind, "nothing-here://x")
    return info.value


def test_a_taken_scheme_is_not_silently_replaced(custom_scheme: str) -> None:
    def first(url: str) -> object:
        return "first"

    def second(url: str) -> object:
        return "second"

    stores.register_store("idempotency", custom_scheme, first)
    stores.register_store("idempotency", custom_scheme, first)  # the same again: a no-op
    with pytest.raises(ConfigurationError, match="already registered"):
        stores.register_store("idempotency", custom_scheme, second)
    assert stores.store_from_url("idempotency", f"{custom_scheme}://x") == "first"
    stores.register_store("idempotency", custom_scheme, second, replace=True)
    assert stores.store_from_url("idempotency", f"{custom_scheme}://x") == "second"


@pytest.mark.parametrize("scheme", ["", "Redis", "has space", "a://b", 3])
def test_a_malformed_scheme_is_refused(scheme: Any) -> None:
    with pytest.raises(ConfigurationError, match="scheme"):
        stores.register_store("idempotency", scheme, lambda url: None)


def test_a_url_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be a string"):
        stores.store_from_url("idempotency", b"memory://")  # type: ignore[arg-type]


def test_a_missing_extra_is_named_for_every_kind() -> None:
    script = (
        "import sys; sys.modules['redis'] = None; sys.modules['psycopg'] = None\n"
        "from pytest_reliability.errors import ConfigurationError\n"
        "from pytest_reliability.idempotency import store_from_url\n"
        "from pytest_reliability.ops import KillSwitches\n"
        "for build in (store_from_url, lambda u: KillSwitches.from_url(u, start=False)):\n"
        "    for url in ('redis://127.0.0.1:1/0', 'postgresql://u@127.0.0.1:1/db'):\n"
        "        try:\n            build(url)\n"
        "        except ConfigurationError as exc:\n            print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert len(lines) == 4, out.stdout + out.stderr
    assert "idempotency store needs redis: pip install 'pytest-reliability[redis]'" in lines[0]
    assert "pytest-reliability[postgres]" in lines[1]
    assert "kill_switch store needs redis: pip install 'pytest-reliability[redis]'" in lines[2]
    assert "pytest-reliability[postgres]" in lines[3]


def test_the_registry_exports_exactly_its_public_names() -> None:
    assert set(stores.__all__) == {
        "StoreBackend",
        "StoreFactory",
        "known_schemes",
        "register_standard_stores",
        "register_store",
        "store_backend",
        "store_from_url",
        "unregister_store",
        "url_scheme",
    }
    for name in stores.__all__:
        if name != "StoreFactory":  # a type alias: documented by the string below it
            assert getattr(stores, name).__doc__, name
