"""What a restore holds while it runs and how its record changes: the plan's lease and the
backups' read holds (taken, renewed, released), the record saved and made final. Shared by the
API's side (restore_requests.py) and the workflow's steps (restore_steps.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from platform_backup.domain.lease import LeaseLost
from platform_backup.domain.restore import Restore
from platform_backup.errors import Conflict, DomainError
from platform_backup.observability import logger
from platform_backup.services.lease_keeper import LEASE_TTL_SECONDS
from platform_backup.services.ports import BackupReads, Leases, RestoreRepository

# A restore step runs at most the function's 15 minutes; the hold outlives one step with room.
READ_HOLD = timedelta(minutes=20)
# Between two steps nobody renews the lease: the workflow's transition, a Retry's backoff (at most
# 35 s in statemachines/restore.asl.json) and the function's cold start. The lease is handed over
# with this much, which the next step's first renewal brings back to LEASE_TTL_SECONDS; a
# workflow that dies between steps holds the plan this long at most.
HANDOVER_SECONDS = 300.0


class RestoreRecords:
    def __init__(
        self,
        restores: RestoreRepository,
        backups: BackupReads,
        leases: Leases,
        clock: Callable[[], datetime],
    ) -> None:
        self._restores = restores
        self._backups = backups
        self._leases = leases
        self._clock = clock

    def take_lease(self, restore: Restore) -> None:
        """The plan's lease for a new restore; Conflict when another job holds it."""
        taken, found = self._leases.acquire(
            restore.planId,
            restore.id,
            "restore",
            f"restore {restore.id} of backup {restore.backupId}",
            time.time(),
            HANDOVER_SECONDS,  # held until the workflow's first step renews it
        )
        if not taken:
            holder = f"{found.kind} {found.owner}" if found else "another job"
            reason = f" ({found.reason})" if found and found.reason else ""
            raise Conflict(f"the plan is busy: {holder} is running{reason}; try again after it")
        if found is not None and found.kind == "restore":
            self._abandoned(found.owner)

    def _abandoned(self, restore_id: str) -> None:
        """A restore whose workflow died without releasing the lease: marked failed."""
        stale = self._restores.find(restore_id)
        if stale is not None and not stale.final:
            self.final(
                stale,
                status="failed",
                error="the restore workflow stopped in the middle (its lease expired): check "
                f"the databases {', '.join(stale.databases.values())} by hand",
            )

    def hold(self, backup_id: str, restore: Restore) -> None:
        """Keeps retention and deletes off the backup while the restore may read it."""
        self._backups.hold_for_read(backup_id, restore.id, self._clock() + READ_HOLD)

    def renew(self, restore: Restore) -> None:
        self._leases.renew(restore.planId, restore.id, time.time(), LEASE_TTL_SECONDS)
        until = self._clock() + READ_HOLD
        for backup_id in (restore.backupId, restore.safetyBackupId):
            if backup_id:
                self._backups.hold_for_read(backup_id, restore.id, until)

    def hand_over(self, restore: Restore) -> None:
        """At the end of a step that leaves the workflow running: the lease is held across the
        gap to the next step. A lease released (the restore ended) or lost stays so."""
        try:
            self._leases.renew(restore.planId, restore.id, time.time(), HANDOVER_SECONDS)
        except LeaseLost:
            return
        except DomainError:
            # The lease still runs its 60 s; the next step's first renewal says if it was lost.
            logger.exception("lease not handed over to the next step")

    def keep_for_rollback(self, restore: Restore) -> None:
        try:
            self.renew(restore)
        except LeaseLost:
            taken, found = self._leases.acquire(
                restore.planId, restore.id, "restore", "rollback", time.time(), LEASE_TTL_SECONDS
            )
            if not taken:
                # Undoing a half-written target matters more than the job holding the plan.
                logger.warning("rolling back without the plan's lease", holder=str(found))

    def release(self, restore: Restore) -> None:
        for backup_id in (restore.backupId, restore.safetyBackupId):
            if backup_id:
                try:
                    self._backups.release_read(backup_id, restore.id)
                except DomainError:
                    logger.exception("read hold not released; it expires by itself")
        self._leases.release(restore.planId, restore.id)

    def save(self, restore: Restore, **changes: Any) -> Restore:
        current = restore.model_copy(update={**changes, "updatedAt": self._clock()})
        self._restores.update(current)
        return current

    def final(self, restore: Restore, **changes: Any) -> Restore:
        now = self._clock()
        final = restore.model_copy(update={**changes, "finishedAt": now, "updatedAt": now})
        self._restores.update(final)
        return final

    def note(self, restore_id: str, exc: BaseException) -> None:
        """The failure, on the record, for Rollback and for whoever watches."""
        message = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        current = self._restores.find(restore_id)
        if current is not None and not current.final and current.error is None:
            try:
                self.save(current, error=message)
            except DomainError:
                logger.exception("the restore's error could not be recorded")
