"""The remote copies of archived segments: a server-side copy verified by its SHA-256 like a
backup's; a failed copy is recorded on the segment (status failed, the reason) and tried again
by the next run."""

from __future__ import annotations

import dataclasses

from platform_backup.domain.plan import Plan
from platform_backup.domain.recovery import SegmentCopy
from platform_backup.errors import DomainError
from platform_backup.observability import logger
from platform_backup.services.ports import (
    ArchiveRepository,
    ObjectRef,
    Replicator,
    StorageRepository,
)


class RemoteSegments:
    def __init__(
        self, storages: StorageRepository, archive: ArchiveRepository, replicator: Replicator
    ) -> None:
        self._storages = storages
        self._archive = archive
        self._replicator = replicator

    def copy(self, plan: Plan, local: SegmentCopy, size: int, sha256: str) -> SegmentCopy:
        remote = self._storages.find(plan.remoteStorageId or "")
        key = local.key
        local_storage = self._storages.find(local.storage_id)
        if remote is not None and local_storage is not None:
            key = remote.prefix + local.key.removeprefix(local_storage.prefix)
        if remote is None or remote.role != "remote":
            return SegmentCopy(
                plan.remoteStorageId or "",
                "remote",
                "",
                "",
                key,
                status="failed",
                error=f"remote storage {plan.remoteStorageId} no longer exists",
            )
        copy = SegmentCopy(remote.id, "remote", remote.bucket, remote.region, key)
        try:
            self._replicator.copy(
                ObjectRef(local.bucket, local.region, local.key),
                ObjectRef(remote.bucket, remote.region, key),
                size=size,
                sha256=sha256,
            )
        except DomainError as exc:
            logger.warning("remote copy of a segment failed", key=key, reason=exc.message)
            return dataclasses.replace(copy, status="failed", error=exc.message)
        return copy

    def retry_failed(self, plan: Plan) -> None:
        """Segments whose remote copy failed in an earlier run get it now."""
        if not (plan.remoteSync and plan.remoteStorageId):
            return
        for segment in self._archive.segments(plan.id):
            failed = [c for c in segment.copies if c.role == "remote" and c.status != "available"]
            local = segment.copy("local")
            if not failed or local is None:
                continue
            copy = self.copy(plan, local, segment.compressed_bytes, segment.sha256)
            others = tuple(c for c in segment.copies if c not in failed)
            self._archive.replace_segment(dataclasses.replace(segment, copies=(*others, copy)))
            if copy.status == "available":
                self._storages.add_usage(copy.storage_id, segment.compressed_bytes, 0)
