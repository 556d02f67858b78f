"""Plan executions and the backups they make, in the API's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from platform_backup.domain.point_in_time import BinlogPosition

Trigger = Literal["schedule", "manual", "pre-restore"]
ExecutionStatus = Literal["running", "succeeded", "partially-succeeded", "failed", "skipped"]
FINAL_STATUSES: frozenset[str] = frozenset(
    {"succeeded", "partially-succeeded", "failed", "skipped"}
)
Phase = Literal["queued", "preflight", "dumping", "replicating", "recording", "done"]


class ExecutionProgress(BaseModel):
    bytesDumped: int = 0
    compressedBytes: int = 0
    tablesDone: int = 0
    tablesTotal: int = 0
    percent: float = 0.0
    etaSeconds: float | None = None


class Execution(BaseModel):
    id: str
    planId: str
    trigger: Trigger
    scheduledTime: datetime | None = None
    status: ExecutionStatus = "running"
    phase: Phase = "queued"
    progress: ExecutionProgress = Field(default_factory=ExecutionProgress)
    storageId: str | None = None
    failoverReason: str | None = None
    error: str | None = None
    reason: str | None = Field(default=None, description="why a run was skipped")
    backupId: str | None = None
    requestedBy: str | None = None
    startedAt: datetime
    updatedAt: datetime | None = None
    finishedAt: datetime | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


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
