"""The recovery window of a plan: from each kept full backup's binary-log position through the
unbroken chain of archived segments after it (domain/recovery.py), with the gaps and the lag.

A plan with point-in-time recovery off still has the windows archived while it was on: they stay
recoverable until retention prunes them, so the view is the same; only the lag is not reported
(nothing is being archived, so nothing is late).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from platform_backup.domain.backup import Backup
from platform_backup.domain.recovery import BackupStart, RecoveryView, recovery_view
from platform_backup.services.ports import ArchiveRepository, BackupHistory, PlanLookup


def backup_starts(backups: Iterable[Backup]) -> list[BackupStart]:
    """The kept full backups (an available copy, local or remote) that know their position."""
    return [
        BackupStart(
            backup_id=b.id,
            created_at=b.createdAt,
            file=b.binlog.file,
            position=b.binlog.position,
            observed_at=b.binlog.observedAt,
        )
        for b in backups
        if b.binlog is not None and any(c.status == "available" for c in b.copies)
    ]


def kept_starts(backups: BackupHistory, plan_id: str) -> list[BackupStart]:
    batch = backups.read_range(plan_id, None, None)
    return backup_starts(stored.value for stored in batch.backups)


class RecoveryWindows:
    def __init__(
        self,
        plans: PlanLookup,
        backups: BackupHistory,
        archive: ArchiveRepository,
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._backups = backups
        self._archive = archive
        self._clock = clock

    def view(self, plan_id: str) -> RecoveryView:
        """Raises NotFound for an unknown plan."""
        plan = self._plans.get(plan_id)
        view = recovery_view(
            kept_starts(self._backups, plan_id),
            self._archive.segments(plan_id),
            self._archive.breaks(plan_id),
            self._clock(),
        )
        archiving = plan.pointInTime is not None and plan.pointInTime.enabled
        if not archiving:
            return RecoveryView(view.windows, view.gaps, view.last_recoverable, None)
        return view
