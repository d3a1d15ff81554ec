"""Canonical JSON: the one encoding that audit hashes and idempotency fingerprints are taken over.

The encoding is JSON with object keys sorted, no whitespace (``,`` and ``:``), non-ASCII text
written as itself (not ``\\u`` escapes) and then UTF-8, NaN and the infinities refused. Two
floors hash it: the audit chain (every stored event's hash) and the idempotency engine (every
stored request fingerprint). A change to any byte it produces would make old audit logs fail to
verify and old idempotency keys mismatch their retries, so ``tests/foundation/
test_canonical_json.py`` pins the SHA-256 of a fixed event and a fixed payload.

Text that UTF-8 cannot hold (a lone surrogate such as ``"\\ud800"``, which ``json.loads`` happily
produces from ``"\\\\ud800"``) is refused with :class:`ValueError` here, before anything is
hashed or stored, rather than later as a :class:`UnicodeEncodeError` from deep in a store.

This module sits on the base floor: it imports nothing from the package, and callers turn its
:class:`TypeError` and :class:`ValueError` into their own typed errors.
"""

from __future__ import annotations

import json
from json.encoder import (  # type: ignore[attr-defined]  # CPython's C encoder, see below
    c_make_encoder,
    encode_basestring,
)
from typing import Any

__all__ = ["canonical_array", "canonical_bytes", "canonical_json"]

# Built once: json.dumps with arguments builds a new encoder on every call.
_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"text holds a lone surrogate {text[exc.start]!r} at position {exc.start}, "
            "which UTF-8 (and so canonical JSON) cannot encode"
        ) from None


def canonical_json(value: Any) -> str:
    """Return ``value`` as canonical JSON text (sorted keys, no whitespace, no NaN).

    Raises :class:`TypeError` for a value JSON cannot hold, :class:`ValueError` for NaN, the
    infinities, a lone surrogate or a circular reference, :class:`RecursionError` for nesting
    deeper than the interpreter allows.
    """
    text = _encoder.encode(value)
    if not text.isascii():
        # Only non-ASCII text can hold a surrogate; the check is skipped for the common case.
        _utf8(text)
    return text


def canonical_bytes(value: Any) -> bytes:
    """Return ``value`` as canonical JSON encoded in UTF-8: the bytes that are hashed.

    Raises as :func:`canonical_json` does.
    """
    return _utf8(_encoder.encode(value))


def _reject(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON scalar")


# The C encoder made once, with the settings of ``_encoder`` minus key sorting (an array of
# scalars has no keys, so the output is byte-identical). ``JSONEncoder.encode`` builds a new C
# encoder on every call, which costs more than encoding a short row; the audit chain hashes one
# row per event on every verification, so this one call decides its throughput. Measured in
# benchmarks/canonical_json.py (see benchmarks/README.md).
_c_array_encoder = (
    c_make_encoder(None, _reject, encode_basestring, None, ":", ",", False, False, False)
    if c_make_encoder is not None
    else None
)


def canonical_array(values: list[Any]) -> bytes:
    """Return a list of JSON scalars (str, int, float, bool, None) as canonical UTF-8 JSON.

    The fast path for the audit chain's rows: the result equals ``canonical_bytes(values)``.
    Other types raise :class:`TypeError`, a lone surrogate :class:`ValueError`. Nested objects
    are not key-sorted on this path, which is why it takes scalars only.
    """
    if _c_array_encoder is None:  # pragma: no cover - interpreters without the C encoder
        return canonical_bytes(values)
    return _utf8("".join(_c_array_encoder(values, 0)))
