"""The backup plan of the platform database, with every rule of the product documentation.

Field names are the API's (camelCase): the console and the CLI are written against them, and one
set of names from the request to the record keeps the error paths (``policy.executionTime``) true.
Pydantic checks types and single-field ranges; ``check_plan_rules`` checks the rules that span
fields and names the field to fix.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from platform_backup.domain.point_in_time import PointInTime
from platform_backup.domain.storage import StorageRole
from platform_backup.errors import FieldError, ValidationFailed

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")


StorageId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class Cycle(StrEnum):
    WEEKLY = "weekly"
    DAILY = "daily"
    HOURLY = "hourly"


class PlanState(StrEnum):
    ENABLED = "enabled"
    PAUSED = "paused"


def _hhmm(value: str | None) -> str | None:
    if value is not None and not _HHMM.match(value):
        raise ValueError(f"'{value}' is not a time of day: use HH:MM from 00:00 to 23:59")
    return value


def _zone(value: str) -> str:
    # Only what zoneinfo cannot load is refused, so links and legacy aliases ("Asia/Calcutta")
    # still pass. (Listing every zone up front cost 18 ms of each cold start.)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"'{value}' is not an IANA time zone: use a name such as 'UTC' or 'Asia/Shanghai'"
        ) from None
    return value


def zone_of_offset(start: datetime) -> str | None:
    """The fixed-offset zone of a start time's own offset: ``Etc/GMT-8`` for ``+08:00`` (the
    ``Etc`` names invert the sign), ``UTC`` for ``+00:00``; None when no IANA zone has that
    offset (not a whole hour, or beyond -12..+14)."""
    offset = start.utcoffset() or timedelta(0)
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    if rest or not -12 <= hours <= 14:
        return None
    if hours == 0:
        return "UTC"
    return f"Etc/GMT{-hours:+d}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class Policy(_Model):
    cycle: Cycle = Field(description="weekly, daily or hourly")
    weekdays: list[Weekday] | None = Field(
        default=None, description="weekly only: the days to run on, MON..SUN"
    )
    executionTime: Annotated[str | None, AfterValidator(_hhmm)] = Field(
        default=None, description="weekly and daily: the time of day HH:MM, read in timezone"
    )
    startTime: AwareDatetime = Field(
        description="an instant with an offset; the first run is the first match at or after it"
    )
    timezone: Annotated[str, AfterValidator(_zone)] = Field(
        default="UTC",
        description=(
            "IANA time zone the weekdays and times are read in; when absent, the start time's "
            "own offset as a fixed zone (Etc/GMT-8 for +08:00), and the plan shows the one used"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _zone_of_start_time(cls, data: Any) -> Any:
        # A plan written as "00:30 from 2026-12-01T00:00+08:00" means 00:30 at +08:00, not UTC.
        if not isinstance(data, dict) or data.get("timezone") is not None:
            return data
        start = data.get("startTime")
        if isinstance(start, str):
            try:
                start = datetime.fromisoformat(start)
            except ValueError:
                return data  # the startTime field reports it
        zone = zone_of_offset(start) if isinstance(start, datetime) and start.tzinfo else None
        # Without a zone the field stays unset, and check_plan_rules asks for it.
        return data if zone is None else {**data, "timezone": zone}

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class LocalRetention(_Model):
    mode: Literal["count", "days"]
    value: int = Field(ge=1, le=100_000, description="copies to keep, or days to keep them")


class RemoteRetention(_Model):
    mode: Literal["permanent", "count", "days"]
    value: int | None = Field(
        default=None, ge=1, le=100_000, description="absent for permanent; >= 1 otherwise"
    )


class Retention(_Model):
    local: LocalRetention
    remote: RemoteRetention | None = Field(
        default=None, description="required exactly when remoteSync is true"
    )


class PlanSpec(_Model):
    """What a client sends to create or replace the plan."""

    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=1024)
    dataCenter: str | None = Field(default=None, max_length=128)
    objectType: Literal["PlatformDatabase"] = "PlatformDatabase"
    localStorageIds: list[StorageId] = Field(
        description="one or two local storages: the first is primary, the second its failover"
    )
    remoteSync: bool = False
    remoteStorageId: StorageId | None = None
    policy: Policy
    retention: Retention
    pointInTime: PointInTime | None = Field(
        default=None, description="archive the binary log to restore to any second; off if absent"
    )


class Plan(PlanSpec):
    """The stored plan as the API returns it."""

    id: str
    state: PlanState = PlanState.ENABLED
    createdAt: datetime
    updatedAt: datetime
    revision: int = Field(default=1, description="increases with every change of the plan")


def stand_in_plan(plan_id: str, local_storage_ids: list[str], now: datetime) -> Plan:
    """Where the safety backup goes before an in-place restore of a backup whose plan is gone:
    the backup's own local storages (primary, then failover), no remote copy, never scheduled."""
    return Plan(
        id=plan_id,
        name=f"deleted plan {plan_id}",
        localStorageIds=local_storage_ids[:2],
        policy=Policy(cycle=Cycle.DAILY, executionTime="00:00", startTime=now),
        retention=Retention(local=LocalRetention(mode="days", value=1)),
        state=PlanState.PAUSED,
        createdAt=now,
        updatedAt=now,
    )


StorageUse = Literal["primary", "failover", "remote"]


class PlanStorage(BaseModel):
    """A storage the plan uses, by name and with its room, so a reader needs no second call."""

    id: str
    use: StorageUse
    name: str | None = Field(description="None when the storage is no longer registered")
    role: StorageRole | None = None
    bucket: str | None = None
    capacityBytes: int | None = None
    usedBytes: int | None = None
    availableBytes: int | None = None


class PlanView(Plan):
    """The plan as the API answers it: the stored plan and the storages it names."""

    storages: list[PlanStorage] = Field(
        default_factory=list, description="primary, failover (if any), then remote (if any)"
    )


def check_plan_rules(spec: PlanSpec) -> None:
    """The rules that span fields. Raises ValidationFailed naming every field to fix."""
    errors: list[FieldError] = []
    ids = spec.localStorageIds
    if not 1 <= len(ids) <= 2:
        errors.append(
            FieldError(
                "localStorageIds",
                f"give one or two local storages (primary, then failover), not {len(ids)}",
            )
        )
    elif len(set(ids)) != len(ids):
        errors.append(FieldError("localStorageIds", "the failover must differ from the primary"))
    if spec.remoteSync and not spec.remoteStorageId:
        errors.append(FieldError("remoteStorageId", "required when remoteSync is true"))
    if not spec.remoteSync and spec.remoteStorageId:
        errors.append(
            FieldError("remoteStorageId", "set remoteSync to true, or leave remoteStorageId out")
        )
    if spec.remoteSync and spec.retention.remote is None:
        errors.append(FieldError("retention.remote", "required when remoteSync is true"))
    if not spec.remoteSync and spec.retention.remote is not None:
        errors.append(
            FieldError("retention.remote", "only allowed when remoteSync is true: leave it out")
        )
    remote = spec.retention.remote
    if remote is not None:
        if remote.mode == "permanent" and remote.value is not None:
            errors.append(FieldError("retention.remote.value", "leave it out for permanent"))
        if remote.mode != "permanent" and remote.value is None:
            errors.append(
                FieldError("retention.remote.value", f"required for {remote.mode}: 1 or more")
            )
    policy = spec.policy
    if "timezone" not in policy.model_fields_set:
        errors.append(
            FieldError(
                "policy.timezone",
                f"the start time's offset ({policy.startTime.strftime('%z')}) is no whole-hour "
                "zone: give the timezone, e.g. 'Asia/Kolkata'",
            )
        )
    if policy.cycle == Cycle.WEEKLY.value:
        if not policy.weekdays:
            errors.append(
                FieldError("policy.weekdays", "weekly needs one or more weekdays (MON..SUN)")
            )
        elif len(set(policy.weekdays)) != len(policy.weekdays):
            errors.append(FieldError("policy.weekdays", "each weekday once"))
    elif policy.weekdays:
        errors.append(FieldError("policy.weekdays", f"only for weekly, not {policy.cycle}"))
    if policy.cycle in (Cycle.WEEKLY.value, Cycle.DAILY.value) and policy.executionTime is None:
        errors.append(
            FieldError("policy.executionTime", f"{policy.cycle} needs an execution time HH:MM")
        )
    if policy.cycle == Cycle.HOURLY.value and policy.executionTime is not None:
        errors.append(
            FieldError(
                "policy.executionTime",
                "hourly runs at the start time's minute: leave executionTime out",
            )
        )
    if errors:
        raise ValidationFailed.of_many(errors)
