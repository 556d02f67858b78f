"""The API's side of restores: start one (under the plan's lease, the backup held for reading,
then the workflow started), list them, read one. The workflow does the rest (restore_steps.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from platform_backup.domain.backup import Backup
from platform_backup.domain.frame_index import BadFrameIndex, FrameIndex
from platform_backup.domain.recovery import BackupStart, ReplayPlan, plan_replay
from platform_backup.domain.restore import (
    PlanRestoreRequest,
    Restore,
    RestoreProgress,
    RestoreReplay,
    RestoreRequest,
    check_confirmation,
    check_tables,
    copies_for,
    target_names,
    wants_safety_backup,
)
from platform_backup.errors import DomainError, FieldError, Unprocessable
from platform_backup.services.ports import (
    ArchiveRepository,
    BackupReads,
    BackupSource,
    Page,
    PlanLookup,
    RestoreRepository,
    Workflow,
)
from platform_backup.services.restore_budget import RestoreBudget
from platform_backup.services.restore_records import RestoreRecords


class RestoreRequests:
    def __init__(
        self,
        restores: RestoreRepository,
        records: RestoreRecords,
        backups: BackupReads,
        plans: PlanLookup,
        workflow: Workflow,
        clock: Callable[[], datetime],
        archive: ArchiveRepository,
        budget: RestoreBudget,
        source: BackupSource | None = None,
    ) -> None:
        self._restores = restores
        self._records = records
        self._backups = backups
        self._plans = plans
        self._workflow = workflow
        self._clock = clock
        self._archive = archive
        self._budget = budget
        self._source = source

    def get(self, restore_id: str) -> Restore:
        return self._restores.get(restore_id)

    def page(self, limit: int, token: str | None) -> Page[Restore]:
        return self._restores.page(limit, token)

    def start_before(
        self, plan_id: str, request: PlanRestoreRequest, requested_by: str | None
    ) -> Restore:
        """Restores the plan's newest backup taken before ``request.before``, or the state at
        ``request.pointInTime``."""
        request.check_one_way()
        self._plans.get(plan_id)
        if request.pointInTime is not None:
            return self._start_at(plan_id, request, request.pointInTime, requested_by)
        before = request.before
        assert before is not None  # nosec B101  # narrows a type, not a check
        batch = self._backups.read_range(plan_id, None, before)
        for stored in batch.backups:
            if copies_for(stored.value, request.source):
                plain = RestoreRequest.model_validate(
                    request.model_dump(exclude={"before", "pointInTime"})
                )
                return self.start(stored.value.id, plain, requested_by)
        raise Unprocessable(
            f"plan '{plan_id}' has no backup with a {request.source} copy taken before "
            f"{before.isoformat()}"
        )

    def _start_at(
        self, plan_id: str, request: PlanRestoreRequest, target: datetime, requested_by: str | None
    ) -> Restore:
        """A full backup at or before ``target`` whose window reaches it, then the replay of the
        archived binary log up to it. Outside every window: 409 naming them, nothing started."""
        # Every backup: a refusal names every window, also those after the instant.
        batch = self._backups.read_range(plan_id, None, None)
        starts = [
            BackupStart(b.id, b.createdAt, b.binlog.file, b.binlog.position, b.binlog.observedAt)
            for stored in batch.backups
            if (b := stored.value).binlog is not None and copies_for(b, request.source)
        ]
        plan = plan_replay(
            target,
            starts,
            self._archive.segments(plan_id),
            self._archive.breaks(plan_id),
            self._clock(),
        )
        plain = RestoreRequest.model_validate(request.model_dump(exclude={"before", "pointInTime"}))
        return self.start(plan.backup_id, plain, requested_by, replay=plan)

    def start(
        self,
        backup_id: str,
        request: RestoreRequest,
        requested_by: str | None,
        replay: ReplayPlan | None = None,
    ) -> Restore:
        backup = self._backups.get(backup_id)
        plan = self._plans.find(backup.planId)
        check_confirmation(request, plan.name if plan else None, backup.id)
        safety = wants_safety_backup(request)
        if not copies_for(backup, request.source):
            raise Unprocessable(f"backup '{backup_id}' has no available {request.source} copy")
        index = self._index(backup, request)
        chosen = check_tables(request, index)
        # A restore of chosen tables applies only their frames (and the header's).
        to_apply = (
            sum(frame.raw_length for frame in index.selection(request.tables))
            if chosen and index is not None and request.tables
            else backup.rawBytes
        )
        too_long = self._budget.step_refusal(backup.planId, to_apply)
        if too_long is not None:
            # Refused before the lease or any record: nothing started, nothing touched.
            message = (
                f"backup {backup.id} cannot be restored within the restore function's time: "
                f"{too_long}. Restore it by hand (README) or raise the function's timeout"
            )
            raise Unprocessable(message, [FieldError("backupId", message)])
        now = self._clock()
        names = target_names(backup.databases, request.target, now)
        if chosen:
            # Only the chosen tables' databases are created.
            names = {old: new for old, new in names.items() if old in chosen}
        target = request.target
        if target.mode == "new-database" and not target.databaseSuffix:
            first = next(iter(names.items()), None)
            suffix = first[1][len(first[0]) :] if first else None
            target = target.model_copy(update={"databaseSuffix": suffix})
        restore = Restore(
            id=uuid.uuid4().hex,
            backupId=backup.id,
            planId=backup.planId,
            target=target,
            source=request.source,
            safetyBackup=safety,
            targetSecretArn=request.targetSecretArn,
            databases=names,
            requestedBy=requested_by,
            # What the Restore step applies: the chosen tables' frames, else the dump.
            progress=RestoreProgress(bytesTotal=to_apply),
            pointInTime=replay.target if replay else None,
            replay=_replay_record(replay) if replay else None,
            tables=list(dict.fromkeys(request.tables)) if request.tables else None,
            warnings=_what_comes_along(request.tables, chosen),
            parallelism=request.parallelism,
            startedAt=now,
            updatedAt=now,
        )
        self._records.take_lease(restore)
        created = False
        try:
            self._records.hold(backup.id, restore)
            self._restores.create(restore)
            created = True
            self._workflow.start(restore.id)
        except BaseException as exc:
            self._records.release(restore)
            if created:
                message = exc.message if isinstance(exc, DomainError) else str(exc)
                self._records.final(restore, status="failed", error=message)
            raise
        return restore

    def _index(self, backup: Backup, request: RestoreRequest) -> FrameIndex | None:
        """The backup's frame index (read from its first copy's manifest); None when it has
        none. Read only for a request that chooses tables."""
        if request.tables is None or self._source is None:
            return None
        copy = copies_for(backup, request.source)[0]
        try:
            return FrameIndex.from_manifest(self._source.manifest(copy))
        except BadFrameIndex:
            return None


def _replay_record(plan: ReplayPlan) -> RestoreReplay:
    return RestoreReplay(
        segments=[s.sequence for s in plan.segments],
        files=[s.file for s in plan.segments],
        startPosition=plan.start_position,
        stopBefore=plan.stop_before,
        bytesTotal=plan.replay_bytes,
    )


def _what_comes_along(tables: list[str] | None, chosen: dict[str, list[str]]) -> list[str]:
    """A note naming what a restore of chosen views makes beyond the names asked for."""
    asked = set(tables or [])
    along = [f"{db}.{name}" for db, names in chosen.items() for name in names]
    along = [name for name in along if name not in asked]
    if not along:
        return []
    return [f"the chosen views come with what they read, restored too: {', '.join(along[:20])}"]
