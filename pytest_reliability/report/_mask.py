"""Masking secrets in the report and its summaries, as CI systems mask registered secrets.

What is masked, in every string of the report (node ids, failure texts, facts, gate reasons,
sections, keys included) and of the summaries:

* the value of every environment variable whose name looks secret (:data:`SECRET_NAME`: ``TOKEN``,
  ``SECRET``, ``PASSWORD``, ``API_KEY``, ``PRIVATE_KEY``, ``CREDENTIAL``, ``DATABASE_URL``
  anywhere in the name; ``KEY``, ``AUTH``, ``PASS``, ``DSN``, ``SESSION`` as a word of it), when
  the value is at least
  :data:`MIN_SECRET_LENGTH` characters long (shorter values such as ``1`` or ``true`` would mask
  unrelated text);
* every match of the user's patterns (``--reliability-redact=REGEX``, ini
  ``reliability_redact``, ``report summary --redact``).

Each is replaced by :data:`MASK`. The common case costs one substring search per secret over the
encoded report: the document is walked only when a secret occurs in it or patterns were given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, final

MASK = "***"
"""What a masked value becomes."""
MIN_SECRET_LENGTH = 6
"""Shortest environment value that is masked."""
SECRET_NAME = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY|SIGNING_?KEY"
    r"|DATABASE_URL|CONNECTION_STRING"
    r"|(?:^|_)(?:KEYS?|AUTH|AUTHORIZATION|PASS|PWD|CREDS|COOKIES?|SESSION|DSN|DB_URL)(?:_|$)",
    re.IGNORECASE,
)
"""An environment variable name that looks secret: a strong word anywhere in it (``PGPASSWORD``),
a weak one (``KEY``, ``AUTH``, ``PASS``, ``DSN``, ...) as a whole ``_``-separated word."""
_NOT_SECRET = frozenset({"PWD", "OLDPWD"})  # the shell's working directories


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Return the values of ``environ`` to mask, longest first (so none hides a longer one)."""
    found = {
        value
        for name, value in environ.items()
        if name.upper() not in _NOT_SECRET
        and len(value) >= MIN_SECRET_LENGTH
        and SECRET_NAME.search(name)
    }
    return sorted(found, key=lambda v: (-len(v), v))


def compile_patterns(patterns: Iterable[str], where: str) -> list[re.Pattern[str]]:
    """Compile the user's patterns; raise ValueError naming ``where`` and the bad pattern."""
    compiled = []
    for pattern in patterns:
        if not pattern:
            continue
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"{where}: {pattern!r} is not a regular expression: {exc}") from None
    return compiled


@final
class Masker:
    """Masks secret values and pattern matches in text and in whole documents."""

    __slots__ = ("_escaped", "_patterns", "_values")

    def __init__(self, values: Iterable[str] = (), patterns: Iterable[re.Pattern[str]] = ()):
        self._values = tuple(values)
        self._patterns = tuple(patterns)
        # How each value reads inside the encoded JSON, for the cheap check on the payload.
        self._escaped = tuple(
            form.encode("utf-8", "backslashreplace")
            for v in self._values
            for form in {v, json.dumps(v, ensure_ascii=False)[1:-1], json.dumps(v)[1:-1]}
        )

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], patterns: Iterable[re.Pattern[str]] = ()
    ) -> Masker:
        """Return a masker for the secret-looking variables of ``environ`` and ``patterns``."""
        return cls(secret_values(environ), patterns)

    def __bool__(self) -> bool:
        return bool(self._values or self._patterns)

    def text(self, value: str) -> str:
        """Return ``value`` with every secret masked."""
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, MASK)
        for pattern in self._patterns:
            value = pattern.sub(MASK, value)
        return value

    def needed(self, encoded: bytes) -> bool:
        """Whether the encoded document may hold something to mask."""
        return bool(self._patterns) or any(form in encoded for form in self._escaped)

    def document(self, value: Any) -> Any:
        """Return a copy of a JSON value with every string (and key) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.document(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.document(v) for v in value]
        return value
