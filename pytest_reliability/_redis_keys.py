"""Redis key names that no choice of component values can make collide.

Every module that keeps state in Redis names its keys here. A key is the deployment's prefix
(verbatim: it is one operator-chosen constant per deployment, and ``SCAN {prefix}*`` must find
every key under it), a fixed kind, then each component length-prefixed as ``:{len}:{value}``.
Reading a key left to right, the length says exactly where each value ends, so two different
component tuples of the same kind can never spell the same key, whatever ``:`` or digits the
values contain (tenant ``acme:api.POST`` with operation ``x`` is not tenant ``acme`` with
operation ``api.POST:x``). Kinds never end in a digit and no kind is another kind followed by
``:``, so keys of different kinds cannot collide either.
"""

from __future__ import annotations

__all__ = ["glob_escape", "redis_key"]


def redis_key(prefix: str, kind: str, *parts: str) -> str:
    """Return ``{prefix}{kind}`` followed by ``:{len}:{part}`` for every part.

    ``kind`` is a constant of the calling module (``idem``, ``ks``...); it must be non-empty,
    without ``:`` and must not end in a digit.
    """
    if not kind or ":" in kind or kind[-1].isdigit():
        raise ValueError(f"Redis key kind {kind!r} must be non-empty, without ':', not end in 0-9")
    return prefix + kind + "".join(f":{len(part)}:{part}" for part in parts)


def glob_escape(text: str) -> str:
    """Escape ``text`` for a Redis ``SCAN MATCH`` / ``KEYS`` pattern (``*?[]\\`` are special)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
