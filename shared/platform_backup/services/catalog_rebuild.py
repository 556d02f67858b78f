"""Re-creating the backup records of an empty or damaged catalog from the manifests a storage
holds. Each dump is read whole and must match its manifest's size and SHA-256 before its record
is written; a backup the catalog knows already is left as it is (a copy in this storage that its
record lacks is added to it). Only keys of the service's naming scheme are read, nothing is
deleted.

One call works until its deadline (the API answers within API Gateway's 29 s) and says where to
go on (``nextStartAfter``); the CLI calls again until ``complete``. The last call recounts the
storage's usage from the catalog, so quota and deletes agree with what is recorded again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from platform_backup.domain.backup import Backup
from platform_backup.domain.catalog import (
    MANIFEST_SUFFIX,
    CatalogEntry,
    CatalogRebuild,
    ManifestRefused,
    backup_from_manifest,
    key_owner,
)
from platform_backup.domain.storage import Storage
from platform_backup.errors import Conflict, DependencyFailed
from platform_backup.observability import logger
from platform_backup.services.ports import (
    CatalogRecords,
    Deadline,
    ListedObject,
    StorageRepository,
    StorageUsage,
    Stored,
    StoredObjects,
)

# A call stops starting new work this close to its deadline (the usage recount and the answer
# still need time).
STOP_SECONDS = 4.0


class CatalogRebuilder:
    def __init__(
        self,
        storages: StorageRepository,
        usage: StorageUsage,
        records: CatalogRecords,
        objects: StoredObjects,
        clock: Callable[[], datetime],
    ) -> None:
        self._storages = storages
        self._usage = usage
        self._records = records
        self._objects = objects
        self._clock = clock

    def rebuild(
        self, storage_id: str, deadline: Deadline, start_after: str | None = None
    ) -> CatalogRebuild:
        storage = self._storages.get(storage_id)
        report = CatalogRebuild(storageId=storage.id, complete=False)
        listing = self._objects.listing(
            storage.bucket, storage.region, storage.prefix + "pdb/", start_after
        )
        sizes: dict[str, int] = {}
        manifests: list[ListedObject] = []
        for listed in listing:
            sizes[listed.key] = listed.size
            if listed.key.endswith(MANIFEST_SUFFIX):
                manifests.append(listed)
        last: str | None = start_after
        for number, manifest in enumerate(manifests):
            if deadline.remaining_seconds() < STOP_SECONDS:
                report.nextStartAfter = last
                return report
            dump_key = manifest.key.removesuffix(MANIFEST_SUFFIX)
            if not self._one(storage, dump_key, sizes.get(dump_key), deadline, number == 0, report):
                report.nextStartAfter = last
                return report
            # The listing restarts after the manifest: its dump sorts before it and is done.
            last = manifest.key
        report.complete = True
        report.usedBytes = self._recount(storage)
        return report

    def _one(
        self,
        storage: Storage,
        key: str,
        size: int | None,
        deadline: Deadline,
        first: bool,
        report: CatalogRebuild,
    ) -> bool:
        """Handles one dump; False when the call ran out of time before it could (the next call
        starts with it)."""
        owner = key_owner(storage.prefix, key)
        if owner is None:
            report.skipped.append(CatalogEntry(key=key, reason="not a key the service writes"))
            return True
        entry = CatalogEntry(key=key, backupId=owner.backup_id, planId=owner.plan_id)
        stored = self._records.find_stored(owner.backup_id)
        if stored is not None and any(
            c.storageId == storage.id and c.key == key for c in stored.value.copies
        ):
            report.skipped.append(entry.model_copy(update={"reason": "in the catalog already"}))
            return True
        if size is None:
            report.corrupt.append(entry.model_copy(update={"reason": "the dump is missing"}))
            return True
        try:
            manifest = self._objects.read_json(
                storage.bucket, storage.region, key + MANIFEST_SUFFIX
            )
            backup = backup_from_manifest(manifest, owner, storage, key, size)
        except (ValueError, ManifestRefused) as exc:
            report.corrupt.append(entry.model_copy(update={"reason": f"the manifest: {exc}"}))
            return True
        checked = self._objects.sha256(storage.bucket, storage.region, key, deadline)
        if checked is None:
            if not first:
                return False
            why = (
                f"its {size} bytes could not be read within one call: verify it by hand "
                "(README, Restoring by hand)"
            )
            report.skipped.append(entry.model_copy(update={"reason": why}))
            return True
        if checked.sha256 != backup.sha256 or checked.size != size:
            report.corrupt.append(
                entry.model_copy(
                    update={
                        "reason": f"SHA-256 {checked.sha256} of {checked.size} bytes, "
                        f"the manifest says {backup.sha256}"
                    }
                )
            )
            return True
        self._record(stored, backup, entry, report)
        return True

    def _record(
        self,
        stored: Stored[Backup] | None,
        backup: Backup,
        entry: CatalogEntry,
        report: CatalogRebuild,
    ) -> None:
        current = stored
        for _ in range(3):
            if current is None:
                try:
                    self._records.create(backup)
                except Conflict:
                    current = self._records.find_stored(backup.id)
                    continue
                report.recreated.append(entry)
                return
            value = current.value
            if any(c.storageId == backup.copies[0].storageId for c in value.copies):
                report.skipped.append(entry.model_copy(update={"reason": "in the catalog already"}))
                return
            updated = value.model_copy(update={"copies": [*value.copies, *backup.copies]})
            if self._records.replace(current, updated) is not None:
                report.copiesAdded.append(entry)
                return
            current = self._records.find_stored(backup.id)
        raise DependencyFailed(f"backup '{backup.id}' kept changing while it was rebuilt")

    def _recount(self, storage: Storage) -> int:
        used = copies = 0
        for backup in self._records.every():
            for copy in backup.copies:
                if copy.storageId == storage.id and copy.status == "available":
                    used += copy.bytes
                    copies += 1
        self._usage.set_usage(storage.id, used, copies)
        logger.info("storage usage recounted", storage_id=storage.id, bytes=used, copies=copies)
        return used
