"""Redaction of secrets from audit details before anything is hashed or stored.

Two rules, applied at any depth of mappings and lists:

* **Secret keys.** A key is normalised before it is matched: camelCase and digit boundaries split
  (``privateKey`` -> ``private_key``, ``XAuthToken`` -> ``x_auth_token``), lower-cased, every run of
  other characters read as ``_``. It is secret when one of its words is in
  :data:`SECRET_KEY_WORDS` (``pwd``, ``auth``, ``jwt``, ``dsn``...), two adjacent words form a
  pair in :data:`SECRET_KEY_PAIRS` (``access_key``, ``session_id``, ``database_url``...), or the
  words joined without separators contain one of :data:`SECRET_KEY_PARTS` (``password``,
  ``apikey``, ``accesstoken``...). Its value, whatever its type, becomes :data:`REDACTED`; the key
  stays, so the trail still shows that a secret was present.
* **Secret-shaped text.** In every other string (a kill-switch ``reason``, an ``error`` message,
  any free text), each match of :data:`SECRET_VALUE_PATTERNS` is replaced: bearer and basic
  credentials, passwords in URLs, PEM private keys, JWTs, GitHub, GitLab, Slack, AWS, Stripe,
  Google, npm and PyPI tokens, and ``name=value`` / ``name: value`` pairs whose name is a secret
  key by the first rule. The rest of the text is kept, so a reason stays readable.

Extend both with :func:`register_secret_key_word` and :func:`register_secret_pattern`.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from typing import Any, Final

REDACTED: Final = "[REDACTED]"

SECRET_KEY_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "authorisation",
    "apikey",
    "privatekey",
    "accesskey",
    "secretkey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "sshkey",
    "credential",
    "cookie",
    "sessionid",
    "sessionkey",
    "signature",
    "bearer",
    "connectionstring",
    "databaseurl",
)
"""Substrings of the key's words joined without separators that make it secret."""

SECRET_KEY_WORDS: set[str] = {
    "pwd",
    "pass",
    "pw",
    "auth",
    "jwt",
    "dsn",
    "sid",
    "otp",
    "totp",
    "mfa",
    "pin",
    "creds",
    "cred",
    "sig",
    "csrf",
    "xsrf",
    "nonce",
}
"""Whole words of a normalised key that make it secret (too short to match as substrings)."""

SECRET_KEY_PAIRS: set[tuple[str, str]] = {
    *((qualifier, "key") for qualifier in ("access", "private", "ssh", "gpg", "pgp", "rsa")),
    *((qualifier, "key") for qualifier in ("signing", "encryption", "client", "license", "hmac")),
    *((qualifier, "key") for qualifier in ("master", "webhook", "deploy", "session", "api")),
    *((qualifier, "url") for qualifier in ("database", "db", "redis", "postgres", "postgresql")),
    *((qualifier, "url") for qualifier in ("pg", "mysql", "mongo", "mongodb", "amqp", "broker")),
    *((qualifier, "url") for qualifier in ("rabbitmq", "sqlalchemy", "celery", "sentry", "smtp")),
    *((qualifier, "uri") for qualifier in ("database", "db", "redis", "mongo", "mongodb", "amqp")),
    ("connection", "string"),
    ("conn", "str"),
    ("session", "id"),
    ("client", "secret"),
}
"""Adjacent word pairs of a normalised key that make it secret (``database_url``...)."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def key_words(key: str) -> list[str]:
    """Return the words of ``key`` as matching sees them (``X-AuthToken``: x, auth, token)."""
    return [w for w in _SEPARATORS.split(_CAMEL.sub("_", key).lower()) if w]


# Cached: the same few keys recur on every event. Registering a rule clears it.
@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Return whether a details key names a secret (see the module docstring for the rule)."""
    words = key_words(key)
    if any(w in SECRET_KEY_WORDS for w in words):
        return True
    if any(pair in SECRET_KEY_PAIRS for pair in itertools.pairwise(words)):
        return True
    joined = "".join(words)
    return any(part in joined for part in SECRET_KEY_PARTS)


_B64URL = r"[A-Za-z0-9_-]"
_SCHEMES = r"(?i:bearer|basic|digest|negotiate|token|apikey)"

SECRET_VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "pem-private-key": re.compile(
        r"-----BEGIN (?P<pem>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----"
        r"(?s:.*?-----END (?P=pem)-----|.*)"
    ),
    "url-credentials": re.compile(r"(?<=://)[^\s/@?#]+@"),
    "bearer": re.compile(r"(?i:\bbearer)\s+[A-Za-z0-9\-._~+/]{8,}=*"),
    # Base64 credentials only: a mixed-case or digit-bearing run, so "Basic authentication" stays.
    "basic": re.compile(
        r"(?i:\b(?:basic|digest|negotiate))\s+"
        r"(?=[A-Za-z0-9+/]*(?:[0-9+/]|[a-z][A-Z]))[A-Za-z0-9+/]{8,}={0,2}"
    ),
    "jwt": re.compile(rf"\beyJ{_B64URL}{{4,}}\.eyJ{_B64URL}{{4,}}\.{_B64URL}*"),
    "github-token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})"),
    "gitlab-token": re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
    "slack-token": re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}"),
    "slack-webhook": re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+"),
    "aws-access-key-id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
    "stripe-key": re.compile(
        r"\b(?:[sr]k|pk)_(?:live|test)_[A-Za-z0-9]{10,}|\bwhsec_[A-Za-z0-9]{10,}"
    ),
    "google-api-key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),
    "openai-style-key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "npm-token": re.compile(r"\bnpm_[A-Za-z0-9]{36}"),
    "pypi-token": re.compile(r"\bpypi-[A-Za-z0-9_-]{50,}"),
}
"""Named patterns whose every match in free text is replaced by :data:`REDACTED`."""

# ``name=value``, ``name: value``, ``"name": "value"``: the value goes when the name is secret.
# ``(?!//)`` keeps a URL's scheme from swallowing its query string (``?token=...``).
_ASSIGNMENT = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.\-]{0,63})["']?\s*(?P<sep>[:=])(?!//)\s*"""
    rf"""(?P<value>"[^"]*"|'[^']*'|(?:{_SCHEMES}\s+)?[^\s&,;"'<>]+)"""
)
_combined: re.Pattern[str] | None = None


def _pattern() -> re.Pattern[str]:
    global _combined  # rebuilt only when a pattern is registered
    if _combined is None:
        _combined = re.compile("|".join(f"(?:{p.pattern})" for p in SECRET_VALUE_PATTERNS.values()))
    return _combined


def register_secret_pattern(name: str, pattern: str | re.Pattern[str]) -> None:
    """Redact every match of ``pattern`` in audit free text from now on, in this process.

    ``name`` labels it (registering a name again replaces its pattern). Inline flags such as
    ``(?i)`` must be scoped (``(?i:...)``) and group names unique, since the patterns are matched
    as one alternation; a pattern that cannot join raises :class:`ValueError` and is not kept.
    """
    global _combined  # rebuilt from the updated table now, so a bad pattern fails here
    previous = SECRET_VALUE_PATTERNS.get(name)
    SECRET_VALUE_PATTERNS[name] = re.compile(pattern) if isinstance(pattern, str) else pattern
    _combined = None
    try:
        _pattern()
    except re.error as exc:
        # Restore the table: a pattern that breaks the alternation must not break every append.
        if previous is None:
            del SECRET_VALUE_PATTERNS[name]
        else:
            SECRET_VALUE_PATTERNS[name] = previous
        _combined = None
        raise ValueError(f"secret pattern {name!r} cannot join the others: {exc}") from exc


def register_secret_key_word(word: str) -> None:
    """Treat keys containing the word ``word`` (normalised as keys are) as secret from now on."""
    words = key_words(word)
    if len(words) == 1:
        SECRET_KEY_WORDS.add(words[0])
    elif len(words) == 2:
        SECRET_KEY_PAIRS.add((words[0], words[1]))
    else:
        raise ValueError(f"a secret key word is one or two words, not {word!r}")
    is_secret_key.cache_clear()


def _assignment(match: re.Match[str]) -> str:
    if not is_secret_key(match["name"]):
        return match[0]
    return f"{match[0][: match.start('value') - match.start()]}{REDACTED}"


def redact_text(text: str) -> str:
    """Return ``text`` with every secret-shaped part replaced by :data:`REDACTED`."""
    text = _pattern().sub(_redacted_match, text)
    if "=" in text or ":" in text:
        text = _ASSIGNMENT.sub(_assignment, text)
    return text


def _redacted_match(match: re.Match[str]) -> str:
    found = match[0]
    if found.endswith("@"):  # credentials in a URL: keep the @ so the host stays readable
        return f"{REDACTED}@"
    words = found.split(None, 1)
    if len(words) == 2 and words[0].lower() in {"bearer", "basic", "digest", "negotiate"}:
        return f"{words[0]} {REDACTED}"  # the scheme says what kind of secret was there
    return REDACTED


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secrets replaced by :data:`REDACTED` (rules above)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
