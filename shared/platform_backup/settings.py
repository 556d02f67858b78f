"""Every setting the functions read, validated once at cold start. Nothing else reads os.environ.

Defaults are the local stack's (``make run``); the template sets each one for the deployment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    region: str = Field(default="us-east-1", alias="AWS_REGION")
    storages_table: str = Field(default="pdb-storages", alias="STORAGES_TABLE")
    plans_table: str = Field(default="pdb-plans", alias="PLANS_TABLE")
    locks_table: str = Field(default="pdb-locks", alias="LOCKS_TABLE")
    executions_table: str = Field(default="pdb-executions", alias="EXECUTIONS_TABLE")
    backups_table: str = Field(default="pdb-backups", alias="BACKUPS_TABLE")
    restores_table: str = Field(default="pdb-restores", alias="RESTORES_TABLE")

    schedule_group: str = Field(default="pdb-schedules", alias="SCHEDULE_GROUP")
    scheduler_role_arn: str = Field(
        default="arn:aws:iam::123456789012:role/pdb-scheduler", alias="SCHEDULER_ROLE_ARN"
    )
    schedule_dlq_arn: str = Field(
        default="arn:aws:sqs:us-east-1:123456789012:pdb-schedule-dlq", alias="SCHEDULE_DLQ_ARN"
    )
    executor_function_arn: str = Field(
        default="arn:aws:lambda:us-east-1:123456789012:function:pdb-executor",
        alias="EXECUTOR_FUNCTION_ARN",
    )
    scheduler_function_name: str = Field(default="pdb-scheduler", alias="SCHEDULER_FUNCTION_NAME")
    restore_state_machine_arn: str = Field(
        default="arn:aws:states:us-east-1:123456789012:stateMachine:pdb-restore",
        alias="RESTORE_STATE_MACHINE_ARN",
    )
    # The default bus: the retention rule and any operator's own rules listen there.
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME")

    # The two local buckets the template creates, so registering the default storages needs no
    # lookup of generated bucket names.
    primary_bucket: str = Field(default="pdb-primary", alias="PRIMARY_BUCKET")
    fallback_bucket: str = Field(default="pdb-fallback", alias="FALLBACK_BUCKET")

    # Buckets the deployment's roles may reach (ARNs, '*' wildcards allowed). The local stack
    # allows any; a deployment lists exactly the buckets its IAM policies grant.
    allowed_bucket_arns: list[str] = Field(default=["*"], alias="ALLOWED_BUCKET_ARNS")

    db_secret_arn: str = Field(default="pdb-platform-db", alias="DB_SECRET_ARN")
    db_names: list[str] = Field(default=["zstack", "zstack_rest"], alias="PLATFORM_DB_NAMES")

    # Pre-restore safety backups sit outside the plan's count; they age out after this many days.
    safety_backup_retention_days: int = Field(default=7, ge=1, alias="SAFETY_BACKUP_RETENTION_DAYS")

    _split = field_validator("allowed_bucket_arns", "db_names", mode="before")(_csv)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        return cls.model_validate({k: v for k, v in source.items() if v != ""})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once (cold start)."""
    return Settings.from_env()
