"""Every setting the functions read, validated once at cold start. Nothing else reads os.environ.

Each function loads the settings of its own use cases (``load(ExecutorSettings)``); a required
variable that is missing fails the cold start naming it. There are no placeholder defaults here:
the template sets every variable deployed, and the local stack sets them from
``devstack/local_settings.py``. The defaults left are real ones, the same deployed and locally.

Plain classes, not pydantic models or dataclasses: a function reads its settings once, and
building the models cost each cold start more than the reading (docs/decisions.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar


class MissingSettings(RuntimeError):
    """The environment lacks (or has an invalid) required variable: the function cannot start."""


def _text(value: str) -> str:
    return value


def _csv(value: str) -> list[str]:
    """A comma-separated list; at least one item."""
    items = [part.strip() for part in value.split(",") if part.strip()]
    if not items:
        raise ValueError("List should have at least 1 item after validation, not 0")
    return items


def _days(value: str) -> int:
    """A whole number of days, at least 1."""
    whole, _, fraction = value.strip().partition(".")
    try:
        # "7" and "7.0" are 7 (as pydantic read them before); anything else is refused.
        days = int(whole if fraction and not fraction.strip("0") else value)
    except ValueError:
        raise ValueError(
            "Input should be a valid integer, unable to parse string as an integer"
        ) from None
    if days < 1:
        raise ValueError("Input should be greater than or equal to 1")
    return days


def _positive(value: str) -> float:
    """A number above 0 (seconds, bytes per second)."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError("Input should be a valid number") from None
    if not number > 0:
        raise ValueError("Input should be greater than 0")
    return number


def _lock_mode(value: str) -> str:
    """S3 Object Lock's retention mode."""
    mode = value.strip().upper()
    if mode not in ("GOVERNANCE", "COMPLIANCE"):
        raise ValueError("Input should be GOVERNANCE or COMPLIANCE")
    return mode


_REQUIRED: Any = object()


class _Variable:
    """A setting read from the environment variable ``name``; required unless it has a default."""

    __slots__ = ("default", "name", "parse")

    def __init__(self, name: str, parse: Callable[[str], Any], default: Any) -> None:
        self.name, self.parse, self.default = name, parse, default


def _variable(name: str, parse: Callable[[str], Any] = _text, default: Any = _REQUIRED) -> Any:
    return _Variable(name, parse, default)


class _Settings:
    """Read only once loaded; equal when every setting is."""

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read only: {name} cannot change")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({values})"


class CommonSettings(_Settings):
    """What every function is given (the template's Globals)."""

    region: str = _variable("AWS_REGION")
    storages_table: str = _variable("STORAGES_TABLE")
    plans_table: str = _variable("PLANS_TABLE")
    locks_table: str = _variable("LOCKS_TABLE")
    executions_table: str = _variable("EXECUTIONS_TABLE")
    backups_table: str = _variable("BACKUPS_TABLE")
    restores_table: str = _variable("RESTORES_TABLE")
    archive_table: str = _variable("ARCHIVE_TABLE")
    # The template's two local buckets, so registering the default storages needs no lookup.
    primary_bucket: str = _variable("PRIMARY_BUCKET")
    fallback_bucket: str = _variable("FALLBACK_BUCKET")
    # Buckets the deployment's roles may reach (ARNs, '*' wildcards allowed): a storage on any
    # other bucket is refused up front instead of failing at its first backup.
    allowed_bucket_arns: list[str] = _variable("ALLOWED_BUCKET_ARNS", _csv)


# The restore's time check (domain/time_budget.py): the restore function's timeout, which the
# template sets equal to its Timeout, and the apply rate assumed until a restore of the plan was
# measured (10 MB/s of SQL: below the slowest rate make bench measured, 11 MB/s; README).
RESTORE_STEP_SECONDS = "RESTORE_STEP_SECONDS"
RESTORE_APPLY_RATE = "RESTORE_APPLY_BYTES_PER_SECOND"
DEFAULT_RESTORE_APPLY_RATE = 10_000_000.0
# A table with this much SQL of rows or more gets its secondary keys after its rows, in a parallel
# restore (adapters/deferred_keys.py); below it they are built as fast row by row.
RESTORE_DEFER_KEYS_FROM = "RESTORE_DEFER_KEYS_FROM_BYTES"
DEFAULT_RESTORE_DEFER_KEYS_FROM = float(16 << 20)


class ApiSettings(CommonSettings):
    restore_step_seconds: float = _variable(RESTORE_STEP_SECONDS, _positive)
    restore_apply_rate: float = _variable(
        RESTORE_APPLY_RATE, _positive, default=DEFAULT_RESTORE_APPLY_RATE
    )
    scheduler_function_name: str = _variable("SCHEDULER_FUNCTION_NAME")
    executor_function_arn: str = _variable("EXECUTOR_FUNCTION_ARN")
    restore_state_machine_arn: str = _variable("RESTORE_STATE_MACHINE_ARN")
    # Asked synchronously whether the server's binary log can be archived, before a plan turns
    # point-in-time recovery on.
    archiver_function_name: str = _variable("ARCHIVER_FUNCTION_NAME")
    # Started asynchronously when a plan's retention policy changes; deletes a backup asked
    # through the API (the only function that may delete object versions).
    retention_function_name: str = _variable("RETENTION_FUNCTION_NAME")
    # The secret holding the key that signs list tokens (adapters/pagination.py).
    page_token_key_secret_arn: str = _variable("PAGE_TOKEN_KEY_SECRET_ARN")


class SchedulerSettings(CommonSettings):
    schedule_group: str = _variable("SCHEDULE_GROUP")
    scheduler_role_arn: str = _variable("SCHEDULER_ROLE_ARN")
    schedule_dlq_arn: str = _variable("SCHEDULE_DLQ_ARN")
    executor_function_arn: str = _variable("EXECUTOR_FUNCTION_ARN")
    archiver_function_arn: str = _variable("ARCHIVER_FUNCTION_ARN")


class ExecutorSettings(CommonSettings):
    db_secret_arn: str = _variable("DB_SECRET_ARN")
    db_names: list[str] = _variable("PLATFORM_DB_NAMES", _csv)
    # The default bus: the retention rule and any operator's own rules listen there.
    event_bus_name: str = _variable("EVENT_BUS_NAME", default="default")
    # S3 Object Lock on remote copies (where the remote bucket has it; domain/remote_lock.py):
    # the mode, and the days a copy is locked when the plan keeps remote copies permanently
    # or by count (by days, it is locked that many days).
    remote_lock_mode: str = _variable("REMOTE_LOCK_MODE", _lock_mode, default="GOVERNANCE")
    remote_lock_permanent_days: int = _variable("REMOTE_LOCK_PERMANENT_DAYS", _days, default=3650)
    remote_lock_count_days: int = _variable("REMOTE_LOCK_COUNT_DAYS", _days, default=30)


class ArchiverSettings(CommonSettings):
    db_secret_arn: str = _variable("DB_SECRET_ARN")


class RetentionSettings(CommonSettings):
    # Pre-restore safety backups sit outside the plan's count; they age out after this many days.
    safety_backup_retention_days: int = _variable("SAFETY_BACKUP_RETENTION_DAYS", _days, default=7)


class RestoreSettings(ExecutorSettings):
    """The restore's safety backup is a backup: it needs what the executor needs (the dump
    user's DB_SECRET_ARN); what it applies goes in as the restore user."""

    # The restore user's secret; empty: the one secret serves both (docs/decisions.md).
    restore_db_secret_arn: str = _variable("RESTORE_DB_SECRET_ARN", default="")

    restore_step_seconds: float = _variable(RESTORE_STEP_SECONDS, _positive)
    restore_apply_rate: float = _variable(
        RESTORE_APPLY_RATE, _positive, default=DEFAULT_RESTORE_APPLY_RATE
    )
    restore_defer_keys_from: float = _variable(
        RESTORE_DEFER_KEYS_FROM, _positive, default=DEFAULT_RESTORE_DEFER_KEYS_FROM
    )


class MonitorSettings(CommonSettings):
    pass


class Settings(
    ApiSettings, SchedulerSettings, RestoreSettings, ArchiverSettings, RetentionSettings
):
    """Every setting at once: the local stack and the tests, which host all the functions."""


S = TypeVar("S", bound=CommonSettings)


def _declared(model: type[_Settings]) -> dict[str, _Variable]:
    """Attribute -> its variable, the base classes' first."""
    declared: dict[str, _Variable] = {}
    for cls in reversed(model.__mro__):
        declared.update((k, v) for k, v in vars(cls).items() if isinstance(v, _Variable))
    return declared


def variables(model: type[CommonSettings]) -> dict[str, bool]:
    """The environment variables ``model`` reads, each with whether it is required."""
    return {v.name: v.default is _REQUIRED for v in _declared(model).values()}


def load(model: type[S], env: Mapping[str, str] | None = None) -> S:
    """The settings ``model`` names, from the environment; fails naming each missing variable.
    An empty variable counts as not set."""
    source = os.environ if env is None else env
    settings = object.__new__(model)
    problems: list[str] = []
    for attribute, variable in _declared(model).items():
        raw = source.get(variable.name, "")
        if raw == "" and variable.default is _REQUIRED:
            problems.append(f"{variable.name} is not set")
            continue
        if raw == "":
            value = variable.default
        else:
            try:
                value = variable.parse(raw)
            except ValueError as exc:
                problems.append(f"{variable.name}: {exc}")
                continue
        object.__setattr__(settings, attribute, value)
    if problems:
        raise MissingSettings(
            f"{model.__name__}: " + "; ".join(problems) + " (set by template.yaml when deployed)"
        )
    return settings
