"""Whether the protected server can be archived at an interval: binary logging on, in row
format, and binary logs kept on the server longer than the interval. The API asks before it
turns point-in-time recovery on, and answers 422 naming the setting to change."""

from __future__ import annotations

from dataclasses import dataclass

from platform_backup.domain.point_in_time import ARCHIVE_INTERVAL_DEFAULT
from platform_backup.services.ports import BinlogServerStatus, BinlogSource, PlanLookup


@dataclass(frozen=True)
class Problem:
    setting: str  # "log_bin" | "binlog_format" | "binlog_expire_logs_seconds"
    message: str


def problems(status: BinlogServerStatus, interval_minutes: int) -> list[Problem]:
    if not status.log_bin:
        return [
            Problem(
                "log_bin",
                "binary logging is off on the server: start it with log_bin (and"
                " binlog_format=ROW) to archive the binary log",
            )
        ]
    found: list[Problem] = []
    if status.binlog_format != "ROW":
        found.append(
            Problem(
                "binlog_format",
                f"binlog_format is {status.binlog_format}: only ROW replays safely; set"
                " binlog_format=ROW",
            )
        )
    interval = interval_minutes * 60
    if status.expire_seconds and status.expire_seconds <= interval:
        found.append(
            Problem(
                "binlog_expire_logs_seconds",
                f"the server keeps binary logs {status.expire_seconds} s, not longer than the"
                f" archive interval ({interval} s): set binlog_expire_logs_seconds well above it",
            )
        )
    return found


class ArchiveCheck:
    def __init__(self, source: BinlogSource, plans: PlanLookup) -> None:
        self._source = source
        self._plans = plans

    def check(self, plan_id: str | None, interval_minutes: int | None) -> list[Problem]:
        if interval_minutes is None and plan_id is not None:
            plan = self._plans.get(plan_id)
            if plan.pointInTime is not None:
                interval_minutes = plan.pointInTime.archiveIntervalMinutes
        return problems(self._source.status(), interval_minutes or ARCHIVE_INTERVAL_DEFAULT)
