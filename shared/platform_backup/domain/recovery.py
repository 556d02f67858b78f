"""Point-in-time recovery: the archived binary-log segments, the breaks in their history, the
windows a restore can reach, and the plan of a replay to a chosen instant.

A segment is one closed binary-log file of the server, archived whole. Every transaction the
server committed before a file was closed is in it or in an earlier file, so a chain of segments
with no file missing recovers every instant up to the second before the last one was closed
(binary-log times have whole seconds: a transaction in that same second may be in the next file).
A window opens at a full backup whose binary-log position lies in a chain, and ends where the
chain ends, or one second before an in-place restore began (what follows is another history).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from platform_backup.errors import Conflict

SECOND = timedelta(seconds=1)

# Why a history breaks: the reasons the API shows in ``gaps``.
BREAK_PURGED = "purged"  # binary logs removed on the server before they were archived
BREAK_RESET = "reset"  # the server's binary logs started again (RESET MASTER, a new server)
BREAK_SERVER = "server-changed"  # another server id answers
BREAK_CORRUPT = "corrupt"  # a segment failed its checksum
BREAK_RESTORE = "restore"  # an in-place restore: what follows is another history
BREAK_KINDS = (BREAK_PURGED, BREAK_RESET, BREAK_SERVER, BREAK_CORRUPT, BREAK_RESTORE)

_FILE_INDEX = re.compile(r"^(.*)\.(\d+)$")


def file_index(name: str) -> tuple[str, int]:
    """``mysql-bin.000012`` -> (``mysql-bin``, 12). Raises ValueError for another shape."""
    found = _FILE_INDEX.match(name)
    if not found:
        raise ValueError(f"'{name}' is not a binary log file name (base.NNNNNN)")
    return found.group(1), int(found.group(2))


def follows(previous: str, current: str) -> bool:
    """True when ``current`` is the file the server writes right after ``previous``."""
    (base_a, index_a), (base_b, index_b) = file_index(previous), file_index(current)
    return base_a == base_b and index_b == index_a + 1


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class SegmentCopy:
    storage_id: str
    role: str  # "local" | "remote"
    bucket: str
    region: str
    key: str
    status: str = "available"  # "available" | "failed"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """One closed binary-log file, archived."""

    plan_id: str
    sequence: int  # 1, 2, ... in archive order
    file: str
    server_id: int
    # Every transaction committed before this instant (server time) is in this file or before it.
    covered_until: datetime
    # The first event's time: the file was opened then (a backup taken in it is at or after it).
    opened_at: datetime
    first_gtid: str | None
    last_gtid: str | None
    last_event_at: datetime | None
    raw_bytes: int
    compressed_bytes: int
    sha256: str
    compression: str
    archived_at: datetime
    # False where a history starts: the first segment, and the first after a break.
    continues: bool
    copies: tuple[SegmentCopy, ...] = ()
    corrupt: bool = False

    @property
    def recoverable_until(self) -> datetime:
        """The last whole second every commit of which is in this file or an earlier one."""
        return whole_second(self.covered_until) - SECOND

    def copy(self, role: str) -> SegmentCopy | None:
        return next((c for c in self.copies if c.role == role and c.status == "available"), None)


@dataclass(frozen=True, slots=True)
class HistoryBreak:
    plan_id: str
    at: datetime
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class ArchiveState:
    """Where a plan's archive has got to."""

    plan_id: str
    last_sequence: int = 0
    last_file: str | None = None
    server_id: int | None = None
    covered_until: datetime | None = None
    last_run_at: datetime | None = None
    last_error: str | None = None
    version: int = 0  # how many times it was written: writes are conditional on it


@dataclass(frozen=True, slots=True)
class BackupStart:
    """What the windows need of a full backup: its id and binary-log position."""

    backup_id: str
    created_at: datetime
    file: str
    position: int
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Gap:
    start: datetime
    end: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class BackupWindow:
    backup: BackupStart
    window: Window
    segments: tuple[Segment, ...]  # from the one holding the backup's position onwards


@dataclass(frozen=True, slots=True)
class RecoveryView:
    windows: list[Window]
    gaps: list[Gap]
    last_recoverable: datetime | None
    lag_seconds: float | None


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """A restore to ``target``: the full backup, then its segments from ``start_position`` in the
    first, every event before ``stop_before`` (the second after the target)."""

    target: datetime
    backup_id: str
    segments: tuple[Segment, ...]
    start_position: int
    stop_before: datetime
    replay_bytes: int = field(default=0)


class NotRecoverable(Conflict):
    """The instant is in no window; says which windows there are."""

    def __init__(self, target: datetime, view: RecoveryView) -> None:
        if view.windows:
            listed = ", ".join(
                f"{w.start.isoformat()} to {w.end.isoformat()}" for w in view.windows
            )
            last = view.last_recoverable.isoformat() if view.last_recoverable else "none"
            message = (
                f"{target.isoformat()} is in no recovery window: the windows are {listed}"
                f" (last recoverable time {last})"
            )
        else:
            message = (
                f"{target.isoformat()} is in no recovery window: there is none yet (a window"
                " opens with the first full backup taken while the binary log is archived)"
            )
        super().__init__(message)
        self.view = view


def _chains(segments: Sequence[Segment]) -> list[list[Segment]]:
    """Runs of segments with no file missing, in archive order; a corrupt segment ends one."""
    chains: list[list[Segment]] = []
    current: list[Segment] = []
    for segment in sorted(segments, key=lambda s: s.sequence):
        if segment.corrupt:
            if current:
                chains.append(current)
            current = []
            continue
        if current and not (segment.continues and follows(current[-1].file, segment.file)):
            chains.append(current)
            current = []
        current.append(segment)
    if current:
        chains.append(current)
    return chains


def backup_windows(
    backups: Sequence[BackupStart],
    segments: Sequence[Segment],
    breaks: Sequence[HistoryBreak],
) -> list[BackupWindow]:
    """The window of each full backup whose position lies in an archived chain."""
    restores = sorted(b.at for b in breaks if b.kind == BREAK_RESTORE)
    found: list[BackupWindow] = []
    for chain in _chains(segments):
        for backup in backups:
            first = next(
                (
                    i
                    for i, s in enumerate(chain)
                    if s.file == backup.file
                    and s.opened_at - SECOND <= backup.observed_at
                    and backup.observed_at <= s.covered_until + SECOND
                ),
                None,
            )
            if first is None:
                continue
            # Whole seconds, as the binary log's times: restoring to the backup's own second
            # replays that second's commits after its position, the state at the second's end.
            start = whole_second(backup.observed_at)
            end = chain[-1].recoverable_until
            cut = next((at for at in restores if at > start), None)
            if cut is not None:
                end = min(end, whole_second(cut) - SECOND)
            if end < start:
                continue
            found.append(BackupWindow(backup, Window(start, end), tuple(chain[first:])))
    return sorted(found, key=lambda w: w.window.start)


def _merged(windows: Sequence[Window]) -> list[Window]:
    merged: list[Window] = []
    for window in sorted(windows, key=lambda w: w.start):
        if merged and window.start <= merged[-1].end + SECOND:
            if window.end > merged[-1].end:
                merged[-1] = Window(merged[-1].start, window.end)
        else:
            merged.append(window)
    return merged


def recovery_view(
    backups: Sequence[BackupStart],
    segments: Sequence[Segment],
    breaks: Sequence[HistoryBreak],
    now: datetime,
) -> RecoveryView:
    windows = _merged([w.window for w in backup_windows(backups, segments, breaks)])
    gaps: list[Gap] = []
    for brk in sorted(breaks, key=lambda b: b.at):
        if any(w.start <= brk.at <= w.end for w in windows):
            continue
        before = [w.end for w in windows if w.end < brk.at]
        after = [w.start for w in windows if w.start > brk.at]
        gaps.append(
            Gap(
                start=max(before) if before else brk.at,
                end=min(after) if after else None,
                reason=f"{brk.kind}: {brk.reason}",
            )
        )
    newest = max((s.covered_until for s in segments), default=None)
    return RecoveryView(
        windows=windows,
        gaps=gaps,
        last_recoverable=windows[-1].end if windows else None,
        lag_seconds=max(0.0, (now - newest).total_seconds()) if newest else None,
    )


def plan_replay(
    target: datetime,
    backups: Sequence[BackupStart],
    segments: Sequence[Segment],
    breaks: Sequence[HistoryBreak],
    now: datetime,
) -> ReplayPlan:
    """The newest full backup at or before ``target`` whose window reaches it, and the segments
    to replay up to it (a target is its whole second: every commit in it is in). Raises
    NotRecoverable naming the windows otherwise."""
    second = whole_second(target)
    reaching = [
        w
        for w in backup_windows(backups, segments, breaks)
        if w.window.start <= second <= w.window.end
    ]
    if not reaching:
        raise NotRecoverable(target, recovery_view(backups, segments, breaks, now))
    chosen = max(reaching, key=lambda w: w.backup.observed_at)
    stop_before = second + SECOND
    needed: list[Segment] = []
    for segment in chosen.segments:
        needed.append(segment)
        if segment.covered_until >= stop_before:
            break
    return ReplayPlan(
        target=target,
        backup_id=chosen.backup.backup_id,
        segments=tuple(needed),
        start_position=chosen.backup.position,
        stop_before=stop_before,
        replay_bytes=sum(s.raw_bytes for s in needed),
    )


def segments_needed_from(
    backups: Sequence[BackupStart], segments: Sequence[Segment], breaks: Sequence[HistoryBreak]
) -> int | None:
    """The lowest segment sequence a kept backup's window needs (retention keeps it and all after
    it); None when no kept backup opens a window (then nothing is pruned)."""
    windows = backup_windows(backups, segments, breaks)
    if not windows:
        return None
    return min(w.segments[0].sequence for w in windows)
