"""The idempotency_check fixture and the checker behind it, proven with pytest inside pytest."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings

from pytest_reliability import strategies
from pytest_reliability.idempotency import (
    Delivery,
    IdempotencyChecker,
    IdempotencyEngine,
    RequestSequence,
    crash_point,
    validate_key,
)
from pytest_reliability.tenancy import tenant_scope

# The plugin under development elsewhere is kept out; the fixture module is loaded directly.
ARGS = (
    "-p",
    "no:reliability",
    "-p",
    "pytest_reliability.fixtures._idempotency",
    "-p",
    "no:cacheprovider",
)

CORRECT = """
import threading
from collections import Counter
from pytest_reliability.idempotency import IdempotencyEngine, crash_point
from pytest_reliability.tenancy import tenant_scope

def test_engine_backed_handler_is_exactly_once(idempotency_check):
    engine = IdempotencyEngine.from_url("memory://")
    effects = Counter()
    lock = threading.Lock()

    def handler(request):
        def charge(attempt):
            # The effect joins the completing transaction, so a crash before it lands undoes it.
            def apply(_handle):
                with lock:
                    effects[request["key"]] += 1
            attempt.defer(apply)
            crash_point()
            return {"charged": request["body"]}
        with tenant_scope("acme"):
            return engine.run(operation="billing.charge", key=request["key"],
                              payload=request["body"], handler=charge).response

    stats = idempotency_check(handler, effects=lambda key: effects[key], max_examples=40)
    assert stats.examples >= 40
    assert stats.duplicates_suppressed > 0
    assert stats.replays > 0
"""

NAIVE = """
from collections import Counter

def test_naive_handler(idempotency_check):
    effects = Counter()

    def handler(request):
        effects[request["key"]] += 1
        return {"charged": request["body"]}

    idempotency_check(handler, effects=lambda key: effects[key], max_examples=40)
"""

EFFECT_BEFORE_COMMIT = """
import threading
from collections import Counter
from pytest_reliability.idempotency import IdempotencyEngine, crash_point
from pytest_reliability.tenancy import tenant_scope

def test_effect_outside_the_transaction(idempotency_check):
    engine = IdempotencyEngine.from_url("memory://")
    effects = Counter()
    lock = threading.Lock()

    def handler(request):
        def charge(attempt):
            with lock:
                effects[request["key"]] += 1   # not deferred: survives a crash
            crash_point()
            return "ok"
        with tenant_scope("acme"):
            return engine.run(operation="billing.charge", key=request["key"],
                              payload=request["body"], handler=charge).response

    idempotency_check(handler, effects=lambda key: effects[key], max_examples=60)
"""


def test_non_idempotent_handler_fails_with_the_shrunk_minimal_sequence(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(NAIVE)
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*idempotency violated for request 0*: 2 effects*",
            "*minimal sequence:*",
            "*RequestSequence(1 requests, 2 steps):*",
            "*request 0: {}*",
            "*1. deliver(request 0)*",
            "*2. deliver(request 0)*",
        ]
    )
    result.stdout.fnmatch_lines(["*Falsifying example*"])


def test_effect_that_survives_a_crash_is_caught(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(EFFECT_BEFORE_COMMIT)
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*idempotency violated*2 effects*", "*minimal sequence:*"])
    # The effect survived an injected fault and the redelivery applied it again.
    result.stdout.re_match_lines([r".*\d\. (crash|fail_then_retry)\(request \d\).*"])


def test_correct_handler_passes_and_its_numbers_reach_the_report_facts(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
import json, pytest
from pytest_reliability._facts import facts_for

pytestmark = pytest.mark.idempotency

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield
    facts = facts_for(item)
    print("FACTS", json.dumps(facts.as_dict()), sorted(facts.categories))
"""
    )
    pytester.makepyfile(CORRECT)
    result = pytester.runpytest_subprocess(*ARGS, "-s")
    result.assert_outcomes(passed=1)
    line = next(x for x in result.stdout.lines if "FACTS" in x)
    assert '"idempotency": {"examples":' in line
    for name in ("requests", "keys", "duplicates_suppressed", "replays", "effects"):
        assert f'"{name}":' in line
    assert "['idempotency']" in line


def test_checker_counts_match_a_known_sequence() -> None:
    effects: Counter[str] = Counter()
    lock = threading.Lock()
    engine = IdempotencyEngine.from_url("memory://")

    def handler(request: Any) -> Any:
        def work(attempt: Any) -> Any:
            attempt.defer(lambda _h: effects.update([request["key"]]))
            crash_point()
            return "ok"

        with lock, tenant_scope("t"):
            return engine.run(operation="op", key=request["key"], payload={}, handler=work).response

    checker = IdempotencyChecker(handler, effects=lambda k: effects[k])
    sequence = RequestSequence(
        ({}, {}),
        (
            Delivery(0, "crash"),
            Delivery(0, "deliver"),
            Delivery(0, "lost_ack"),
            Delivery(1, "fail_then_retry"),
            Delivery(1, "deliver"),
        ),
    )
    checker.check_sequence(sequence, namespace="n")
    assert checker.stats.as_facts() == {
        "examples": 1,
        "requests": 6,
        "keys": 2,
        "duplicates_suppressed": 4,
        "replays": 1,
        "effects": 2,
    }


@settings(deadline=None)
@given(sequence=strategies.request_sequences())
def test_generated_sequences_always_hold_a_duplicate(sequence: RequestSequence) -> None:
    requests = [d.request for d in sequence.deliveries]
    repeated = len(set(requests)) < len(requests)
    assert repeated or any(d.kind in ("concurrent", "fail_then_retry") for d in sequence.deliveries)
    assert all(0 <= r < len(sequence.bodies) for r in requests)


@given(key=strategies.idempotency_keys())
def test_generated_keys_are_valid(key: str) -> None:
    assert validate_key(key) == key


def test_idempotency_check_on_the_sqlite_store_with_effects_in_the_transaction(
    idempotency_check: Any, sqlite_url: str
) -> None:
    import sqlalchemy as sa

    engine = IdempotencyEngine.from_url(sqlite_url)
    sql = engine.store.engine  # type: ignore[attr-defined]
    effects = sa.Table("effects", sa.MetaData(), sa.Column("key", sa.String(64)))
    effects.create(sql)

    def handler(request: Any) -> Any:
        def work(attempt: Any) -> Any:
            attempt.connection.execute(effects.insert().values(key=request["key"]))
            crash_point()
            return {"ok": request["body"]}

        with tenant_scope("acme"):
            key, body = request["key"], request["body"]
            return engine.run(operation="billing.op", key=key, payload=body, handler=work).response

    def count(key: str) -> int:
        with sql.connect() as conn:
            query = sa.select(sa.func.count()).where(effects.c.key == key)
            return int(conn.execute(query).scalar_one())

    stats = idempotency_check(handler, effects=count, max_examples=25)
    assert stats.examples >= 25
    assert 0 < stats.effects <= stats.keys
    engine.close()


def test_strategies_public_names_are_exactly_all() -> None:
    defined = {
        name
        for name, value in vars(strategies).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == strategies.__name__
    }
    assert set(strategies.__all__) == defined
