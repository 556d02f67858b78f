"""Finding the objects under a plan's keys that no backup record describes (a run killed between
its manifest and its record, a copy whose record was never updated) and deleting those that are
provably leftovers. Runs hourly on the retention function (``reconcile_all``), beside retention.

Everything found is reported first (key, size, age, what was done and why). An object is
deleted, with every version, only when all of these hold:
- its key is exactly one the plan's naming scheme writes (domain/catalog.py), as for retention;
- it is older than a day (a run writing it now is long over by then);
- the service itself proves it unrecorded: the backup's record exists for this plan but lists no
  such copy (or lists it as pruned), or its manifest names a run of this plan that ended without
  success. An object of a run that succeeded but has no record is a damaged catalog, not a
  leftover: it is kept and reported, for the catalog rebuild.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from platform_backup.domain.backup import Backup
from platform_backup.domain.catalog import MANIFEST_SUFFIX, KeyOwner, key_owner
from platform_backup.domain.plan import Plan
from platform_backup.domain.storage import Storage
from platform_backup.errors import DependencyFailed
from platform_backup.observability import logger
from platform_backup.services.ports import (
    BackupRepository,
    ExecutionRepository,
    ListedObject,
    ObjectStore,
    PlanRepository,
    StorageRepository,
    StoredObjects,
)

MIN_AGE = timedelta(days=1)
SUCCEEDED = ("succeeded", "partially-succeeded")


@dataclass
class Unrecorded:
    """One backup's objects (dump and manifest) no record describes, and what was done."""

    storageId: str
    key: str
    bytes: int
    ageHours: float
    deleted: bool
    reason: str
    # The objects a proven leftover consists of (empty when it is kept).
    doomed: list[tuple[str, str, str]] = field(default_factory=list, repr=False)


@dataclass
class OrphanReport:
    planId: str
    found: list[Unrecorded] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class OrphanReconcile:
    def __init__(
        self,
        plans: PlanRepository,
        storages: StorageRepository,
        backups: BackupRepository,
        executions: ExecutionRepository,
        objects: StoredObjects,
        deleter: ObjectStore,
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._storages = storages
        self._backups = backups
        self._executions = executions
        self._objects = objects
        self._deleter = deleter
        self._clock = clock

    def reconcile_all(self) -> list[OrphanReport]:
        """Every plan's storages (the hourly run)."""
        return [self.reconcile(plan) for plan in self._plans.all()]

    def reconcile(self, plan: Plan) -> OrphanReport:
        report = OrphanReport(plan.id)
        ids = [*plan.localStorageIds, *([plan.remoteStorageId] if plan.remoteStorageId else [])]
        for storage_id in ids:
            storage = self._storages.find(storage_id)
            if storage is None:
                continue
            try:
                self._storage(plan, storage, report)
            except DependencyFailed as exc:
                report.errors.append(f"{storage.name}: {exc.message}")
        # The report comes first: what was found is in the log before anything is deleted.
        for item in report.found:
            logger.warning(
                "objects no backup record describes",
                plan_id=plan.id,
                storage_id=item.storageId,
                key=item.key,
                bytes=item.bytes,
                age_hours=item.ageHours,
                action="delete" if item.doomed else "keep",
                reason=item.reason,
            )
        for item in report.found:
            try:
                for bucket, region, key in item.doomed:
                    self._deleter.delete_every_version(bucket, region, key)
            except DependencyFailed as exc:
                report.errors.append(exc.message)
                continue
            item.deleted = bool(item.doomed)
        return report

    def _storage(self, plan: Plan, storage: Storage, report: OrphanReport) -> None:
        now = self._clock()
        groups: dict[str, list[ListedObject]] = defaultdict(list)
        owners: dict[str, KeyOwner] = {}
        listing = self._objects.listing(
            storage.bucket, storage.region, f"{storage.prefix}pdb/{plan.id}/"
        )
        for listed in listing:
            owner = key_owner(storage.prefix, listed.key)
            if owner is None or owner.plan_id != plan.id:
                report.found.append(
                    self._entry(storage, [listed], now, False, "not a key this plan writes: kept")
                )
                continue
            groups[owner.dump_key(listed.key)].append(listed)
            owners[owner.dump_key(listed.key)] = owner
        for dump_key, members in groups.items():
            owner = owners[dump_key]
            backup = self._backups.find(owner.backup_id)
            if backup is not None and _describes(backup, storage.id, dump_key):
                continue
            proof = self._proof(plan, storage, dump_key, members, backup)
            age = now - max(m.modified for m in members)
            if proof is None:
                why = (
                    "no record, though its run succeeded or is unknown: kept (a damaged catalog? "
                    "rebuild it: platform-backup catalog rebuild)"
                )
                report.found.append(self._entry(storage, members, now, False, why))
            elif age < MIN_AGE:
                report.found.append(
                    self._entry(storage, members, now, False, f"{proof}; younger than a day: kept")
                )
            else:
                entry = self._entry(storage, members, now, False, f"{proof}; older than a day")
                entry.doomed = [(storage.bucket, storage.region, m.key) for m in members]
                report.found.append(entry)

    def _proof(
        self,
        plan: Plan,
        storage: Storage,
        dump_key: str,
        members: list[ListedObject],
        backup: Backup | None,
    ) -> str | None:
        """Why the service knows it wrote these objects and never recorded them (None: it does
        not know)."""
        if backup is not None:
            if backup.planId != plan.id:
                return None
            if any(p.storageId == storage.id and p.key == dump_key for p in backup.pruned):
                return "retention pruned this copy"
            return "its backup's record lists no copy here"
        if not any(m.key == dump_key + MANIFEST_SUFFIX for m in members):
            return None
        try:
            manifest = self._objects.read_json(
                storage.bucket, storage.region, dump_key + MANIFEST_SUFFIX
            )
        except ValueError:
            return None
        execution_id = manifest.get("executionId")
        if not isinstance(execution_id, str) or not execution_id:
            return None
        execution = self._executions.find(execution_id)
        if execution is None or execution.planId != plan.id or not execution.final:
            return None
        if execution.status in SUCCEEDED:
            return None
        return f"its run {execution.id} ended {execution.status} without recording it"

    @staticmethod
    def _entry(
        storage: Storage, members: list[ListedObject], now: datetime, deleted: bool, reason: str
    ) -> Unrecorded:
        newest = max(m.modified for m in members)
        return Unrecorded(
            storageId=storage.id,
            key=min(m.key for m in members),
            bytes=sum(m.size for m in members),
            ageHours=round((now - newest).total_seconds() / 3600, 2),
            deleted=deleted,
            reason=reason,
        )


def _describes(backup: Backup, storage_id: str, key: str) -> bool:
    return any(c.storageId == storage_id and c.key == key for c in backup.copies)
