"""A compiled yes/no check for the report schemas, so writing a large report stays cheap.

jsonschema walks the schema for every value it checks, which costs seconds on a report of
thousands of tests. :func:`compile_check` turns a schema that uses only the keywords below into
nested closures that answer one question, "is this document valid?", in a single pass. It is
never more lenient than the schema: anything it cannot prove valid (including a keyword it does
not know, at compile time) goes to jsonschema, which gives the verdict and the error messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "$comment"})
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not handle."""


def _is_type(name: str) -> Check:
    checks: dict[str, Check] = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    }
    if name not in checks:
        raise Unsupported(f"type {name}")
    return checks[name]


def _date_time(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        return not isinstance(value, str)
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        if not pointer.startswith("#/"):
            raise Unsupported(f"$ref {pointer}")
        if pointer not in self.refs:
            target: Any = self.root
            for part in pointer[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            slot: list[Check] = []
            # Registered before compiling so recursive references resolve lazily.
            self.refs[pointer] = lambda v: slot[0](v)
            slot.append(self.compile(target))
        return self.refs[pointer]

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _always
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        checks = [
            self._keyword(key, arg)
            for key, arg in schema.items()
            if key not in _ANNOTATIONS and key not in ("properties", "additionalProperties")
        ]
        if "properties" in schema or "additionalProperties" in schema:
            checks.append(self._object(schema))
        return _all_of(checks)

    def _keyword(self, key: str, arg: Any) -> Check:
        if key == "$ref":
            return self.ref(arg)
        if key == "type":
            return _any_of([_is_type(t) for t in ([arg] if isinstance(arg, str) else arg)])
        if key == "oneOf":
            return _one_of([self.compile(option) for option in arg])
        if key == "items":
            return _items(self.compile(arg))
        if key == "format" and arg == "date-time":
            return _date_time
        if key == "uniqueItems" and arg is True:
            return _unique
        factory = _SIMPLE.get(key)
        if factory is None:
            raise Unsupported(key)
        return factory(arg)

    def _object(self, schema: Mapping[str, Any]) -> Check:
        props = {k: self.compile(s) for k, s in schema.get("properties", {}).items()}
        extra_schema = schema.get("additionalProperties", True)
        extra: Check | None = (
            None
            if extra_schema is True
            else ((lambda v: False) if extra_schema is False else self.compile(extra_schema))
        )

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                prop = props.get(key)
                if prop is not None:
                    if not prop(item):
                        return False
                elif extra is not None and not extra(item):
                    return False
            return True

        return check


def _always(_value: Any) -> bool:
    return True


def _never(_value: Any) -> bool:
    return False


def _all_of(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def check(value: Any) -> bool:
        for one in frozen:  # noqa: SIM110 - a loop skips a generator per value on the hot path
            if not one(value):
                return False
        return True

    return check


def _any_of(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def check(value: Any) -> bool:
        for one in frozen:  # noqa: SIM110 - a loop skips a generator per value on the hot path
            if one(value):
                return True
        return False

    return check


def _one_of(checks: list[Check]) -> Check:
    return lambda v: sum(1 for c in checks if c(v)) == 1


def _items(item: Check) -> Check:
    def check(value: Any) -> bool:
        if isinstance(value, list):
            for one in value:
                if not item(one):
                    return False
        return True

    return check


def _unique(value: Any) -> bool:
    if not isinstance(value, list):
        return True
    return all(isinstance(x, str) for x in value) and len(set(value)) == len(value)


def _enum(allowed: list[Any]) -> Check:
    pairs = [(type(a), a) for a in allowed]
    return lambda v: (type(v), v) in pairs


def _required(names: list[str]) -> Check:
    wanted = frozenset(names)
    return lambda v: not isinstance(v, dict) or wanted <= v.keys()


def _min_items(n: int) -> Check:
    return lambda v: not isinstance(v, list) or len(v) >= n


def _minimum(m: float) -> Check:
    return lambda v: isinstance(v, bool) or not isinstance(v, int | float) or v >= m


def _min_length(n: int) -> Check:
    return lambda v: not isinstance(v, str) or len(v) >= n


def _pattern(expression: str) -> Check:
    search = re.compile(expression).search
    return lambda v: not isinstance(v, str) or search(v) is not None


_SIMPLE: dict[str, Callable[[Any], Check]] = {
    "enum": _enum,
    "required": _required,
    "minItems": _min_items,
    "minimum": _minimum,
    "minLength": _min_length,
    "pattern": _pattern,
}


def compile_check(schema: Mapping[str, Any]) -> Check | None:
    """Return a fast validity check for ``schema``, or ``None`` if it uses unknown keywords."""
    try:
        return _Compiler(schema).compile(dict(schema))
    except Unsupported:
        return None
