"""The compiled schema check is never more lenient than jsonschema on the same document."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_reliability.report import load_schema, violations
from pytest_reliability.report._fastcheck import compile_check

VALID: dict[str, Any] = {
    "schema_version": "1.0",
    "status": "failed",
    "run": {
        "id": "r1",
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:01.5Z",
        "duration_s": 1.5,
        "seed": 3,
        "deterministic_ids": True,
        "deterministic_uuid4": False,
        "complete": False,
        "interruption": {"kind": "worker_crash", "reason": "gw0 died"},
        "exit_code": 1,
        "workers": ["gw0"],
        "versions": {"python": "3.11", "pytest": "9", "plugin": "0.1", "xdist": None},
        "platform": {"system": "Linux", "release": "6", "machine": "x86_64", "implementation": "c"},
        "ci": {"provider": None, "commit": None, "branch": None},
        "required_categories": ["chaos"],
        "flaky_budget": 0,
    },
    "summary": {
        "total": 1,
        "passed": 0,
        "failed": 1,
        "skipped": 0,
        "xfailed": 0,
        "xpassed": 0,
        "error": 0,
        "flaky": 0,
        "collection_errors": 0,
    },
    "tests": [
        {
            "nodeid": "t.py::test",
            "outcome": "failed",
            "duration_s": 0.1,
            "categories": ["chaos"],
            "worker": "gw0",
            "attempts": [{"outcome": "failed", "duration_s": 0.1, "failure": "boom"}],
            "failure": "boom",
            "facts": {
                "chaos": {
                    "faults": [
                        {"target": "a.b", "kind": "exception", "trigger": "always", "fired": 1}
                    ],
                    "injected": 1,
                    "fired": 1,
                },
                "audit": {"events_by_action": {"x": 2}},
                "custom": {"anything": [1, 2]},
            },
        }
    ],
    "collection_errors": [{"nodeid": "u.py", "failure": "SyntaxError"}],
    "gates": [
        {"name": "no-failures", "status": "failed", "reasons": ["t failed"], "source": "builtin"}
    ],
    "sections": {"deploy": {"region": "eu"}},
}

CHECK = compile_check(load_schema())

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-2, 2)
    | st.sampled_from(["", "passed", "chaos", "Bad Cat", "2026-01-01T00:00:00Z", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


PATHS = _paths(VALID)[1:]


def test_the_report_schema_compiles_and_accepts_a_valid_report() -> None:
    assert CHECK is not None
    assert CHECK(VALID)
    assert violations(VALID) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), json_values, st.booleans())
def test_compiled_check_never_accepts_what_jsonschema_rejects(
    path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    document = copy.deepcopy(VALID)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    assert CHECK is not None
    if CHECK(document):
        assert violations(document) == [], (path, value)


LAZY_SCHEMA = {
    "type": "object",
    "properties": {
        "known": {"$ref": "#/$defs/known"},
        "odd": {"$ref": "#/$defs/odd"},
        "tree": {"$ref": "#/$defs/tree"},
    },
    "$defs": {
        "known": {"type": "integer", "minimum": 0},
        # A keyword the compiler does not know: this part can never be proven here.
        "odd": {"type": "string", "contentEncoding": "base64"},
        "tree": {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/tree"}}},
            "additionalProperties": False,
        },
    },
}


def test_parts_are_compiled_when_first_met_and_an_unknown_keyword_proves_nothing() -> None:
    check = compile_check(LAZY_SCHEMA)
    assert check is not None
    # A document that never reaches the odd part is proven; one that does is not (jsonschema
    # decides it), whichever order the parts are met in.
    assert check({"known": 3})
    assert not check({"known": -1})
    assert not check({"known": 3, "odd": "aGk="})
    assert check({"known": 4})
    # A part that refers to itself compiles once and checks every level.
    assert check({"tree": {"children": [{"children": []}, {}]}})
    assert not check({"tree": {"children": [{"children": [{"leaf": 1}]}]}})
    part = compile_check(LAZY_SCHEMA, "#/$defs/odd")
    assert part is not None
    assert not part("aGk=")
