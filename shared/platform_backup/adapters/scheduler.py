"""EventBridge Scheduler."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.errors import DependencyFailed
from platform_backup.services.ports import ScheduleSpec


def schedule_request(spec: ScheduleSpec) -> dict[str, Any]:
    """The CreateSchedule/UpdateSchedule request (they take the same fields; an update replaces
    the whole schedule, so a StartDate left out is removed)."""
    request: dict[str, Any] = {
        "Name": spec.name,
        "GroupName": spec.group,
        "ScheduleExpression": spec.expression,
        "ScheduleExpressionTimezone": spec.timezone,
        "State": "ENABLED" if spec.enabled else "DISABLED",
        "Description": spec.description,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": spec.target_arn,
            "RoleArn": spec.role_arn,
            "Input": spec.input,
            "RetryPolicy": {
                "MaximumRetryAttempts": spec.retry_attempts,
                "MaximumEventAgeInSeconds": spec.max_event_age_seconds,
            },
            "DeadLetterConfig": {"Arn": spec.dead_letter_arn},
        },
    }
    if spec.start_date is not None:
        request["StartDate"] = spec.start_date
    return request


class EventBridgeScheduler:
    def __init__(self, region: str) -> None:
        self._region = region

    def _client(self) -> Any:
        return client("scheduler", self._region)

    def upsert(self, spec: ScheduleSpec) -> None:
        request = schedule_request(spec)
        try:
            try:
                self._client().update_schedule(**request)
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                self._client().create_schedule(**request)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyFailed(
                f"the scheduler refused schedule '{spec.name}' ({error_code(exc) or exc}): "
                "the plan was not changed"
            ) from exc

    def delete(self, group: str, name: str) -> None:
        try:
            self._client().delete_schedule(Name=name, GroupName=group)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return
            raise DependencyFailed(f"the scheduler did not delete '{name}'") from exc
        except BotoCoreError as exc:
            raise DependencyFailed(f"the scheduler did not delete '{name}'") from exc

    def names(self, group: str, prefix: str) -> list[str]:
        paginator = self._client().get_paginator("list_schedules")
        return [
            schedule["Name"]
            for page in paginator.paginate(GroupName=group, NamePrefix=prefix)
            for schedule in page.get("Schedules", [])
        ]
