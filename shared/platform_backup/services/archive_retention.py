"""Pruning a plan's archived binary-log segments that no kept full backup needs.

A kept backup (one with an available copy) needs every segment from the one holding its position
onwards (domain ``segments_needed_from``); segments before the lowest such one are pruned, oldest
first: each copy's object deleted with every version (only the keys the segment records, never a
prefix), then its record. While no kept backup opens a window nothing is pruned. Breaks older
than the oldest segment left no longer end any window and go too. A run that stops midway leaves
records whose objects may be gone; the next run deletes them again (a delete of nothing is fine).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from platform_backup.domain.recovery import Segment, segments_needed_from
from platform_backup.errors import DependencyFailed
from platform_backup.observability import logger
from platform_backup.services.ports import (
    ArchiveRepository,
    BackupHistory,
    ObjectStore,
    StorageRepository,
)
from platform_backup.services.recovery_windows import kept_starts


@dataclass
class ArchivePruned:
    segments: list[str] = field(default_factory=list)  # "<sequence>:<file>"
    breaksRemoved: int = 0
    skipped: str | None = None


class ArchiveRetention:
    def __init__(
        self,
        backups: BackupHistory,
        archive: ArchiveRepository,
        objects: ObjectStore,
        storages: StorageRepository,
        default_region: str,
    ) -> None:
        self._storages = storages
        self._backups = backups
        self._archive = archive
        self._objects = objects
        self._region = default_region

    def prune(self, plan_id: str) -> ArchivePruned:
        summary = ArchivePruned()
        segments = self._archive.segments(plan_id)
        if not segments:
            return summary
        breaks = self._archive.breaks(plan_id)
        needed = segments_needed_from(kept_starts(self._backups, plan_id), segments, breaks)
        if needed is None:
            summary.skipped = "no kept backup opens a recovery window: every segment is kept"
            return summary
        kept: list[Segment] = []
        for segment in sorted(segments, key=lambda s: s.sequence):
            if segment.sequence >= needed or not self._remove(segment):
                kept.append(segment)
                continue
            summary.segments.append(f"{segment.sequence}:{segment.file}")
        oldest = min((s.opened_at for s in kept), default=None)
        for brk in breaks:
            if oldest is not None and brk.at < oldest:
                self._archive.remove_break(brk)
                summary.breaksRemoved += 1
        return summary

    def _remove(self, segment: Segment) -> bool:
        try:
            for copy in segment.copies:
                self._objects.delete_every_version(
                    copy.bucket, copy.region or self._region, copy.key
                )
        except DependencyFailed as exc:
            # The record stays, naming the keys: the next run deletes them again.
            logger.warning(
                "segment not pruned yet",
                plan_id=segment.plan_id,
                file=segment.file,
                error=exc.message,
            )
            return False
        if self._archive.remove_segment(segment.plan_id, segment.sequence):
            # The room the segment took, returned once (only the run that removed the record);
            # a storage removed since (a remote one the plan no longer syncs to) has no usage.
            for copy in segment.copies:
                if copy.status == "available" and self._storages.find(copy.storage_id):
                    self._storages.add_usage(copy.storage_id, -segment.compressed_bytes, 0)
        return True
