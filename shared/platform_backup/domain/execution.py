"""Plan executions (a run of the plan, with its live progress), in the API's shapes; the backups
they make are in domain/backup.py."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from platform_backup.domain.trigger import Trigger

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
