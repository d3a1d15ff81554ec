"""The public surface is what ``__all__`` says, and every public name is documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

import pytest_reliability.errors as errors

PUBLIC = {
    "pytest_reliability": {"__version__"},
    "pytest_reliability.tenancy": {
        "PLATFORM_SCOPE",
        "TENANT_ID_MAX_LENGTH",
        "PlatformScope",
        "current_tenant",
        "current_tenant_or_none",
        "tenant_scope",
        "validate_tenant_id",
    },
    "pytest_reliability.ids": {
        "DEFAULT_SEED",
        "DETERMINISTIC_ENV",
        "SEED_ENV",
        "CorrelationIdFilter",
        "configure",
        "correlation_scope",
        "current_correlation_id",
        "current_overrides",
        "current_seed",
        "deterministic_ids_enabled",
        "derive_uuid",
        "id_scope",
        "new_correlation_id",
        "new_id",
        "parse_bool",
        "parse_seed",
        "reset_configuration",
    },
    "pytest_reliability.errors": set(errors.__all__),
    "pytest_reliability.clock": {"Clock", "ManualClock", "SystemClock", "system_clock"},
    "pytest_reliability.protocols": {"AuditSink", "Clock", "ConnectionFaultProxy"},
    "pytest_reliability.db": {
        "DATABASE_URL_ENV",
        "DEFAULT_DATABASE_URL",
        "SQLITE_BUSY_TIMEOUT_MS",
        "Backend",
        "advisory_lock_key",
        "begin_immediate",
        "check_engine",
        "create_schema",
        "database_url_from_env",
        "is_memory_sqlite",
        "is_postgres",
        "is_sqlite",
        "make_engine",
        "metadata",
        "normalize_url",
        "pg_advisory_xact_lock",
        "register_schema_hook",
        "register_tables",
        "registered_tables",
        "session_factory",
        "shares_one_connection",
    },
    "pytest_reliability.audit": {
        "ACTION_MAX",
        "ACTOR_MAX",
        "DEFAULT_MAX_DETAILS_BYTES",
        "GENESIS_HASH",
        "OUTCOME_MAX",
        "REDACTED",
        "SECRET_KEY_PARTS",
        "SIGNING_KEY_ENV",
        "TARGET_MAX",
        "VERIFY_KEY_ENV",
        "AuditEvent",
        "AuditListener",
        "AuditLog",
        "BreakKind",
        "ChainBreak",
        "Checkpoint",
        "CheckpointHead",
        "InMemoryAuditLog",
        "VerifyResult",
        "add_listener",
        "canonical_json",
        "generate_key_pair",
        "is_secret_key",
        "key_id",
        "load_signing_key",
        "load_verify_key",
        "read_checkpoints",
        "redact",
        "redact_text",
        "register_secret_key_word",
        "register_secret_pattern",
        "remove_listener",
    },
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_the_intended_public_surface(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == PUBLIC[module_name]
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is listed but missing"


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_callables_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"


def test_every_error_derives_from_the_base_and_is_in_the_tree() -> None:
    assert errors.__doc__ is not None
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.ReliabilityError)
        assert name in errors.__doc__, f"{name} is missing from the tree in the docstring"


def test_invalid_input_errors_are_value_errors() -> None:
    assert issubclass(errors.InvalidTenant, ValueError)
    assert issubclass(errors.IdempotencyUnavailable, errors.StoreUnavailable)
    assert issubclass(errors.IdempotencyUnavailable, errors.IdempotencyError)


def test_ops_reexports_every_public_name_of_its_modules() -> None:
    import pytest_reliability.ops as ops

    modules = ("chaos_engine", "kill_switch", "rbac", "health_checks", "readiness_gates",
               "degradation")  # fmt: skip
    for name in modules:
        module = importlib.import_module(f"pytest_reliability.ops.{name}")
        missing = set(module.__all__) - set(ops.__all__)
        assert not missing, f"pytest_reliability.ops does not re-export {sorted(missing)}"
    for name in ops.__all__:
        assert hasattr(ops, name)
