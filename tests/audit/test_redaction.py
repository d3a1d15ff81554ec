"""Secrets never reach the audit log: key spellings, secret-shaped values, free-text reasons."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from pytest_reliability.audit import REDACTED, AuditLog, InMemoryAuditLog, is_secret_key, redact
from pytest_reliability.audit._redact import (
    SECRET_KEY_WORDS,
    SECRET_VALUE_PATTERNS,
    redact_text,
    register_secret_key_word,
    register_secret_pattern,
)
from pytest_reliability.db import create_schema
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession
from pytest_reliability.tenancy import PLATFORM_SCOPE, tenant_scope

pytestmark = pytest.mark.audit

# The issue's idea: the key spellings real code uses for secrets, across conventions.
SECRET_KEYS = [
    "password", "Password", "PASSWORD", "db_password", "dbPassword", "DB-PASSWORD", "passwd",
    "pwd", "pass", "user_pass", "passphrase", "secret", "client_secret", "clientSecret",
    "SECRET_KEY", "secretKey", "token", "access_token", "accessToken", "refresh-token",
    "id_token", "X-Auth-Token", "x-amz-security-token", "auth", "X-Auth", "auth_header",
    "Authorization", "proxy-authorization", "authorisation", "api_key", "apiKey", "APIKey",
    "x-api-key", "apikey", "private_key", "privateKey", "PRIVATE-KEY", "ssh_key", "sshKey",
    "access_key", "AWS_ACCESS_KEY_ID", "aws_secret_access_key", "signing_key", "encryptionKey",
    "master_key", "credential", "credentials", "creds", "cookie", "Set-Cookie", "session_id",
    "sessionId", "SESSIONID", "sid", "jwt", "JWT_TOKEN", "bearer", "bearerToken", "signature",
    "webhookSignature", "dsn", "SENTRY_DSN", "database_url", "databaseUrl", "DATABASE_URL",
    "redis_url", "connection_string", "connectionString", "mongo_uri", "otp", "mfa_code", "pin",
    "csrf_token", "client key",
]  # fmt: skip
PUBLIC_KEYS = [
    "key_hash", "operation", "fence", "http_status", "retry_after", "state", "store", "reason",
    "actor", "amount", "currency", "from", "to", "error", "permission", "tenant", "author",
    "passenger_count", "compass", "public_key_fingerprint", "primary_key", "sort_key", "kind",
]  # fmt: skip

SECRET = "s3cr3t-Value-9f8e7d"
SECRET_VALUES = {
    "bearer header": f"Authorization: Bearer {SECRET}",
    "bare bearer": f"retried with Bearer {SECRET} after 401",
    "basic": "upstream said no to Basic dXNlcjpzM2NyM3QtVmFsdWU=",
    "url password": f"could not connect to postgresql://app:{SECRET}@db.internal:5432/app",
    "url token user": f"cloning https://{SECRET}@github.com/acme/repo.git failed",
    "query token": f"GET https://api.example.com/v1/x?access_token={SECRET}&page=2",
    "key=value": f"config password={SECRET} loaded",
    "key: value": f"pwd: {SECRET}",
    "json in text": f'payload {{"client_secret": "{SECRET}", "id": 3}}',
    "pem": (
        f"key is\n-----BEGIN RSA PRIVATE KEY-----\nMIIE{SECRET}\n-----END RSA PRIVATE KEY-----\nok"
    ),
    "pem openssh": f"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn{SECRET}",
    "jwt": "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzM2NyM3QtVmFsdWUifQ.c2lnbmF0dXJl",
    "github": "leaked ghp_" + "s3cr3tValue9f8e7d" * 3,
    "github pat": "github_pat_11AAAAAAA0s3cr3tValue9f8e7d_s3cr3tValue9f8e7d",
    "gitlab": "glpat-s3cr3t-Value-9f8e7dxx",
    "slack": "xoxb-1234567890-s3cr3t-Value-9f8e7d",
    "slack webhook": "posting to https://hooks.slack.com/services/T000/B000/s3cr3tValue9f8e7d",
    "aws key id": "using AKIAS3CR3TVALUE9F8EX for the upload",
    "stripe": "charged with sk_live_s3cr3tValue9f8e7d",
    "webhook secret": "rotated whsec_s3cr3tValue9f8e7d",
    "google": "maps key AIzaSyS3cr3tValue9f8e7d-0123456789abcdef",
}
LEAK = re.compile(r"s3cr3t|S3CR3T|zM2NyM3Qt|dXNlcjpzM2NyM3Q")


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_every_secret_key_spelling_is_redacted(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: SECRET, "nested": [{key: {"deep": 1}}]}) == {
        key: REDACTED,
        "nested": [{key: REDACTED}],
    }


def test_the_table_is_the_issues_size() -> None:
    assert len(SECRET_KEYS) >= 62
    assert len(set(SECRET_KEYS)) == len(SECRET_KEYS)


@pytest.mark.parametrize("key", PUBLIC_KEYS)
def test_ordinary_keys_are_kept(key: str) -> None:
    assert not is_secret_key(key)
    assert redact({key: "visible"}) == {key: "visible"}


@pytest.mark.parametrize("text", list(SECRET_VALUES.values()), ids=list(SECRET_VALUES))
def test_secret_shaped_values_are_redacted_inside_free_text(text: str) -> None:
    cleaned = redact_text(text)
    assert LEAK.search(cleaned) is None, cleaned
    assert REDACTED in cleaned
    assert redact({"reason": text, "items": [text]}) == {"reason": cleaned, "items": [cleaned]}


@pytest.mark.parametrize(
    "text",
    [
        "card processor incident",
        "Basic authentication failed for the legacy API",
        "the token expired at 12:00; retry",
        "reason: maintenance window, see https://status.example.com/incidents/42",
        "key_hash=" + "ab" * 32,
        "postgresql://db.internal:5432/app",
    ],
)
def test_ordinary_text_is_kept_verbatim(text: str) -> None:
    assert redact_text(text) == text


def test_redaction_keeps_the_readable_part() -> None:
    assert redact_text(f"Authorization: Bearer {SECRET}") == f"Authorization: {REDACTED}"
    assert redact_text(f"retry with Bearer {SECRET}") == f"retry with Bearer {REDACTED}"
    assert (
        redact_text(f"postgresql://app:{SECRET}@db:5432/app")
        == f"postgresql://{REDACTED}@db:5432/app"
    )


@pytest.fixture
def sql_log(sqlite_engine: Engine) -> AuditLog:
    create_schema(sqlite_engine)
    return AuditLog(sqlite_engine)


def test_nothing_secret_is_stored_or_hashed_on_sql(sql_log: AuditLog) -> None:
    details = dict.fromkeys(SECRET_KEYS, SECRET) | {
        name.replace(" ", "_"): text for name, text in SECRET_VALUES.items()
    }
    with tenant_scope("acme"):
        sql_log.append("probe", actor="user:1", target="t", outcome="ok", details=details)
        assert sql_log.verify().ok
    with sql_log.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT details FROM audit_events").scalar_one()
    assert LEAK.search(raw) is None


def test_kill_switch_reason_with_a_token_is_redacted_in_the_audit_log() -> None:
    audit = InMemoryAuditLog()
    authz = AuthorizationEngine()
    authz.grant("alice@ops", "ops_operator")
    switches = KillSwitches.from_url("memory://", session=OpsSession(authz, audit), env={})
    reason = f"rotating leaked key, was: Authorization: Bearer {SECRET} (ticket OPS-7)"
    switches.engage("BILLING", reason=reason, actor=OpsContext("alice@ops"))
    with tenant_scope(PLATFORM_SCOPE):
        (event,) = audit.events(action="ops.kill_switch.engage")
    assert LEAK.search(str(event.details)) is None
    assert event.details["reason"] == (
        f"rotating leaked key, was: Authorization: Bearer {REDACTED} (ticket OPS-7)"
    )


@pytest.fixture
def restore_rules() -> Iterator[None]:
    words, patterns = set(SECRET_KEY_WORDS), dict(SECRET_VALUE_PATTERNS)
    yield
    SECRET_KEY_WORDS.clear()
    SECRET_KEY_WORDS.update(words)
    SECRET_VALUE_PATTERNS.clear()
    SECRET_VALUE_PATTERNS.update(patterns)
    register_secret_pattern("jwt", patterns["jwt"])  # rebuilds the combined pattern
    is_secret_key.cache_clear()


@pytest.mark.usefixtures("restore_rules")
def test_rules_can_be_extended() -> None:
    assert not is_secret_key("licenceCode")
    register_secret_key_word("licence")
    assert is_secret_key("licenceCode")
    assert redact_text("id acme-LIC-0042 issued") == "id acme-LIC-0042 issued"
    register_secret_pattern("acme-licence", r"\bacme-LIC-[0-9]{4}\b")
    assert redact_text("id acme-LIC-0042 issued") == f"id {REDACTED} issued"
    with pytest.raises(ValueError, match="one or two words"):
        register_secret_key_word("a_b_c")
    with pytest.raises(ValueError, match="cannot join"):
        register_secret_pattern("global-flag", "(?i)secret")  # flags must be scoped
    assert "global-flag" not in SECRET_VALUE_PATTERNS
    assert redact_text("id acme-LIC-0042 issued") == f"id {REDACTED} issued"
