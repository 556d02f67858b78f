"""Pruning a plan's copies by its retention policy after each successful backup, and deleting a
backup by hand under the same safety rules.

Each backup goes through three writes, each conditional on the version just read:
1. claim: the chosen copies are marked ``deleted`` and their bytes taken off their storages in
   one transaction, so a copy's usage is returned exactly once however many runs race;
2. purge: their objects (dump and manifest, only the keys recorded on the backup) are deleted
   with every version;
3. finish: the copies move to the backup's ``pruned`` list, or the record goes when no copy is
   left.
A run that stops between the steps leaves copies marked ``deleted``; whichever run reads the
backup next purges and finishes them, so nothing is left behind and nothing is counted twice.

Then the plan's archived binary-log segments no kept backup needs go (archive_retention.py).
A deleted plan's backups and segments are never pruned by policy: they stay restorable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from platform_backup.domain.backup import Backup, BackupCopy, PrunedCopy
from platform_backup.domain.remote_lock import locked_until
from platform_backup.domain.retention import (
    CopyRef,
    RetentionCursor,
    Rules,
    backup_guard,
    in_use,
    next_cursor,
    ranges_to_read,
    select,
)
from platform_backup.errors import Conflict, DependencyFailed, DomainError, NotFound
from platform_backup.observability import logger
from platform_backup.services.archive_retention import ArchiveRetention
from platform_backup.services.ports import (
    ObjectStore,
    PlanRepository,
    PrunableBackups,
    Stored,
    UsageChange,
)

# Conditional writes that lose to another writer re-read and try again this many times; a
# backup still contended after that is left for the next run.
ATTEMPTS = 5


@dataclass
class RetentionSummary:
    """What a run did, for the logs and the benchmark."""

    planId: str
    pruned: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)
    recordsDeleted: int = 0
    itemsRead: int = 0
    skipped: str | None = None
    segmentsPruned: list[str] = field(default_factory=list)
    breaksRemoved: int = 0


class RetentionService:
    def __init__(
        self,
        plans: PlanRepository,
        backups: PrunableBackups,
        objects: ObjectStore,
        clock: Callable[[], datetime],
        safety_days: int,
        default_region: str,
        last_restore: Callable[[str], datetime | None] = lambda _plan_id: None,
        archive: ArchiveRetention | None = None,
    ) -> None:
        self._plans = plans
        self._backups = backups
        self._objects = objects
        self._clock = clock
        self._safety_days = safety_days
        self._region = default_region
        self._last_restore = last_restore
        self._archive = archive

    def apply(self, plan_id: str) -> RetentionSummary:
        summary = RetentionSummary(plan_id)
        plan = self._plans.find(plan_id)
        if plan is None:
            summary.skipped = "the plan no longer exists: its backups are never pruned by policy"
            return summary
        now = self._clock()
        rules = Rules.of(plan, self._safety_days, self._last_restore(plan_id))
        cursor = self._backups.read_cursor(plan_id)
        summary.itemsRead += 1
        previous = cursor.value if cursor is not None else None
        read = self._read(plan_id, previous, rules, now, summary)
        selection = select((s.value for s in read.values()), rules, now)
        summary.protected = [f"{_name(ref)}: {why}" for ref, why in selection.protected]
        chosen: dict[str, list[CopyRef]] = defaultdict(list)
        for ref in selection.prune:
            chosen[ref.backup_id].append(ref)
        after: list[Backup] = []
        for backup_id, stored in read.items():
            refs = chosen.get(backup_id, [])
            unfinished = any(c.status == "deleted" for c in stored.value.copies)
            if not refs and not unfinished:
                after.append(stored.value)
                continue
            left = self._prune(stored, refs, rules, now, summary)
            if left is not None:
                after.append(left)
        cursor_after = next_cursor([s.value for s in read.values()], after, rules, now, previous)
        if not self._backups.write_cursor(plan_id, cursor_after, cursor):
            # Another run wrote first: its cursor holds for the history it read, and pruning
            # only ever removes copies, so it stays true after ours.
            logger.info("retention cursor moved by a concurrent run", plan_id=plan_id)
        if self._archive is not None:
            archived = self._archive.prune(plan_id)
            summary.segmentsPruned = archived.segments
            summary.breaksRemoved = archived.breaksRemoved
        return summary

    def apply_all(self) -> list[RetentionSummary]:
        """Every plan's policy (the hourly pass): a policy lowered, or a plan whose backups keep
        failing, is pruned without waiting for a success. One plan failing does not stop the
        others; the first failure is raised after them, so the invocation fails."""
        summaries: list[RetentionSummary] = []
        failed: DomainError | None = None
        for plan in self._plans.all():
            try:
                summaries.append(self.apply(plan.id))
            except DomainError as exc:
                logger.exception("retention failed for a plan", plan_id=plan.id)
                failed = failed or exc
        if failed is not None:
            raise failed
        return summaries

    def delete_backup(self, backup_id: str, force: bool = False) -> None:
        """Deletes a backup and every copy of it. Conflict while a restore reads it, a copy is
        being written or a copy is under Object Lock, and for the plan's newest successful
        backup unless ``force``."""
        stored = self._backups.find_stored(backup_id)
        if stored is None:
            raise NotFound(f"backup '{backup_id}' does not exist")
        backup = stored.value
        _refuse_locked(backup, self._clock())
        if not force:
            newest = self._backups.newest_with_copy(backup.planId)
            if newest is not None and newest.id == backup.id:
                raise Conflict(
                    f"backup '{backup_id}' is the plan's newest successful backup: "
                    "delete it with force=true if you really mean to"
                )
        for _ in range(ATTEMPTS):
            backup = stored.value
            now = self._clock()
            if in_use(backup, now):
                raise Conflict(
                    f"a restore ({backup.readBy}) is reading backup '{backup_id}': "
                    "try again when it has finished"
                )
            _refuse_locked(backup, now)
            if any(c.status == "pending" for c in backup.copies):
                raise Conflict(
                    f"a copy of backup '{backup_id}' is being written: try again when the run "
                    "has finished"
                )
            targets = [c for c in backup.copies if c.status == "available"]
            claimed = self._backups.claim(stored, _marked(backup, targets), _usage(targets))
            if claimed is not None:
                stored = claimed
                break
            again = self._backups.find_stored(backup_id)
            if again is None:
                return
            stored = again
        else:
            raise Conflict(f"backup '{backup_id}' kept changing while it was deleted: try again")
        self._finish(stored, self._clock(), RetentionSummary(backup.planId))

    # -- reading ------------------------------------------------------------------------------

    def _read(
        self,
        plan_id: str,
        cursor: RetentionCursor | None,
        rules: Rules,
        now: datetime,
        summary: RetentionSummary,
    ) -> dict[str, Stored[Backup]]:
        ranges = ranges_to_read(cursor, rules, now)
        batches = [self._backups.read_range(plan_id, r.lower, r.upper) for r in ranges]
        if not ranges:
            batches.append(self._backups.read_range(plan_id, None, None))
        if cursor is not None and cursor.held:
            batches.append(self._backups.read_ids(cursor.held))
        read: dict[str, Stored[Backup]] = {}
        for batch in batches:
            summary.itemsRead += batch.items_read
            for stored in batch.backups:
                read[stored.value.id] = stored
        return read

    # -- pruning one backup -------------------------------------------------------------------

    def _prune(
        self,
        stored: Stored[Backup],
        refs: list[CopyRef],
        rules: Rules,
        now: datetime,
        summary: RetentionSummary,
    ) -> Backup | None:
        """Claims the chosen copies still prunable on a fresh read, then purges every claimed
        copy of the backup. Returns the backup as left (None: its record is gone)."""
        for _ in range(ATTEMPTS):
            backup = stored.value
            targets = [
                c
                for c in backup.copies
                if c.status == "available"
                and any(ref.matches(c) for ref in refs)
                and backup_guard(backup, c, rules, now) is None
            ]
            if not targets:
                break
            claimed = self._backups.claim(stored, _marked(backup, targets), _usage(targets))
            if claimed is not None:
                stored = claimed
                summary.pruned += [_name(CopyRef.of(backup, c)) for c in targets]
                break
            again = self._backups.find_stored(backup.id)
            summary.itemsRead += 1
            if again is None:
                return None
            stored = again
        try:
            return self._finish(stored, now, summary)
        except DependencyFailed as exc:
            # The copies stay marked deleted (their usage already returned); the next run
            # purges them again.
            logger.warning("pruned copies not purged yet", backup_id=backup.id, error=exc.message)
            return stored.value

    def _finish(
        self, stored: Stored[Backup], now: datetime, summary: RetentionSummary
    ) -> Backup | None:
        for _ in range(ATTEMPTS):
            backup = stored.value
            doomed = [c for c in backup.copies if c.status == "deleted"]
            if not any(c.status in ("available", "pending") for c in backup.copies):
                # Nothing restorable is left: a failed copy's leftovers go with the record.
                doomed += [c for c in backup.copies if c.status == "failed"]
            if not doomed:
                return backup
            for copy in doomed:
                self._purge(copy)
            remaining = [c for c in backup.copies if c not in doomed]
            if not remaining:
                if self._backups.remove(stored):
                    summary.recordsDeleted += 1
                    return None
            else:
                pruned = [
                    PrunedCopy(storageId=c.storageId, role=c.role, key=c.key, prunedAt=now)
                    for c in doomed
                    if c.status == "deleted"
                ]
                left = backup.model_copy(
                    update={"copies": remaining, "pruned": [*backup.pruned, *pruned]}
                )
                written = self._backups.replace(stored, left)
                if written is not None:
                    return left
            again = self._backups.find_stored(backup.id)
            if again is None:
                return None
            stored = again
        return stored.value

    def _purge(self, copy: BackupCopy) -> None:
        region = copy.region or self._region
        for key in (copy.key, copy.manifestKey):
            self._objects.delete_every_version(copy.bucket, region, key)


def _refuse_locked(backup: Backup, now: datetime) -> None:
    until = locked_until(backup, now)
    if until is not None:
        raise Conflict(
            f"backup '{backup.id}' has a remote copy under S3 Object Lock until "
            f"{until.isoformat()}: it cannot be deleted before then, force or not; every copy "
            "was left in place"
        )


def _marked(backup: Backup, targets: list[BackupCopy]) -> Backup:
    copies = [
        c.model_copy(update={"status": "deleted"}) if c in targets else c for c in backup.copies
    ]
    return backup.model_copy(update={"copies": copies})


def _usage(copies: Iterable[BackupCopy]) -> list[UsageChange]:
    totals: dict[str, tuple[int, int]] = {}
    for copy in copies:
        size, count = totals.get(copy.storageId, (0, 0))
        totals[copy.storageId] = (size - copy.bytes, count - 1)
    return [UsageChange(sid, size, count) for sid, (size, count) in totals.items()]


def _name(ref: CopyRef) -> str:
    return f"{ref.backup_id}/{ref.role}/{ref.storage_id}"
