"""A restore of chosen tables (``tables`` on the request): the copy is checked without reading
it whole (its manifest is the backup's, its size the backup's, its index has the tables), then
only the header's, the databases' and the tables' frames are read, each checked against the
index before the client gets it (adapters/frame_source.py)."""

from __future__ import annotations

from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.frame_index import BadFrameIndex, Frame, FrameIndex
from platform_backup.domain.restore import Restore
from platform_backup.errors import ChecksumMismatch, Unprocessable
from platform_backup.services.ports import BackupSource, Checked


def check_copy(
    source: BackupSource, copy: BackupCopy, backup: Backup, tables: list[str]
) -> tuple[str | None, Checked | None]:
    """(why this copy cannot be read for ``tables``, None) or (None, its size and version)."""
    where = f"{copy.role} copy s3://{copy.bucket}/{copy.key}"
    try:
        manifest = source.manifest(copy)
        stat = source.stat(copy)
        index = FrameIndex.from_manifest(manifest)
    except Unprocessable as exc:
        return f"{where}: {exc.message}", None
    except BadFrameIndex as exc:
        return f"{where}: {exc}", None
    if manifest.get("sha256") != backup.sha256:
        return f"{where}: its manifest's SHA-256 is not the backup's", None
    if stat.size != backup.compressedBytes:
        return (
            f"{where}: {stat.size} bytes, not the backup's {backup.compressedBytes}: the object "
            "is corrupted or truncated",
            None,
        )
    if index is None:
        return f"{where}: its manifest has no table index", None
    try:
        index.selection(tables)
    except KeyError as exc:
        return f"{where}: its index does not have {exc.args[0]}", None
    return None, Checked(backup.sha256, stat.size, stat.version)


def chosen_frames(source: BackupSource, restore: Restore) -> list[Frame]:
    """The frames a restore of ``restore.tables`` applies, from its validated copy's index."""
    copy = restore.sourceCopy
    if copy is None or not restore.tables:
        raise ChecksumMismatch("the restore has no validated copy to read")
    index = FrameIndex.from_manifest(source.manifest(copy))
    if index is None:
        raise ChecksumMismatch(f"s3://{copy.bucket}/{copy.key}: its manifest lost its index")
    return index.selection(restore.tables)
