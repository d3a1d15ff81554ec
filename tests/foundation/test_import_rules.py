"""The floors of docs/architecture.md, checked over the source tree with the ast module.

Every ``import`` of the package (module level or inside a function) and every name a package
``__init__`` loads lazily (its ``_HOMES`` table) must point at the importer's own floor or one
below. Type-only imports (under ``if TYPE_CHECKING:``) follow the same rule, except for the
exceptions listed here, each with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_reliability"

# Bottom to top; a unit (a top-level module or subpackage) may import its own floor and below.
FLOORS: tuple[frozenset[str], ...] = (
    frozenset(
        {"errors", "_version", "_lazy", "protocols", "clock", "stores", "_canonical_json"}
        | {"_redis_keys", "_redis_server", "_schemas", "_drill_outcome"}
    ),
    frozenset({"db", "tenancy", "ids", "_sql_bounds"}),
    frozenset({"audit"}),
    frozenset({"idempotency", "ops", "security"}),  # the modules: siblings never import each other
    frozenset({"testing", "strategies", "report"}),
    frozenset({"_facts", "_plugin_settings", "_session_drills", "fixtures", "hookspecs"})
    | {"chaos_infra"},
    frozenset({"plugin", "cli", "tables", "__main__", "__init__"}),
)
MODULES_FLOOR = 3
FLOOR = {unit: n for n, units in enumerate(FLOORS) for unit in units}

# (importer unit, imported unit): why a type-only or lazy import may point up.
EXCEPTIONS = {
    ("protocols", "audit"): "type-only: the AuditSink protocol names AuditEvent in a signature",
    ("idempotency", "testing"): "the checker's old public path, loaded lazily, for compatibility",
}


@dataclass(frozen=True)
class Edge:
    source: str  # file, relative to the package
    line: int
    importer: str
    imported: str
    type_only: bool
    lazy: bool = False


def _unit(parts: list[str]) -> str:
    """The floor unit of a dotted module path inside the package (``["ops", "rbac"]`` -> ops)."""
    return parts[0] if parts else "__init__"


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _targets(node: ast.AST, here: list[str]) -> Iterator[list[str]]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name.split(".")
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolve against the importing module's package
            base = here[: len(here) - node.level]
            module = base + (node.module.split(".") if node.module else [])
        else:
            module = (node.module or "").split(".")
        yield module
        for alias in node.names:
            yield [*module, alias.name]


def edges(package: Path = PACKAGE) -> Iterator[Edge]:
    """Every import of the package by the package, as (importer unit, imported unit)."""
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        here = ["pytest_reliability", *rel.with_suffix("").parts]
        importer = (
            _unit(here[1:]) if rel.name != "__init__.py" or len(rel.parts) > 1 else "__init__"
        )
        tree = ast.parse(path.read_text(), str(path))
        typed = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node, here):
                if target[0] == "pytest_reliability" and len(target) > 1:
                    imported = _unit(target[1:])
                    yield Edge(str(rel), node.lineno, importer, imported, node.lineno in typed)
        # The lazy tables of package __init__s: absolute homes are imports too.
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "_HOMES" for t in node.targets)
                and isinstance(node.value, ast.Dict)
            ):
                for value in node.value.values:
                    if isinstance(value, ast.Constant) and str(value.value).startswith(
                        "pytest_reliability."
                    ):
                        imported = _unit(str(value.value).split(".")[1:])
                        yield Edge(str(rel), node.lineno, importer, imported, False, lazy=True)


ALL_EDGES = [e for e in edges() if e.importer != e.imported]


def violations(found: list[Edge]) -> list[str]:
    """The edges that point up the floors (or across the modules' floor), exceptions aside."""
    wrong: set[str] = set()
    for e in found:
        if e.importer == e.imported:
            continue
        up = FLOOR[e.imported] > FLOOR[e.importer]
        sideways = FLOOR[e.importer] == FLOOR[e.imported] == MODULES_FLOOR
        excused = (e.type_only or e.lazy) and (e.importer, e.imported) in EXCEPTIONS
        if (up or sideways) and not excused:
            wrong.add(f"{e.source}:{e.line}: {e.importer} imports {e.imported}")
    return sorted(wrong)


def test_every_unit_has_a_floor() -> None:
    units = {e.importer for e in ALL_EDGES} | {e.imported for e in ALL_EDGES}
    units |= {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py"}
    units |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert units - FLOOR.keys() == set(), "put the new module on a floor in FLOORS and the docs"


def test_imports_point_down_the_floors() -> None:
    assert violations(ALL_EDGES) == []


@pytest.mark.parametrize(
    "forbidden", ["ops", "idempotency", "security", "fixtures", "plugin", "strategies"]
)
def test_the_base_floor_never_reaches_up(forbidden: str) -> None:
    base = {"db", "audit", "tenancy", "ids"}
    offenders = [
        f"{e.source}:{e.line}" for e in ALL_EDGES if e.importer in base and e.imported == forbidden
    ]
    assert offenders == []


def test_every_exception_is_still_needed() -> None:
    used = {(e.importer, e.imported) for e in ALL_EDGES}
    assert set(EXCEPTIONS) <= used, "drop the exceptions the code no longer needs"


def test_the_rules_catch_upward_imports_of_every_form(tmp_path: Path) -> None:
    tree = tmp_path / "pytest_reliability"
    (tree / "db").mkdir(parents=True)
    (tree / "db" / "__init__.py").write_text("")
    (tree / "db" / "_bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from .. import ops\n"  # relative, up
        "if TYPE_CHECKING:\n    from pytest_reliability.fixtures import x\n"  # type-only, up
        "def f():\n    import pytest_reliability.plugin\n"  # inside a function, up
        "from pytest_reliability.errors import E\n"  # down: fine
    )
    (tree / "ops").mkdir()
    (tree / "ops" / "__init__.py").write_text(
        "from pytest_reliability.idempotency import Scope\n"  # sideways on the modules' floor
        "_HOMES = {'A': 'pytest_reliability.tables', 'B': '._b'}\n"  # lazy, up
    )
    found = violations(list(edges(tree)))
    assert found == [
        "db/_bad.py:2: db imports ops",
        "db/_bad.py:4: db imports fixtures",
        "db/_bad.py:6: db imports plugin",
        "ops/__init__.py:1: ops imports idempotency",
        "ops/__init__.py:2: ops imports tables",
    ]
