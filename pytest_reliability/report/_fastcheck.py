"""A compiled yes/no check for the report schemas, so writing a large report stays cheap.

jsonschema walks the schema for every value it checks, which costs seconds on a report of
thousands of tests. :func:`compile_check` turns a schema that uses only the keywords below into
nested closures that answer one question, "is this document valid?", in a single pass. It is
never more lenient than the schema: anything it cannot prove valid (including a keyword it does
not know, at compile time) goes to jsonschema, which gives the verdict and the error messages.

:func:`is_strict_json` answers the other question a writer has: can this document be written as
JSON exactly as it is, with no value turned into text or refused? A document proven both ways is
encoded by the fast encoder; anything else takes the standard library's path and its errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Check = Callable[[Any], bool]

_INF = math.inf
_SCALARS = frozenset({str, int, bool, type(None)})
_MAX_INT = 2**63

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
        # Finite: NaN and the infinities are numbers to jsonschema but are not JSON.
        "number": lambda v: (
            isinstance(v, int | float) and not isinstance(v, bool) and -_INF < v < _INF
        ),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    }
    if name not in checks:
        raise Unsupported(f"type {name}")
    return checks[name]


def _type(arg: str | list[str]) -> Check:
    names = [arg] if isinstance(arg, str) else list(arg)
    for name in names:
        _is_type(name)  # raises Unsupported for a name it does not know
    if len(names) == 1:
        return _is_type(names[0])
    simple = tuple(t for n, t in (("object", dict), ("array", list), ("string", str)) if n in names)
    null, boolean = "null" in names, "boolean" in names
    number, integer = "number" in names, "integer" in names or "number" in names

    def check(value: Any) -> bool:
        # One pass over a union such as ["string", "null"], as _is_type would check each.
        if value is None:
            return null
        if isinstance(value, bool):
            return boolean
        if isinstance(value, int):
            return integer
        if isinstance(value, float):
            return number and -_INF < value < _INF
        return isinstance(value, simple)

    return check


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
        """Return the check of the part at ``pointer``, compiled when first asked to check.

        Most reports hold few of the schema's parts (no drills, no facts, and the tests of
        the plugin's own fast path are not walked at all): compiling every part up front
        cost more than checking a run of a thousand tests. A part that turns out to use a
        keyword this compiler does not know proves nothing (its check answers False), so
        jsonschema decides.
        """
        if not pointer.startswith("#/"):
            raise Unsupported(f"$ref {pointer}")
        found = self.refs.get(pointer)
        if found is None:
            target: Any = self.root
            for part in pointer[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            found = self.refs[pointer] = self._lazy(pointer, target)
        return found

    def _lazy(self, pointer: str, target: Any) -> Check:
        slot: list[Check] = []

        def check(value: Any) -> bool:
            if not slot:
                try:
                    compiled = self.compile(target)
                except (Unsupported, KeyError, TypeError, ValueError):
                    compiled = _never
                slot.append(compiled)
                # References met from now on call the check itself, one call fewer per value.
                self.refs[pointer] = compiled
            return slot[0](value)

        return check

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return is_strict_json
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        keywords = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
        # The shapes a report is made of become one closure each: every call saved is paid
        # once per value of a report of thousands of tests.
        merged = self._merged(keywords)
        if merged is not None:
            return merged
        checks = [
            self._keyword(key, arg)
            for key, arg in keywords.items()
            if key not in ("properties", "additionalProperties")
        ]
        if "properties" in keywords or "additionalProperties" in keywords:
            checks.append(self._object(keywords))
        elif not keywords.keys() & {"$ref", "oneOf"}:
            # Nothing here walks into a container the value may be: prove it is JSON.
            checks.append(is_strict_json)
        return _all_of(checks)

    def _merged(self, keywords: Mapping[str, Any]) -> Check | None:
        """Return one check for a typed object, array, number or string schema, else None."""
        kind = keywords.get("type")
        rest = keywords.keys() - {"type"}
        if kind == "object" and rest <= {"properties", "additionalProperties", "required"}:
            return self._object(keywords, must_be_object=True)
        if kind == "array" and rest <= {"items", "minItems", "uniqueItems"}:
            unique = keywords.get("uniqueItems", False)
            if unique not in (True, False):
                return None
            item = self.compile(keywords["items"]) if "items" in keywords else is_strict_json
            return _array(item, int(keywords.get("minItems", 0)), bool(unique))
        if kind in ("number", "integer") and rest in ({"minimum"}, {"minimum", "maximum"}):
            return _bounded(kind == "integer", keywords["minimum"], keywords.get("maximum"))
        if kind == "string" and len(rest) == 1:
            (key,) = rest
            if key == "minLength":
                least = int(keywords[key])
                return lambda v: isinstance(v, str) and len(v) >= least
            if key == "pattern":
                search = re.compile(keywords[key]).search
                return lambda v: isinstance(v, str) and search(v) is not None
            if key == "format" and keywords[key] == "date-time":
                return lambda v: isinstance(v, str) and _date_time(v)
        return None

    def _keyword(self, key: str, arg: Any) -> Check:
        if key == "$ref":
            return self.ref(arg)
        if key == "type":
            return _type(arg)
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

    def _object(self, schema: Mapping[str, Any], *, must_be_object: bool = False) -> Check:
        """Check properties and additional properties; with ``must_be_object``, also the type
        ``object`` and ``required`` (the keywords of a ``{"type": "object", ...}`` schema)."""
        props = {k: self.compile(s) for k, s in schema.get("properties", {}).items()}
        extra_schema = schema.get("additionalProperties", True)
        # Properties the schema leaves open are still walked: they must be JSON as they are.
        extra: Check = (lambda v: False) if extra_schema is False else self.compile(extra_schema)
        wanted = frozenset(schema.get("required", ()) if must_be_object else ())
        if must_be_object and not isinstance(schema.get("required", []), list):
            raise Unsupported("required")

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return not must_be_object
            if wanted and not wanted <= value.keys():
                return False
            for key, item in value.items():
                prop = props.get(key)
                if prop is not None:
                    if not prop(item):
                        return False
                elif not extra(item):
                    return False
            return True

        return check


def is_strict_json(value: Any) -> bool:
    """Whether ``value`` is JSON exactly as it is: nothing a writer would convert or refuse.

    Text, booleans, null, integers within 64 bits, finite floats, lists and tuples of such, and
    dicts with text keys. A lone surrogate in text is allowed here; the writer escapes it.
    """
    kind = type(value)
    if kind in _SCALARS:
        if kind is not int:
            return True
        integer: int = value
        return -_MAX_INT <= integer < _MAX_INT
    if kind is float:
        number: float = value
        return -_INF < number < _INF
    try:
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str or not is_strict_json(item):
                    return False
            return True
        if kind is list or kind is tuple:
            for item in value:  # noqa: SIM110 - a loop skips a generator per value
                if not is_strict_json(item):
                    return False
            return True
    except RecursionError:  # nested deeper than any writer goes: not proven
        return False
    return False


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


def _array(item: Check, least: int, unique: bool) -> Check:
    def check(value: Any) -> bool:
        if not isinstance(value, list) or len(value) < least:
            return False
        if unique and not _unique(value):
            return False
        for one in value:  # noqa: SIM110 - a loop skips a generator per value on the hot path
            if not item(one):
                return False
        return True

    return check


def _bounded(integer: bool, least: float, most: float | None) -> Check:
    kinds: tuple[type[int] | type[float], ...] = (int,) if integer else (int, float)
    if most is None:

        def check(value: Any) -> bool:
            # bool is an int, but not a JSON number.
            return (
                isinstance(value, kinds) and not isinstance(value, bool) and least <= value < _INF
            )

        return check

    def bounded(value: Any) -> bool:
        return (
            isinstance(value, kinds)
            and not isinstance(value, bool)
            and least <= value <= most
            and value < _INF
        )

    return bounded


def _unique(value: Any) -> bool:
    if not isinstance(value, list):
        return True
    return all(isinstance(x, str) for x in value) and len(set(value)) == len(value)


def _enum(allowed: list[Any]) -> Check:
    if all(type(a) is str for a in allowed):
        strings = frozenset(allowed)
        return lambda v: type(v) is str and v in strings
    pairs = [(type(a), a) for a in allowed]
    return lambda v: (type(v), v) in pairs


def _required(names: list[str]) -> Check:
    wanted = frozenset(names)
    return lambda v: not isinstance(v, dict) or wanted <= v.keys()


def _min_items(n: int) -> Check:
    return lambda v: not isinstance(v, list) or len(v) >= n


def _minimum(m: float) -> Check:
    return lambda v: isinstance(v, bool) or not isinstance(v, int | float) or m <= v < _INF


def _maximum(m: float) -> Check:
    return lambda v: isinstance(v, bool) or not isinstance(v, int | float) or -_INF < v <= m


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
    "maximum": _maximum,
    "minLength": _min_length,
    "pattern": _pattern,
}


class CompiledSchema:
    """The checks of one schema, compiled once each: the whole schema's and its parts'."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._compiler = _Compiler(schema)
        self._checks: dict[str, Check | None] = {}

    def check(self, pointer: str = "#") -> Check | None:
        """Return the check of the part at ``pointer`` (``#`` for all, ``#/$defs/facts``), or
        ``None`` if that part uses keywords this compiler does not know."""
        if pointer not in self._checks:
            try:
                if pointer == "#":
                    found = self._compiler.compile(dict(self._compiler.root))
                else:
                    # The parts a whole-schema compile went through are shared, not compiled again.
                    found = self._compiler.ref(pointer)
            except (Unsupported, KeyError, TypeError):
                found = None
            self._checks[pointer] = found
        return self._checks[pointer]


def compile_check(schema: Mapping[str, Any], pointer: str = "#") -> Check | None:
    """Return a fast check for ``schema``, or ``None`` if it uses keywords this does not know.

    The check answers True only for a value that is valid and strict JSON (:func:`is_strict_json`
    everywhere). ``pointer`` (``#/$defs/facts``) compiles the check of one part of the schema.
    """
    return CompiledSchema(schema).check(pointer)
