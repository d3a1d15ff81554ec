"""Chaos never arms in production, whatever the spelling; outside tests only where harmless."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_reliability.errors import ChaosDisabled
from pytest_reliability.ops.chaos_engine import (
    NON_PRODUCTION_ENVIRONMENTS,
    PRODUCTION_ENV_VARS,
    ChaosEngine,
    check_armable,
    production_environment,
)

pytestmark = pytest.mark.chaos

PRODUCTION_SPELLINGS = [
    "production", "prod", "PROD", " Production ", "live", "LIVE", "prd", "prd2",
    "prod-eu-west-1", "production-blue", "blue-production", "eu1-prod", '"production"', "'prod'",
    "`live`", "prod_us", "Prod.EU", "productionBlue", "preprod", "live-2", "ｐｒｏｄ",
    "pro\u200bd", "cloud,prod",
]  # fmt: skip
VARIABLES = [
    "RELIABILITY_ENV", "APP_ENV", "ENVIRONMENT", "NODE_ENV", "RAILS_ENV", "ENV", "STAGE",
    "RACK_ENV", "DJANGO_ENV", "ASPNETCORE_ENVIRONMENT", "SPRING_PROFILES_ACTIVE", "DEPLOY_ENV",
]  # fmt: skip


@pytest.mark.parametrize("value", PRODUCTION_SPELLINGS)
@pytest.mark.parametrize("in_test", [True, False])
def test_every_production_spelling_refuses_in_and_out_of_tests(value: str, in_test: bool) -> None:
    environ = {"APP_ENV": value, "CHAOS_ENABLED": "true", "CI": "true"}
    with pytest.raises(ChaosDisabled, match="production"):
        check_armable(environ, in_test=in_test)
    with pytest.raises(ChaosDisabled):
        ChaosEngine(environ=environ, in_test=in_test)


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_that_names_the_environment_is_read(variable: str) -> None:
    assert variable in PRODUCTION_ENV_VARS
    environ = {variable: "production", "CHAOS_ENABLED": "true", "CI": "true"}
    assert production_environment(environ) == f"{variable}='production'"
    with pytest.raises(ChaosDisabled, match=f"production \\({variable}="):
        check_armable(environ, in_test=True)


def test_production_in_any_variable_wins_over_a_harmless_one() -> None:
    environ = {"APP_ENV": "staging", "NODE_ENV": "production", "CHAOS_ENABLED": "true"}
    with pytest.raises(ChaosDisabled, match="NODE_ENV"):
        check_armable(environ, in_test=True)


@pytest.mark.parametrize(
    "environ",
    [
        {"CHAOS_ENABLED": "true", "CI": "true"},
        {"CHAOS_ENABLED": "true", "GITHUB_ACTIONS": "true"},
        {"CHAOS_ENABLED": "yes", "JENKINS_URL": "https://ci.example.com/"},
        {"CHAOS_ENABLED": "true", "APP_ENV": "staging"},
        {"CHAOS_ENABLED": "true", "APP_ENV": "staging-eu-west-1"},
        {"CHAOS_ENABLED": "true", "NODE_ENV": "development", "RAILS_ENV": "test"},
        {"CHAOS_ENABLED": "true", "ENV": "dev2"},
        {"CHAOS_ENABLED": "true", "STAGE": '"qa"'},
    ],
)
def test_outside_tests_arms_in_ci_or_a_named_non_production_environment(
    environ: dict[str, str],
) -> None:
    check_armable(environ, in_test=False)
    with ChaosEngine(environ=environ) as chaos:
        assert chaos.faults == ()


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"CHAOS_ENABLED": "true"}, "neither CI"),
        ({"CHAOS_ENABLED": "true", "CI": "false"}, "neither CI"),
        ({"CHAOS_ENABLED": "true", "CI": "maybe"}, "neither CI"),
        ({"CHAOS_ENABLED": "true", "APP_ENV": "blue"}, "APP_ENV='blue' is not a known"),
        ({"CHAOS_ENABLED": "true", "CI": "true", "ENV": "eu-west"}, "ENV='eu-west' is not a known"),
        ({"CHAOS_ENABLED": "true", "APP_ENV": "staging", "STAGE": "main"}, "STAGE='main'"),
        ({"CI": "true"}, "set CHAOS_ENABLED=true"),
        ({"CI": "true", "CHAOS_ENABLED": "sometimes"}, "not a boolean"),
    ],
)
def test_outside_tests_anything_unknown_refuses_with_the_reason(
    environ: dict[str, str], match: str
) -> None:
    with pytest.raises(ChaosDisabled, match=match):
        check_armable(environ, in_test=False)


def test_inside_tests_an_unknown_environment_still_arms() -> None:
    check_armable({"APP_ENV": "blue"}, in_test=True)
    check_armable({}, in_test=True)


def test_the_allow_list_holds_no_production_word() -> None:
    for name in NON_PRODUCTION_ENVIRONMENTS:
        assert production_environment({"APP_ENV": name}) is None, name


def test_a_real_process_with_node_env_production_refuses() -> None:
    """The engine reads the process environment when given none."""
    code = (
        "from pytest_reliability.ops.chaos_engine import ChaosEngine\n"
        "from pytest_reliability.errors import ChaosDisabled\n"
        "try:\n    ChaosEngine()\nexcept ChaosDisabled as exc:\n    print(exc)\n"
        "else:\n    print('ARMED')\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV_VARS}
    base.pop("PYTEST_CURRENT_TEST", None)

    def run(**extra: str) -> str:
        env = {**base, "CHAOS_ENABLED": "true", "CI": "true", **extra}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        return out.stdout.strip()

    assert run() == "ARMED"
    assert "NODE_ENV='production'" in run(NODE_ENV="production")
    assert "RAILS_ENV='live'" in run(RAILS_ENV="live")
