"""Every setting the functions read, validated once at cold start. Nothing else reads os.environ.

Each function loads the settings of its own use cases (``load(ExecutorSettings)``); a required
variable that is missing fails the cold start naming it. There are no placeholder defaults here:
the template sets every variable deployed, and the local stack sets them from
``devstack/config.py``. The defaults left are real ones, the same deployed and locally.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class MissingSettings(RuntimeError):
    """The environment lacks (or has an invalid) required variable: the function cannot start."""


class CommonSettings(BaseModel):
    """What every function is given (the template's Globals)."""

    # Built when loaded: a function builds only its own settings model, not all seven.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    region: str = Field(alias="AWS_REGION")
    storages_table: str = Field(alias="STORAGES_TABLE")
    plans_table: str = Field(alias="PLANS_TABLE")
    locks_table: str = Field(alias="LOCKS_TABLE")
    executions_table: str = Field(alias="EXECUTIONS_TABLE")
    backups_table: str = Field(alias="BACKUPS_TABLE")
    restores_table: str = Field(alias="RESTORES_TABLE")
    archive_table: str = Field(alias="ARCHIVE_TABLE")
    # The template's two local buckets, so registering the default storages needs no lookup.
    primary_bucket: str = Field(alias="PRIMARY_BUCKET")
    fallback_bucket: str = Field(alias="FALLBACK_BUCKET")
    # Buckets the deployment's roles may reach (ARNs, '*' wildcards allowed): a storage on any
    # other bucket is refused up front instead of failing at its first backup.
    allowed_bucket_arns: list[str] = Field(alias="ALLOWED_BUCKET_ARNS", min_length=1)

    _split = field_validator("allowed_bucket_arns", mode="before")(_csv)


class ApiSettings(CommonSettings):
    scheduler_function_name: str = Field(alias="SCHEDULER_FUNCTION_NAME")
    executor_function_arn: str = Field(alias="EXECUTOR_FUNCTION_ARN")
    restore_state_machine_arn: str = Field(alias="RESTORE_STATE_MACHINE_ARN")
    # Asked synchronously whether the server's binary log can be archived, before a plan turns
    # point-in-time recovery on.
    archiver_function_name: str = Field(alias="ARCHIVER_FUNCTION_NAME")
    # The secret holding the key that signs list tokens (adapters/pagination.py).
    page_token_key_secret_arn: str = Field(alias="PAGE_TOKEN_KEY_SECRET_ARN")


class SchedulerSettings(CommonSettings):
    schedule_group: str = Field(alias="SCHEDULE_GROUP")
    scheduler_role_arn: str = Field(alias="SCHEDULER_ROLE_ARN")
    schedule_dlq_arn: str = Field(alias="SCHEDULE_DLQ_ARN")
    executor_function_arn: str = Field(alias="EXECUTOR_FUNCTION_ARN")
    archiver_function_arn: str = Field(alias="ARCHIVER_FUNCTION_ARN")


class ExecutorSettings(CommonSettings):
    db_secret_arn: str = Field(alias="DB_SECRET_ARN")
    db_names: list[str] = Field(alias="PLATFORM_DB_NAMES", min_length=1)
    # The default bus: the retention rule and any operator's own rules listen there.
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME")

    _split_names = field_validator("db_names", mode="before")(_csv)


class ArchiverSettings(CommonSettings):
    db_secret_arn: str = Field(alias="DB_SECRET_ARN")


class RetentionSettings(CommonSettings):
    # Pre-restore safety backups sit outside the plan's count; they age out after this many days.
    safety_backup_retention_days: int = Field(default=7, ge=1, alias="SAFETY_BACKUP_RETENTION_DAYS")


class RestoreSettings(ExecutorSettings):
    """The restore's safety backup is a backup: it needs what the executor needs."""


class MonitorSettings(CommonSettings):
    pass


class Settings(
    ApiSettings, SchedulerSettings, ExecutorSettings, ArchiverSettings, RetentionSettings
):
    """Every setting at once: the local stack and the tests, which host all the functions."""


S = TypeVar("S", bound=CommonSettings)


def load(model: type[S], env: Mapping[str, str] | None = None) -> S:
    """The settings ``model`` names, from the environment; fails naming each missing variable."""
    source = os.environ if env is None else env
    try:
        return model.model_validate({k: v for k, v in source.items() if v != ""})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = model.model_fields.get(str(error["loc"][0])) if error["loc"] else None
            name = (field.alias if field else None) or ".".join(map(str, error["loc"]))
            problems.append(
                f"{name} is not set" if error["type"] == "missing" else f"{name}: {error['msg']}"
            )
        raise MissingSettings(
            f"{model.__name__}: " + "; ".join(problems) + " (set by template.yaml when deployed)"
        ) from None
