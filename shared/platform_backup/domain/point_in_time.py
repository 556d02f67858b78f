"""Point-in-time recovery as a plan and a backup carry it: the plan's switch and archive interval,
and the binary-log position a full backup was taken at. Kept apart from ``recovery`` so that the
plan and execution models load without the archive's records."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

ARCHIVE_INTERVAL_DEFAULT = 5


class PointInTime(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="archive the binary log between backups")
    archiveIntervalMinutes: int = Field(
        default=ARCHIVE_INTERVAL_DEFAULT,
        ge=1,
        le=15,
        description="how often the binary log is archived, 1 to 15 minutes",
    )


def binlog_position(found: dict[str, object] | None) -> BinlogPosition | None:
    """The position a dump's head gave, if it gave a whole one."""
    if not found or not found.get("file") or found.get("position") is None:
        return None
    if not found.get("observedAt"):
        return None
    return BinlogPosition.model_validate(found)


class BinlogPosition(BaseModel):
    """Where in the server's binary log a full backup's snapshot was taken."""

    file: str
    position: int
    gtid: str | None = None
    # The function's clock once the snapshot was taken (the dump's head read): a recovery from
    # this backup reaches instants at or after it.
    observedAt: datetime
