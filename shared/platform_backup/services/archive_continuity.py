"""Which closed binary-log files a run archives, and whether the history broke since the last
run: files purged before they were archived, a server whose files started again, another server.
Only names and the server id are compared; the server's answer is taken after the rotation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from platform_backup.domain.recovery import (
    BREAK_PURGED,
    BREAK_RESET,
    BREAK_SERVER,
    ArchiveState,
    file_index,
)
from platform_backup.services.ports import BinlogFile, BinlogServerStatus


@dataclass(frozen=True)
class Found:
    kind: str
    reason: str


@dataclass(frozen=True)
class ToArchive:
    files: tuple[BinlogFile, ...]  # oldest first
    # Set when the history broke: the first file archived then starts a new history.
    broken: Found | None = None
    first_run: bool = False


def _index(name: str) -> tuple[str, int] | None:
    try:
        return file_index(name)
    except ValueError:
        return None


def _start_from(closed: Sequence[BinlogFile], backup_file: str | None) -> tuple[BinlogFile, ...]:
    """A new history: from the file holding the newest backup's position if the server still
    has it, else the file just closed."""
    names = [f.name for f in closed]
    if backup_file in names:
        return tuple(closed[names.index(backup_file) :])
    return tuple(closed[-1:])


def to_archive(
    state: ArchiveState, status: BinlogServerStatus, backup_file: str | None
) -> ToArchive:
    closed = status.files[:-1]  # the last one is being written
    if state.last_file is None:
        return ToArchive(_start_from(closed, backup_file), first_run=True)
    if state.server_id is not None and status.server_id != state.server_id:
        found = Found(
            BREAK_SERVER,
            f"the server id changed from {state.server_id} to {status.server_id}: another"
            " server answers, its binary log is another history",
        )
        return ToArchive(_start_from(closed, backup_file), broken=found)
    base, last = file_index(state.last_file)
    after = [
        f for f in closed if (i := _index(f.name)) is not None and i[0] == base and i[1] > last
    ]
    if not after:
        present = ", ".join(f.name for f in status.files) or "none"
        found = Found(
            BREAK_RESET,
            f"the server's binary logs started again: {state.last_file} was archived last and"
            f" the server now has {present}",
        )
        return ToArchive(tuple(closed), broken=found)
    first = file_index(after[0].name)[1]
    if first != last + 1:
        width = len(state.last_file.rsplit(".", 1)[1])
        lost = [f"{base}.{i:0{width}d}" for i in range(last + 1, first)]
        named = lost[0] if len(lost) == 1 else f"{lost[0]} to {lost[-1]}"
        found = Found(
            BREAK_PURGED,
            f"binary log {named} ({len(lost)} file{'s' if len(lost) > 1 else ''}) was removed from"
            " the server before it was archived: raise binlog_expire_logs_seconds",
        )
        return ToArchive(tuple(after), broken=found)
    return ToArchive(tuple(after))
