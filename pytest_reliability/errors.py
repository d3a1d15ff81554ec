"""Every error pytest-reliability raises.

One base class, :class:`ReliabilityError`, so a caller can catch everything the package raises in
one clause. Errors carry the values a caller needs to act (tenant, switch, permission, sequence
number) as attributes, and never secrets: an idempotency key travels only as its hash.

The tree::

    ReliabilityError
    ├── ConfigurationError            bad settings, unknown URL scheme, missing extra
    │   └── InvalidAbusePolicy        unknown tier or detector, a window or limit <= 0, no way up
    ├── InvalidInput (also ValueError)
    │   ├── InvalidTenant             tenant id empty, too long or outside the character set
    │   ├── InvalidAuditField         oversized action, actor or target; details not JSON
    │   ├── InvalidIdempotencyKey     not 1..255 printable ASCII characters
    │   ├── PayloadTooLarge           payload over the configured limit
    │   ├── PayloadNotSerializable    payload or response not encodable as canonical JSON
    │   ├── InvalidSignal             an abuse signal's subject, account, path or status is bad
    │   ├── AllowListedSubject        an ops block of a subject the abuse policy allow-lists
    │   └── SLOError                  an SLO, its data or its spec is malformed (no partial result)
    │       ├── SLOObjectiveError     objective outside (0, 100]
    │       ├── SLOWindowError        unknown or malformed window, or shorter than the buckets
    │       ├── SLODataError          negative or non-finite count, good > total, naive time
    │       │   └── SLOCounterError   a counter went down and it was not a reset
    │       ├── SlothSpecError        malformed Sloth YAML; names the line and the field
    │       └── SLOScrapeError        a Prometheus text scrape or a series selector is malformed
    ├── TenantRequired                no tenant in the context (fail closed, never a default)
    ├── StoreUnavailable              a backing store cannot be reached or read
    │   ├── StoreDataLost             the store's marker is gone: it lost acknowledged state
    │   ├── IdempotencyUnavailable    (also an IdempotencyError) the handler did not run
    │   └── AbuseStoreUnavailable     the abuse store failed; decide answers "unavailable" (503)
    ├── AuditError
    │   ├── AuditIntegrityError       the hash chain is broken; names the first break
    │   └── AuditCheckpointError      a signed checkpoint is malformed, altered or not ours
    ├── IdempotencyError
    │   ├── IdempotencyKeyMismatch    same key, another payload fingerprint (HTTP 422)
    │   ├── IdempotencyInProgress     a first delivery holds the key (HTTP 409)
    │   ├── LeaseLost                 a worker's lease was taken over (fencing)
    │   ├── CorruptRecord             a stored record cannot be decoded
    │   ├── ReplayedFailure           a replay raising the first delivery's terminal error
    │   └── IdempotencyUnavailable
    ├── WebhookVerificationError
    │   ├── WebhookSignatureInvalid
    │   ├── WebhookTimestampOutOfTolerance
    │   └── WebhookPayloadInvalid     (also InvalidInput) body not bytes, too large, not JSON
    ├── KillSwitchEngaged             a guarded operation met an engaged switch
    ├── PermissionDenied              RBAC refused an ops action
    ├── OperationRefused              the degradation guard refused a non-essential operation
    ├── ChaosError
    │   ├── ChaosDisabled             the chaos engine refuses to arm here
    │   ├── InjectedFault             the default exception a chaos fault raises
    │   ├── FaultScheduleError        (also InvalidInput) a fault schedule is malformed, names an
    │   │   │                         unknown target or a kind its target does not allow
    │   │   └── ScheduleVersionError  a schedule file from another schema version
    │   ├── ChaosInvariantViolated    (also AssertionError) an invariant failed under a schedule
    │   └── DockerUnavailable         no Docker Engine, a refusing daemon, a port taken
    │       └── ImageBuildError       a local PostgreSQL or Redis image cannot be built
    ├── ReportError                   a reliability report is invalid or cannot be written
    └── BackupError                   a backup could not be made, listed or pruned
        ├── BackupToolError           pg_dump/pg_restore/initdb missing, or older than the server
        ├── BackupSourceUnavailable   (also a StoreUnavailable) the source refused the connection
        ├── BackupDirectoryError      the backup directory is unwritable, full or not ours
        └── RestoreDrillError         a restore drill could not run
            └── DrillTargetRefused    the target is the source, or a server the drill did not start
"""

from __future__ import annotations

__all__ = [
    "AbuseStoreUnavailable",
    "AllowListedSubject",
    "AuditCheckpointError",
    "AuditError",
    "AuditIntegrityError",
    "BackupDirectoryError",
    "BackupError",
    "BackupSourceUnavailable",
    "BackupToolError",
    "ChaosDisabled",
    "ChaosError",
    "ChaosInvariantViolated",
    "ConfigurationError",
    "CorruptRecord",
    "DockerUnavailable",
    "DrillTargetRefused",
    "FaultScheduleError",
    "IdempotencyError",
    "IdempotencyInProgress",
    "IdempotencyKeyMismatch",
    "IdempotencyUnavailable",
    "ImageBuildError",
    "InjectedFault",
    "InvalidAbusePolicy",
    "InvalidAuditField",
    "InvalidIdempotencyKey",
    "InvalidInput",
    "InvalidSignal",
    "InvalidTenant",
    "KillSwitchEngaged",
    "LeaseLost",
    "OperationRefused",
    "PayloadNotSerializable",
    "PayloadTooLarge",
    "PermissionDenied",
    "ReliabilityError",
    "ReplayedFailure",
    "ReportError",
    "RestoreDrillError",
    "SLOCounterError",
    "SLODataError",
    "SLOError",
    "SLOObjectiveError",
    "SLOScrapeError",
    "SLOWindowError",
    "ScheduleVersionError",
    "SlothSpecError",
    "StoreDataLost",
    "StoreUnavailable",
    "TenantRequired",
    "WebhookPayloadInvalid",
    "WebhookSignatureInvalid",
    "WebhookTimestampOutOfTolerance",
    "WebhookVerificationError",
]


class ReliabilityError(Exception):
    """Base class of every error pytest-reliability raises."""


class ConfigurationError(ReliabilityError):
    """A setting, URL or environment variable is invalid, or a needed extra is not installed."""


class InvalidInput(ReliabilityError, ValueError):
    """A value handed to the public API is malformed; nothing was written."""


class InvalidTenant(InvalidInput):
    """A tenant id is empty, too long, or uses characters outside the documented set."""


class InvalidAuditField(InvalidInput):
    """An audit field is oversized, or the details cannot be encoded as JSON."""


class InvalidIdempotencyKey(InvalidInput):
    """An idempotency key is not 1 to 255 printable ASCII characters."""


class PayloadTooLarge(InvalidInput):
    """A payload is larger than the configured limit."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class PayloadNotSerializable(InvalidInput):
    """A payload or a response cannot be encoded as canonical JSON; nothing was stored."""


class SLOError(InvalidInput):
    """An SLO, the data fed to it or its spec is malformed; nothing was evaluated."""


class SLOObjectiveError(SLOError):
    """An objective is outside (0, 100] percent. ``objective`` is the value given."""

    def __init__(self, message: str, *, objective: object) -> None:
        super().__init__(message)
        self.objective = objective


class SLOWindowError(SLOError):
    """A window is unknown or malformed, or shorter than the bucket size. ``window`` names it."""

    def __init__(self, message: str, *, window: str) -> None:
        super().__init__(message)
        self.window = window


class SLODataError(SLOError):
    """A bucket is invalid (negative or non-finite count, good > total, naive timestamp).

    ``index`` is the position of the first offending bucket in the input, when known.
    """

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class SLOCounterError(SLODataError):
    """A cumulative counter went down while the total did not reset (not a counter reset)."""


class SlothSpecError(SLOError):
    """A Sloth ``prometheus/v1`` spec is malformed. ``line`` (1-based) and ``field`` locate it."""

    def __init__(self, message: str, *, line: int | None, field: str) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{field}: {message}")
        self.line = line
        self.field = field


class SLOScrapeError(SLOError):
    """A Prometheus text-format scrape or a series selector cannot be parsed."""


class TenantRequired(ReliabilityError):
    """An operation needs a tenant and none is set in the current context."""


class StoreUnavailable(ReliabilityError):
    """A backing store (database, Redis) cannot be reached or read; the caller fails closed."""


class StoreDataLost(StoreUnavailable):
    """The store's marker key is missing or changed: it lost state it had acknowledged.

    A Redis restart without persistence, an eviction or a ``FLUSHALL``. Kill switches then read
    engaged until an operator re-seeds the store; nothing reads it as "all clear".
    """


class AuditError(ReliabilityError):
    """Base class of audit log errors."""


class AuditIntegrityError(AuditError):
    """The audit chain is broken.

    ``tenant`` and ``sequence`` name the first break, ``kind`` says what was found there
    (``changed``, ``deleted``, ``inserted``, ``reordered`` or ``forked``).
    """

    def __init__(self, message: str, *, tenant: str, sequence: int, kind: str) -> None:
        super().__init__(message)
        self.tenant = tenant
        self.sequence = sequence
        self.kind = kind


class AuditCheckpointError(AuditError):
    """A signed audit checkpoint cannot be read, is malformed, or does not verify with the key.

    Fail closed: a checkpoint that cannot be trusted is an error, never silently skipped.
    """


class IdempotencyError(ReliabilityError):
    """Base class of idempotency engine errors."""


class IdempotencyKeyMismatch(IdempotencyError):
    """The key was used before with another request fingerprint (HTTP 422)."""

    http_status = 422


class IdempotencyInProgress(IdempotencyError):
    """Another delivery with the same key is in progress (HTTP 409).

    ``retry_after`` is a hint, in seconds, for when to try again.
    """

    http_status = 409

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LeaseLost(IdempotencyError):
    """The worker's in-progress lease expired and another worker took it over (fencing)."""


class CorruptRecord(IdempotencyError):
    """A stored record cannot be decoded; the handler is not re-executed."""


class ReplayedFailure(IdempotencyError):
    """A first delivery failed terminally; this replay raises its stored error again.

    ``error_type`` is the qualified name of the first delivery's exception class and
    ``error_message`` its text; the handler did not run again.
    """

    http_status = 500

    def __init__(self, message: str, *, error_type: str, error_message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.error_message = error_message


class IdempotencyUnavailable(StoreUnavailable, IdempotencyError):
    """The idempotency store cannot be reached; the handler did not run (fail closed)."""

    http_status = 503


class WebhookVerificationError(ReliabilityError):
    """A webhook delivery failed verification."""


class WebhookSignatureInvalid(WebhookVerificationError):
    """The signature header is missing, malformed or does not match the body."""


class WebhookTimestampOutOfTolerance(WebhookVerificationError):
    """The signed timestamp is too old or too far in the future."""


class WebhookPayloadInvalid(WebhookVerificationError, InvalidInput):
    """A webhook body is not bytes, is over the size limit, is not JSON or names no event id."""


class KillSwitchEngaged(ReliabilityError):
    """A guarded operation met an engaged kill switch. ``switch`` names it."""

    def __init__(self, message: str, *, switch: str) -> None:
        super().__init__(message)
        self.switch = switch


class PermissionDenied(ReliabilityError):
    """RBAC refused an ops action. ``permission`` names what was missing."""

    def __init__(self, message: str, *, permission: str, actor: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission
        self.actor = actor


class OperationRefused(ReliabilityError):
    """The degradation guard refused a non-essential operation."""


class ChaosError(ReliabilityError):
    """Base class of chaos engine errors."""


class ChaosDisabled(ChaosError):
    """The chaos engine refuses to arm: not enabled, or the environment says production."""


class InjectedFault(ChaosError):
    """The exception a chaos fault raises when the fault names no other."""


class FaultScheduleError(ChaosError, InvalidInput):
    """A fault schedule cannot be used: malformed, or naming a target or kind the run refuses.

    ``index`` is the position of the offending fault in the schedule, when one is to blame.
    Raised before anything is armed: a refused schedule leaves nothing patched.
    """

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class ScheduleVersionError(FaultScheduleError):
    """A schedule file was written for another schema version; ``found`` and ``expected`` say."""

    def __init__(self, message: str, *, found: object, expected: int) -> None:
        super().__init__(message)
        self.found = found
        self.expected = expected


class ChaosInvariantViolated(ChaosError, AssertionError):
    """An invariant did not hold under a fault schedule.

    The message (or, in Hypothesis' final replay, the note beside it) shows the schedule as
    Python text to paste into a regression test, the history of calls and faults, and the seed
    that replays it; ``schedule`` holds the schedule.
    """

    def __init__(self, message: str, *, schedule: object) -> None:
        super().__init__(message)
        self.schedule = schedule


class DockerUnavailable(ChaosError):
    """Container chaos cannot run here; ``reason`` says why in one line (shown by test skips)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageBuildError(DockerUnavailable):
    """A local PostgreSQL or Redis image could not be assembled or imported."""


class ReportError(ReliabilityError):
    """A reliability report is invalid, or cannot be read or written."""


class BackupError(ReliabilityError):
    """A backup could not be made, listed or pruned; no partial file is left under a final name."""


class BackupToolError(BackupError):
    """A needed tool (``pg_dump``, ``pg_restore``, ``initdb``) is missing or too old.

    ``tool`` names it.
    """

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message)
        self.tool = tool


class BackupSourceUnavailable(BackupError, StoreUnavailable):
    """The database to back up refused the connection or could not be read."""


class BackupDirectoryError(BackupError):
    """The backup directory is unwritable or full, or a name in it is taken by a foreign file."""


class RestoreDrillError(BackupError):
    """A restore drill could not run (its throwaway server failed, the restore tool failed)."""


class DrillTargetRefused(RestoreDrillError):
    """A drill refused its target: it is the source, or a server the drill did not start."""


# Abuse protection (security.abuse_protection).


class InvalidAbusePolicy(ConfigurationError):
    """An abuse policy names an unknown tier or detector, has a window or limit <= 0, or can
    never escalate a subject; nothing is built from it."""


class InvalidSignal(InvalidInput):
    """An abuse signal is malformed: empty, oversized or non-printable subject or account, a
    path that is not text, a status outside 100-599. Nothing is written for it."""


class AllowListedSubject(InvalidInput):
    """An ops block named a subject the abuse policy allow-lists (those are never blocked)."""


class AbuseStoreUnavailable(StoreUnavailable):
    """The abuse protection store cannot be read or written; decisions fail closed."""
