"""How the Restore step applies a backup: a backup with a frame index on several connections
at once, phase by phase (domain/frame_index.py, ``restore_phases``), its frames read by range
and checked one by one; chosen tables as their frames only, on one connection; a backup without
an index (made before them, or gzip) as one stream, as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from platform_backup.domain.backup import Backup
from platform_backup.domain.frame_index import Frame, FrameIndex, restore_phases
from platform_backup.domain.restore import Restore
from platform_backup.errors import ChecksumMismatch
from platform_backup.services.ports import Applied, BackupSource, Existing, TargetServer
from platform_backup.services.restore_tables import chosen_frames


@dataclass
class ApplyWay:
    source: BackupSource
    restore: Restore
    backup: Backup
    total: int
    index: FrameIndex | None = None
    chosen: list[Frame] | None = None
    # Bytes of the object read from storage (the whole object for a stream).
    counted: list[int] = field(default_factory=lambda: [0])

    @property
    def read(self) -> int:
        return self.counted[0]

    @property
    def existing(self) -> Existing:
        """In place, every database is replaced, but chosen tables replace those tables only."""
        if not self.restore.in_place:
            return "new"
        return "keep" if self.chosen is not None else "replace"

    def frames(self, frames: Sequence[Frame], sql: bool = False) -> Iterator[bytes]:
        copy = self.restore.sourceCopy
        assert copy is not None  # nosec B101  # narrows a type, not a check
        base = self.counted[0]

        def count(total: int) -> None:
            self.counted[0] = base + total

        return self.source.frames(copy, self.restore.sourceVersion, frames, count, sql)

    def sql(self, frames: Sequence[Frame]) -> Iterator[bytes]:
        """The frames' checked SQL (the parallel restore applies it as it is)."""
        return self.frames(frames, sql=True)

    def apply(
        self,
        target: TargetServer,
        conn: Any,
        *,
        width: int,
        progress: Callable[[int], None],
        on_start: Callable[[], None],
    ) -> Applied:
        restore = self.restore
        if self.index is not None:
            header = [f for f in self.index.frames if f.section.kind == "header"]
            return target.apply_frames(
                conn,
                header,
                restore_phases(self.index),
                self.sql,
                names=restore.databases,
                existing=self.existing,
                width=width,
                progress=progress,
                on_start=on_start,
            )
        if self.chosen is not None:
            chunks = self.frames(self.chosen)
        else:
            copy = restore.sourceCopy
            assert copy is not None  # nosec B101  # narrows a type, not a check
            self.counted[0] = self.backup.compressedBytes
            chunks = self.source.stream(copy, restore.sourceVersion, self.backup.sha256)
        applied = target.apply(
            conn,
            chunks,
            compression=self.backup.compression,
            names=restore.databases,
            existing=self.existing,
            progress=progress,
            on_start=on_start,
        )
        if self.chosen is not None and applied.exit_code == 0:
            # Chosen tables end without the dump's completion line: every frame was checked.
            return applied._replace(completed=True)
        return applied


def plan_apply(source: BackupSource, restore: Restore, backup: Backup) -> ApplyWay:
    copy = restore.sourceCopy
    if copy is None:
        raise ChecksumMismatch("the restore has no validated copy to read")
    if restore.tables:
        frames = chosen_frames(source, restore)
        return ApplyWay(source, restore, backup, sum(f.raw_length for f in frames), chosen=frames)
    index = (
        FrameIndex.from_manifest(source.manifest(copy)) if backup.compression == "zstd" else None
    )
    if index is not None:
        return ApplyWay(source, restore, backup, index.raw_bytes, index=index)
    return ApplyWay(source, restore, backup, backup.rawBytes)
