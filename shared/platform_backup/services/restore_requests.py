"""The API's side of restores: start one (under the plan's lease, the backup held for reading,
then the workflow started), list them, read one. The workflow does the rest (restore_steps.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from platform_backup.domain.restore import (
    PlanRestoreRequest,
    Restore,
    RestoreProgress,
    RestoreRequest,
    check_confirmation,
    copies_for,
    target_names,
    wants_safety_backup,
)
from platform_backup.errors import DomainError, Unprocessable
from platform_backup.services.ports import (
    BackupReads,
    Page,
    PlanLookup,
    RestoreRepository,
    Workflow,
)
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
    ) -> None:
        self._restores = restores
        self._records = records
        self._backups = backups
        self._plans = plans
        self._workflow = workflow
        self._clock = clock

    def get(self, restore_id: str) -> Restore:
        return self._restores.get(restore_id)

    def page(self, limit: int, token: str | None) -> Page[Restore]:
        return self._restores.page(limit, token)

    def start_before(
        self, plan_id: str, request: PlanRestoreRequest, requested_by: str | None
    ) -> Restore:
        """Restores the plan's newest backup taken before ``request.before``."""
        self._plans.get(plan_id)
        before = request.before
        batch = self._backups.read_range(plan_id, None, before)
        for stored in batch.backups:
            if copies_for(stored.value, request.source):
                plain = RestoreRequest.model_validate(request.model_dump(exclude={"before"}))
                return self.start(stored.value.id, plain, requested_by)
        raise Unprocessable(
            f"plan '{plan_id}' has no backup with a {request.source} copy taken before "
            f"{before.isoformat()}"
        )

    def start(self, backup_id: str, request: RestoreRequest, requested_by: str | None) -> Restore:
        backup = self._backups.get(backup_id)
        plan = self._plans.find(backup.planId)
        check_confirmation(request, plan.name if plan else None)
        safety = wants_safety_backup(request)
        if not copies_for(backup, request.source):
            raise Unprocessable(f"backup '{backup_id}' has no available {request.source} copy")
        now = self._clock()
        names = target_names(backup.databases, request.target, now)
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
            progress=RestoreProgress(bytesTotal=backup.rawBytes),
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
