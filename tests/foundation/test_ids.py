"""Deterministic ids: same seed and scope, same ids, in any process; never silently random."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from pytest_reliability import ids
from pytest_reliability.errors import ConfigurationError

_SCRIPT = """
import json
from pytest_reliability import ids
out = {}
for scope in ("tests/test_a.py::test_one", "tests/test_b.py::test_two"):
    with ids.id_scope(scope):
        out[scope] = [ids.new_correlation_id() for _ in range(3)] + [ids.new_id("audit-event")]
print(json.dumps(out))
"""


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ids.DETERMINISTIC_ENV, raising=False)
    monkeypatch.delenv(ids.SEED_ENV, raising=False)
    ids.reset_configuration()
    yield
    ids.reset_configuration()


def _run(env_extra: dict[str, str]) -> dict[str, list[str]]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in (ids.DETERMINISTIC_ENV, ids.SEED_ENV)}
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_two_processes_derive_the_same_ids() -> None:
    env = {ids.DETERMINISTIC_ENV: "true", ids.SEED_ENV: "42"}
    first, second = _run(env), _run(env)
    assert first == second
    flat = [i for seq in first.values() for i in seq]
    assert len(set(flat)) == len(flat), "scopes and kinds must never collide"
    for value in flat:
        assert uuid.UUID(value).version == 4


def test_another_seed_gives_other_ids() -> None:
    a = _run({ids.DETERMINISTIC_ENV: "1", ids.SEED_ENV: "1"})
    b = _run({ids.DETERMINISTIC_ENV: "1", ids.SEED_ENV: "2"})
    assert set(a["tests/test_a.py::test_one"]).isdisjoint(b["tests/test_a.py::test_one"])


def test_off_means_random() -> None:
    a = _run({ids.DETERMINISTIC_ENV: "false"})
    b = _run({})
    assert a != b


def test_order_of_scopes_does_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ids.DETERMINISTIC_ENV, "yes")

    def draw(scope: str) -> list[str]:
        with ids.id_scope(scope):
            return [ids.new_correlation_id() for _ in range(2)]

    a1, b1 = draw("a"), draw("b")
    b2, a2 = draw("b"), draw("a")
    assert (a1, b1) == (a2, b2)
    assert a1 != b1


def test_kinds_have_their_own_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ids.DETERMINISTIC_ENV, "on")
    with ids.id_scope("s"):
        first = ids.new_correlation_id()
    with ids.id_scope("s"):
        ids.new_id("audit-event")  # another kind in between changes nothing
        assert ids.new_correlation_id() == first


def test_default_seed_is_documented_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ids.DETERMINISTIC_ENV, "true")
    assert ids.current_seed() == ids.DEFAULT_SEED
    with ids.id_scope("x"):
        got = ids.new_correlation_id()
    assert got == str(ids.derive_uuid(ids.DEFAULT_SEED, "x", "correlation", 0))


def test_configure_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ids.DETERMINISTIC_ENV, "false")
    monkeypatch.setenv(ids.SEED_ENV, "5")
    ids.configure(seed=7, deterministic=True)
    assert ids.deterministic_ids_enabled()
    assert ids.current_seed() == 7
    with ids.id_scope("x"):
        assert ids.new_correlation_id() == str(ids.derive_uuid(7, "x", "correlation", 0))


@pytest.mark.parametrize("value", ["maybe", "2", "truthy", "enabled"])
def test_bad_deterministic_flag_raises(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ids.DETERMINISTIC_ENV, value)
    with pytest.raises(ConfigurationError, match=ids.DETERMINISTIC_ENV):
        ids.new_correlation_id()


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_bad_seed_raises(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ids.DETERMINISTIC_ENV, "true")
    monkeypatch.setenv(ids.SEED_ENV, value)
    with pytest.raises(ConfigurationError, match=ids.SEED_ENV):
        ids.new_correlation_id()


@pytest.mark.parametrize(("raw", "expected"), [("TRUE", True), (" 1 ", True), ("No", False)])
def test_flag_spellings(raw: str, expected: bool) -> None:
    assert ids.parse_bool("X", raw) is expected


def test_bad_configure_seed_raises() -> None:
    with pytest.raises(ConfigurationError):
        ids.configure(seed=-3)


def test_empty_scope_name_raises() -> None:
    with pytest.raises(ConfigurationError), ids.id_scope(""):
        pass


def test_correlation_scope_and_log_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("pytest_reliability.test")
    logger.addFilter(ids.CorrelationIdFilter())
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("outside")
            with ids.correlation_scope("cid-1") as cid:
                assert ids.current_correlation_id() == cid == "cid-1"
                logger.info("inside")
                with ids.correlation_scope() as fresh:
                    assert fresh != "cid-1"
                assert ids.current_correlation_id() == "cid-1"
        assert ids.current_correlation_id() is None
        assert [r.correlation_id for r in caplog.records] == ["-", "cid-1"]  # type: ignore[attr-defined]
    finally:
        logger.filters.clear()
