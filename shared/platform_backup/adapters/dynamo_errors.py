"""DynamoDB write errors, classified once, by code.

Only a failed condition (``ConditionalCheckFailedException``, or a transaction cancelled because
one of its conditions failed) means "someone else holds it, it exists, it changed". Throttling and
service errors have been retried by botocore's standard policy before they get here; what is left
is a dependency failure naming its cause, never a conflict, a duplicate or a lost lease.
"""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException

from platform_backup.errors import DependencyFailed

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELED = "TransactionCanceledException"
# A cancellation reason's code for a failed condition (no "Exception" suffix there).
REASON_CONDITION_FAILED = "ConditionalCheckFailed"


def cause_code(exc: Exception) -> str:
    """The AWS error code behind a pynamodb error ('' when there is none: a network error)."""
    if isinstance(exc, PynamoDBException):
        return exc.cause_response_code or ""
    return ""


def reason_codes(exc: Exception) -> list[str | None]:
    """A cancelled transaction's reason per item, in order (None: that item was fine)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [reason.code if reason is not None else None for reason in reasons]


def is_condition_failure(exc: Exception) -> bool:
    """True only when a write's condition did not hold; False for throttling, service errors,
    network errors and a transaction cancelled for any other reason."""
    code = cause_code(exc)
    if code == CONDITION_FAILED:
        return True
    if code == TRANSACTION_CANCELED:
        codes = [c for c in reason_codes(exc) if c not in (None, "None")]
        return bool(codes) and all(c == REASON_CONDITION_FAILED for c in codes)
    return False


def first_condition_failed(exc: Exception) -> bool:
    """A cancelled transaction whose first item's condition failed (the guard written first)."""
    codes = reason_codes(exc)
    return bool(codes) and codes[0] == REASON_CONDITION_FAILED


def dependency_failed(exc: Exception, doing: str) -> DependencyFailed:
    """The 503 for a write that failed for a reason other than its condition, with the cause."""
    code = cause_code(exc)
    reasons = [c for c in reason_codes(exc) if c not in (None, "None")]
    cause = code or type(exc.__cause__ or exc).__name__
    if reasons:
        cause += f" ({', '.join(dict.fromkeys(reasons))})"
    return DependencyFailed(f"{doing}: DynamoDB failed ({cause}); try again later")


def unless_condition_failure(exc: Exception, doing: str) -> None:
    """Raises the dependency failure when ``exc`` is not a failed condition; returns otherwise."""
    if not is_condition_failure(exc):
        raise dependency_failed(exc, doing) from exc
