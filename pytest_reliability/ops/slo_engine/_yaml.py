"""YAML with line numbers, and the optional imports of the ``slo`` extra.

PyYAML and ``prometheus-client`` come with ``pip install 'pytest-reliability[slo]'``; evaluating
an SLO needs neither, so they are imported only where a spec, a rule file or a scrape is read.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType
from typing import Any

from pytest_reliability.errors import ConfigurationError, SlothSpecError


def require(module: str) -> ModuleType:
    """Import ``module`` of the ``slo`` extra, or raise ConfigurationError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"{module} is missing: pip install 'pytest-reliability[slo]'"
        ) from None


class Mapping_(dict[Any, Any]):
    """A mapping that remembers its own line and the line of each key."""

    line: int = 0
    lines: dict[Any, int]


class Sequence_(list[Any]):
    """A list that remembers its own line and the line of each item."""

    line: int = 0
    lines: list[int]


@cache
def _loader() -> Any:
    yaml = require("yaml")

    class Loader(yaml.SafeLoader):  # type: ignore[name-defined,misc]
        """SafeLoader whose mappings and sequences carry line numbers; duplicate keys refused."""

    def construct_map(loader: Any, node: Any) -> Mapping_:
        loader.flatten_mapping(node)
        data = Mapping_()
        data.line = node.start_mark.line + 1
        data.lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise SlothSpecError(f"key {key!r} is not a string", line=line, field=str(key))
            if key in data:
                raise SlothSpecError("duplicate key", line=line, field=key)
            data[key] = loader.construct_object(value_node, deep=True)
            data.lines[key] = line
        return data

    def construct_seq(loader: Any, node: Any) -> Sequence_:
        data = Sequence_(loader.construct_object(child, deep=True) for child in node.value)
        data.line = node.start_mark.line + 1
        data.lines = [child.start_mark.line + 1 for child in node.value]
        return data

    Loader.add_constructor("tag:yaml.org,2002:map", construct_map)
    Loader.add_constructor("tag:yaml.org,2002:seq", construct_seq)
    return Loader


def load_marked(text: str) -> object:
    """Parse YAML with the safe constructors; mappings and lists carry their line numbers.

    Malformed YAML is a :class:`~pytest_reliability.errors.SlothSpecError` with its line.
    """
    yaml = require("yaml")
    try:
        return yaml.load(text, Loader=_loader())  # a SafeLoader subclass: safe_load's types only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise SlothSpecError(f"not valid YAML: {problem}", line=line, field="spec") from None
    except yaml.YAMLError as exc:
        raise SlothSpecError(f"not valid YAML: {exc}", line=None, field="spec") from None
