"""The backups executions make, with their copies in each storage, in the API's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from platform_backup.domain.point_in_time import BinlogPosition
from platform_backup.domain.trigger import Trigger

CopyStatus = Literal["available", "pending", "failed", "deleted"]


class BackupCopy(BaseModel):
    storageId: str
    role: Literal["local", "remote"]
    bucket: str
    region: str | None = None
    key: str
    manifestKey: str
    status: CopyStatus = "available"
    bytes: int = 0
    error: str | None = None
    # S3 Object Lock's retain-until date on the copy (as HeadObject showed it after the write):
    # nothing can delete it before then.
    lockedUntil: datetime | None = None


class PrunedCopy(BaseModel):
    """A copy retention (or a delete by hand) removed: kept on the backup so that a pruned remote
    copy is not mistaken for one still missing (which would protect the local copy forever)."""

    storageId: str
    role: Literal["local", "remote"]
    key: str
    prunedAt: datetime


class Backup(BaseModel):
    id: str
    planId: str
    executionId: str
    trigger: Trigger = "schedule"
    createdAt: datetime
    status: Literal["succeeded"] = "succeeded"
    rawBytes: int = 0
    compressedBytes: int = 0
    compression: str = "zstd"
    sha256: str = ""
    databases: list[str] = Field(default_factory=list)
    durationSeconds: float | None = None
    copies: list[BackupCopy] = Field(default_factory=list)
    pruned: list[PrunedCopy] = Field(default_factory=list)
    # A restore reading the backup sets these (through the repository's conditional write);
    # retention and deletes leave the backup alone until readUntil passes, so a restore that
    # dies without clearing them blocks nothing for long.
    readBy: str | None = None
    readUntil: datetime | None = None
    # Where in the server's binary log the snapshot was: a point-in-time window opens here.
    binlog: BinlogPosition | None = None

    def local_copy(self) -> BackupCopy | None:
        return next((c for c in self.copies if c.role == "local" and c.status == "available"), None)

    def remote_copy(self) -> BackupCopy | None:
        return next(
            (c for c in self.copies if c.role == "remote" and c.status == "available"), None
        )
