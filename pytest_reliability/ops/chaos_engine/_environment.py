"""Where chaos may arm: production detection and the outside-pytest allow-list.

Fail closed. Production is recognised under any spelling a deployment uses: every variable of
:data:`PRODUCTION_ENV_VARS` is read, its value normalised (Unicode compatibility form, case
folded, invisible format characters dropped, camelCase split) and cut into words at anything
but a letter or digit; a word containing ``prod`` (``prod``, ``production-blue``, ``preprod``,
``prod-eu-west-1``), or a word ``prd``/``live`` with optional trailing digits, means production.
Production refuses always, in tests too.

Outside a pytest run the engine arms only when ``CHAOS_ENABLED`` is true **and** the process is
positively somewhere harmless: a CI system (:data:`CI_ENV_VARS`) or an environment named in
:data:`NON_PRODUCTION_ENVIRONMENTS` by every environment variable that is set. An environment
name the engine does not know refuses, with the reason.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from typing import Final

from pytest_reliability.errors import ChaosDisabled, ConfigurationError
from pytest_reliability.ids import parse_bool

CHAOS_ENABLED_ENV: Final = "CHAOS_ENABLED"
"""Environment variable that arms the engine outside tests."""

PRODUCTION_ENV_VARS: tuple[str, ...] = (
    "RELIABILITY_ENV",
    "APP_ENV",
    "APP_ENVIRONMENT",
    "ENVIRONMENT",
    "ENVIRONMENT_NAME",
    "ENV",
    "ENV_NAME",
    "STAGE",
    "APP_STAGE",
    "DEPLOY_ENV",
    "DEPLOYMENT_ENV",
    "DEPLOYMENT_ENVIRONMENT",
    "NODE_ENV",
    "RAILS_ENV",
    "RACK_ENV",
    "FLASK_ENV",
    "DJANGO_ENV",
    "PYTHON_ENV",
    "GO_ENV",
    "MIX_ENV",
    "ASPNETCORE_ENVIRONMENT",
    "DOTNET_ENVIRONMENT",
    "SPRING_PROFILES_ACTIVE",
    "SENTRY_ENVIRONMENT",
    "DD_ENV",
    "VERCEL_ENV",
)
"""Environment variables that name the deployment environment; each is checked."""

PRODUCTION_VALUES: frozenset[str] = frozenset({"production", "prod", "prd", "live"})
"""Canonical production words; any word containing ``prod`` counts too (see the module doc)."""

NON_PRODUCTION_ENVIRONMENTS: frozenset[str] = frozenset(
    {
        "ci", "test", "tests", "testing", "dev", "develop", "development", "local", "localhost",
        "staging", "stage", "stg", "qa", "sandbox", "preview", "review", "integration", "e2e",
        "perf", "performance", "load", "loadtest", "chaos", "uat", "demo",
    }
)  # fmt: skip
"""Environment names (first word, trailing digits ignored: ``staging-eu-1``, ``dev2``) that
let chaos arm outside tests when ``CHAOS_ENABLED=true``."""

CI_ENV_VARS: tuple[str, ...] = (
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "TEAMCITY_VERSION",
    "DRONE",
    "CODEBUILD_BUILD_ID",
    "APPVEYOR",
)
"""Variables CI systems set; any of them set (and not false) means the process runs in CI."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORDS = re.compile(r"[^0-9a-z]+")
_PRD_LIVE = re.compile(r"(?:prd|live)[0-9]*")
_TRAILING_DIGITS = re.compile(r"[0-9]+$")


def _words(value: str) -> list[str]:
    text = unicodedata.normalize("NFKC", value)
    # Zero-width and other format characters would otherwise split "pro\u200bd" into harmless words.
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return [w for w in _WORDS.split(_CAMEL.sub("-", text).casefold()) if w]


def _is_production_word(word: str) -> bool:
    return "prod" in word or _PRD_LIVE.fullmatch(word) is not None


def _show(name: str, value: str) -> str:
    return f"{name}={value[:64]!r}"


def production_environment(environ: Mapping[str, str]) -> str | None:
    """Return ``NAME='value'`` of the first variable saying production, else ``None``."""
    for name in PRODUCTION_ENV_VARS:
        value = environ.get(name)
        if value is not None and any(_is_production_word(w) for w in _words(value)):
            return _show(name, value)
    return None


def in_ci(environ: Mapping[str, str]) -> str | None:
    """Return the first CI variable that is set (and not false), else ``None``."""
    for name in CI_ENV_VARS:
        value = environ.get(name, "").strip()
        if not value:
            continue
        try:
            if not parse_bool(name, value):
                continue
        except ConfigurationError:
            if name == "CI":
                continue  # CI must say true; a provider variable may hold a URL or a number
        return name
    return None


def _outside_test_refusal(env: Mapping[str, str]) -> str | None:
    """Return why chaos may not arm outside a test in ``env``, or ``None`` when it may."""
    try:
        enabled = parse_bool(CHAOS_ENABLED_ENV, env.get(CHAOS_ENABLED_ENV))
    except ConfigurationError as exc:
        return f"chaos stays disarmed: {exc}"
    if not enabled:
        return f"chaos is disarmed: set {CHAOS_ENABLED_ENV}=true to arm it"
    named: list[str] = []
    for name in PRODUCTION_ENV_VARS:
        value = env.get(name)
        words = _words(value) if value is not None else []
        if not words:
            continue
        if _TRAILING_DIGITS.sub("", words[0]) not in NON_PRODUCTION_ENVIRONMENTS:
            return (
                f"chaos refuses to arm: {_show(name, value or '')} is not a known non-production "
                f"environment (known: {', '.join(sorted(NON_PRODUCTION_ENVIRONMENTS))})"
            )
        named.append(_show(name, value or ""))
    if named or in_ci(env) is not None:
        return None
    return (
        "chaos refuses to arm outside a test: this is neither CI (none of "
        f"{', '.join(CI_ENV_VARS)} is set) nor a named non-production environment (set "
        f"{PRODUCTION_ENV_VARS[0]} or APP_ENV to staging, dev, test, ...)"
    )


def check_armable(environ: Mapping[str, str] | None = None, *, in_test: bool = False) -> None:
    """Raise :class:`ChaosDisabled` unless chaos may arm here (production always refuses).

    In a test (``in_test``, what the ``chaos`` fixture passes) only production refuses. Outside
    one, ``CHAOS_ENABLED`` must be true and the process positively in CI or a named
    non-production environment; the error says which condition failed.
    """
    env = os.environ if environ is None else environ
    production = production_environment(env)
    if production is not None:
        raise ChaosDisabled(f"chaos refuses to arm in production ({production})")
    if in_test:
        return
    refusal = _outside_test_refusal(env)
    if refusal is not None:
        raise ChaosDisabled(refusal)
