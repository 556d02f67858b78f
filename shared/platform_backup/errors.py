"""Domain errors: defined once here, raised by the domain and the adapters, translated to HTTP once
(platform_backup.api.errors). Nothing matches on message text; the type says what happened."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One field that is wrong, by its dotted JSON path (``retention.local.value``)."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error the service expects and explains."""

    code = "Error"

    def __init__(self, message: str, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[FieldError] = details or []


class ValidationFailed(DomainError):
    """The request is malformed or breaks a rule of the product (400)."""

    code = "ValidationError"

    @classmethod
    def of(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", [FieldError(field, message)])

    @classmethod
    def of_many(cls, details: list[FieldError]) -> ValidationFailed:
        summary = "; ".join(f"{d.field}: {d.message}" for d in details)
        return cls(summary, details)


class NotFound(DomainError):
    """The addressed resource does not exist (404)."""

    code = "NotFound"


class Conflict(DomainError):
    """The request conflicts with the current state (409): a second plan, a storage in use, a
    plan that is busy."""

    code = "Conflict"


class Unprocessable(DomainError):
    """Well-formed, but what it refers to cannot be used (422): a bucket that does not exist or
    is not allowed, a storage id that names nothing or the wrong role."""

    code = "UnprocessableEntity"


class DependencyFailed(DomainError):
    """A service we depend on failed; the request changed nothing (503). Never for client input."""

    code = "DependencyFailed"


# -- how a backup or restore run can end; the restore workflow's Catch matches on the type name


class QuotaExhausted(DomainError):
    code = "QuotaExhausted"


class OutOfTime(DomainError):
    code = "OutOfTime"


class ChecksumMismatch(Unprocessable):
    """The object is not the dump the backup recorded (corrupted or truncated)."""

    code = "ChecksumMismatch"


class UnsafeDump(Unprocessable):
    """The dump holds a statement a backup of the recorded databases never contains (another
    database, the system schema, a grant, a global setting): refused before anything is applied."""

    code = "UnsafeDump"


class TargetExists(Unprocessable):
    code = "TargetExists"


class SafetyBackupFailed(DomainError):
    code = "SafetyBackupFailed"


class ClientFailed(DomainError):
    """The mariadb client stopped before the whole dump was applied."""

    code = "ClientFailed"


class VerifyFailed(DomainError):
    code = "VerifyFailed"


class RollbackFailed(DomainError):
    code = "RollbackFailed"
