"""Restores of backups, in the API's shapes, and the rules of naming their targets."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.frame_index import FrameIndex, UnknownReads
from platform_backup.errors import FieldError, ValidationFailed

RestoreMode = Literal["new-database", "in-place"]
RestoreSource = Literal["auto", "local", "remote"]
RestoreStatus = Literal["running", "succeeded", "rolled-back", "failed"]
RestorePhase = Literal[
    "validate", "safety-backup", "restore", "replay", "verify", "finalize", "rollback"
]
FINAL_RESTORE_STATUSES: frozenset[str] = frozenset({"succeeded", "rolled-back", "failed"})

# MariaDB's identifier limit; a suffix pushing a name past it is refused up front.
MAX_DATABASE_NAME = 64
SUFFIX_PATTERN = r"^[A-Za-z0-9_$]{1,40}$"
_SUFFIX = re.compile(SUFFIX_PATTERN)
# database.table, as the backup's manifest names them (a table's name may hold a dot; a
# database's may not here).
TableName = Annotated[str, StringConstraints(pattern=r"^[^.\s]{1,64}\.\S{1,64}$", max_length=129)]
MAX_TABLES = 1000
MAX_PARALLELISM = 16


class RestoreTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: RestoreMode
    databaseSuffix: str | None = Field(
        default=None,
        pattern=SUFFIX_PATTERN,
        description="new-database: each database restored as <name><suffix> "
        "(default _restored_<UTC yyyymmddHHMMSS>)",
    )


class RestoreRequest(BaseModel):
    """A restore as the service starts it; the API builds it from one of the requests below."""

    model_config = ConfigDict(extra="forbid")

    target: RestoreTarget
    source: RestoreSource = "auto"
    safetyBackup: bool | None = Field(
        default=None,
        description="in-place: of the platform database always taken (false is refused); "
        "onto another server (targetSecretArn) it cannot be: set it to false",
    )
    targetSecretArn: str | None = Field(
        default=None, min_length=1, max_length=2048, description="restore onto another server"
    )
    confirm: str | None = Field(
        default=None,
        max_length=256,
        description="in-place: the plan's name, or the backup's id when its plan is gone",
    )
    parallelism: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PARALLELISM,
        description="connections a backup with a table index is restored on at once "
        "(default: the restore function's CPUs, at most 4)",
    )
    tables: list[TableName] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TABLES,
        description="restore only these tables or views (database.name; a view comes with the "
        "tables and views it reads), into new databases or in place (only they are replaced), "
        "reading only their part of the backup (backups with a table index)",
    )


class InPlaceTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["in-place"] = "in-place"


class InPlaceRestoreRequest(RestoreRequest):
    """The body of the in-place routes: ``target`` may be left out, ``confirm`` may not."""

    target: InPlaceTarget = Field(default_factory=InPlaceTarget)  # type: ignore[assignment]
    confirm: str = Field(
        min_length=1,
        max_length=256,
        description="the plan's name, or the backup's id when its plan is gone",
    )

    def as_restore(self) -> RestoreRequest:
        return RestoreRequest.model_validate(
            {**self.model_dump(exclude={"target"}), "target": {"mode": "in-place"}}
        )


class _PlanChoice(BaseModel):
    """Which backup of a plan: the newest before a time, or the state at an instant."""

    before: datetime | None = Field(
        default=None, description="restore the newest backup taken before this time"
    )
    pointInTime: datetime | None = Field(
        default=None,
        description="restore the databases as they were at this instant (ISO 8601 with offset): "
        "a full backup, then the archived binary log replayed up to it",
    )

    @field_validator("pointInTime")
    @classmethod
    def _has_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("needs a UTC offset (e.g. 2026-12-01T10:15:30+08:00 or ...Z)")
        return value

    def check_one_way(self) -> None:
        """``before`` or ``pointInTime``: exactly one says what to restore."""
        # (``tables`` is the restore request's, which every plan choice is mixed into)
        if getattr(self, "tables", None) is not None and self.pointInTime is not None:
            raise ValidationFailed.of(
                "tables", "chosen tables are restored from a backup, not to a point in time"
            )
        if (self.before is None) == (self.pointInTime is None):
            raise ValidationFailed.of_many(
                [
                    FieldError(name, "set exactly one of before and pointInTime")
                    for name in ("before", "pointInTime")
                ]
            )


class PlanRestoreRequest(RestoreRequest, _PlanChoice):
    pass


class InPlacePlanRestoreRequest(InPlaceRestoreRequest, _PlanChoice):
    def as_plan_restore(self) -> PlanRestoreRequest:
        return PlanRestoreRequest.model_validate(
            {**self.model_dump(exclude={"target"}), "target": {"mode": "in-place"}}
        )


class RestoreReplay(BaseModel):
    """The binary-log part of a point-in-time restore: which archived segments, from where in
    the first, and every event before ``stopBefore`` (the second after the instant)."""

    segments: list[int] = Field(description="sequences of the archived segments replayed")
    files: list[str] = Field(default_factory=list, description="their binary-log files")
    roles: list[str] = Field(
        default_factory=list, description="the copy of each that validation checked"
    )
    startPosition: int
    stopBefore: datetime
    bytesTotal: int = 0
    applied: bool = Field(default=False, description="every segment was replayed")


class RestoreProgress(BaseModel):
    bytesApplied: int = 0
    bytesTotal: int = 0
    percent: float = 0.0
    etaSeconds: float | None = None


class Restore(BaseModel):
    id: str
    backupId: str
    planId: str
    status: RestoreStatus = "running"
    phase: RestorePhase = "validate"
    progress: RestoreProgress = Field(default_factory=RestoreProgress)
    target: RestoreTarget
    source: RestoreSource = "auto"
    safetyBackup: bool = False
    targetSecretArn: str | None = None
    databases: dict[str, str] = Field(
        default_factory=dict, description="backed-up database -> restored database"
    )
    safetyBackupId: str | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    rowCounts: dict[str, int] = Field(default_factory=dict)
    requestedBy: str | None = None
    sourceCopy: BackupCopy | None = Field(
        default=None, description="the copy Validate checked and Restore reads"
    )
    sourceVersion: str | None = Field(default=None, description="its S3 object version")
    pointInTime: datetime | None = Field(
        default=None, description="the instant restored to (a full backup, then the replay)"
    )
    replay: RestoreReplay | None = None
    tables: list[str] | None = Field(
        default=None, description="only these tables were restored (database.table)"
    )
    bytesRead: int | None = Field(
        default=None, description="bytes of the backup's object read from storage"
    )
    parallelism: int | None = Field(
        default=None, description="connections asked for (None: the restore function's default)"
    )
    targetTouched: bool = Field(
        default=False, description="the target received statements: a failure rolls back"
    )
    clientExitCode: int | None = None
    dumpCompleted: bool = Field(default=False, description="the completion line was applied")
    startedAt: datetime
    updatedAt: datetime | None = None
    finishedAt: datetime | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_RESTORE_STATUSES

    @property
    def in_place(self) -> bool:
        return self.target.mode == "in-place"


def default_suffix(now: datetime) -> str:
    return "_restored_" + now.strftime("%Y%m%d%H%M%S")


def target_names(databases: list[str], target: RestoreTarget, now: datetime) -> dict[str, str]:
    """Backed-up database -> the database it is restored into."""
    if target.mode == "in-place":
        return {name: name for name in databases}
    suffix = target.databaseSuffix or default_suffix(now)
    if not _SUFFIX.match(suffix):
        raise ValidationFailed.of("target.databaseSuffix", "letters, digits, _ and $ only")
    names = {name: name + suffix for name in databases}
    too_long = [
        FieldError("target.databaseSuffix", f"{new} is longer than {MAX_DATABASE_NAME} characters")
        for new in names.values()
        if len(new) > MAX_DATABASE_NAME
    ]
    if too_long:
        raise ValidationFailed.of_many(too_long)
    return names


def check_confirmation(request: RestoreRequest, plan_name: str | None, backup_id: str) -> None:
    """In place overwrites the live databases: the request names the plan (or, when the plan
    is gone, the backup) to say it means it."""
    if request.target.mode != "in-place":
        return
    expected, what = (plan_name, "the plan's name") if plan_name else (backup_id, "the backup's id")
    if not request.confirm:
        raise ValidationFailed.of(
            "confirm", f"in-place overwrites the live databases: set it to {what}"
        )
    if request.confirm != expected:
        raise ValidationFailed.of("confirm", f"does not match {what}")


def check_tables(request: RestoreRequest, index: FrameIndex | None) -> dict[str, list[str]]:
    """What a restore of chosen tables makes, by database, once the backup's table index
    (``index``; None: the backup has none) has each: a table, or a view with what it reads (the
    tables, and the views with theirs). Into new databases, or in place (confirmed as any
    in-place restore: only those are replaced). A view whose reads the backup does not record is
    refused naming the table to choose: ZStack's ``...VO`` views read their ``...EO`` tables."""
    if request.tables is None:
        return {}
    if index is None:
        raise ValidationFailed.of(
            "tables", "this backup has no table index (made before it existed): restore it whole"
        )
    try:
        tables, views = index.needs(request.tables)
    except UnknownReads as exc:
        blind = str(exc.args[0]).split(", ")
        indexed = set(index.tables())
        hints = [f"{name[:-2]}EO" for name in blind if f"{name[:-2]}EO" in indexed]
        hint = f" ({', '.join(hints[:20])})" if hints else ""
        raise ValidationFailed.of(
            "tables",
            f"views, not tables: {', '.join(blind[:20])}: this backup does not record what they "
            f"read (made before it did): choose the tables they read{hint}",
        ) from None
    except KeyError as exc:
        unknown = str(exc.args[0]).split(", ")
        raise ValidationFailed.of(
            "tables", f"not in the backup: {', '.join(unknown[:20])}"
        ) from None
    chosen: dict[str, list[str]] = {}
    for name in (*tables, *views):
        database, table = name.split(".", 1)
        chosen.setdefault(database, []).append(table)
    return chosen


def wants_safety_backup(request: RestoreRequest) -> bool:
    """In place over the platform database always takes a safety backup first; over another
    server it cannot (the safety backup is a backup of the platform database)."""
    if request.target.mode != "in-place":
        return False
    if request.targetSecretArn:
        if request.safetyBackup is not False:
            raise ValidationFailed.of(
                "safetyBackup",
                "a safety backup can only be taken of the platform database: set it to false "
                "to restore in place onto another server",
            )
        return False
    if request.safetyBackup is False:
        raise ValidationFailed.of(
            "safetyBackup",
            "an in-place restore of the platform database always takes a safety backup "
            "first: leave it out",
        )
    return True


def copies_for(backup: Backup, source: str) -> list[BackupCopy]:
    """The copies a restore may read, in the order it tries them."""
    local, remote = backup.local_copy(), backup.remote_copy()
    wanted = {"local": [local], "remote": [remote], "auto": [local, remote]}[source]
    return [copy for copy in wanted if copy is not None]
