"""The point-in-time part of a restore: before anything is touched, every archived segment the
replay needs is checked against its record (a mismatch marks it corrupt and breaks the plan's
history there); after the full backup is applied, the segments are replayed up to the instant.
Also the rules a target server must meet for a restore to load at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from platform_backup.domain.recovery import (
    BREAK_CORRUPT,
    BREAK_RESTORE,
    HistoryBreak,
    Segment,
    SegmentCopy,
)
from platform_backup.domain.restore import Restore, RestoreReplay
from platform_backup.errors import ChecksumMismatch, ClientFailed, Unprocessable
from platform_backup.services.lease_keeper import LeaseKeeper
from platform_backup.services.ports import (
    ArchiveRepository,
    BinlogReplayer,
    Replayed,
    SegmentStore,
    TargetSettings,
)

GIB = 1 << 30
# A replayed statement is base64 text (4/3 of its events) plus its SQL around it.
PACKET_MARGIN = 1 << 20


def target_problem(settings: TargetSettings, restore: Restore, largest_segment: int) -> str | None:
    """Why the target cannot take this restore, naming the setting to change; None if it can."""
    if settings.log_bin and not settings.trusts_function_creators and not settings.has_super:
        return (
            "the target server logs binary logs (log_bin) and does not set "
            "log_bin_trust_function_creators, and the restoring user lacks SUPER: its routines "
            "and triggers would fail to load (ERROR 1418). Set log_bin_trust_function_creators=1"
            " on the target server (SET GLOBAL, and in its configuration), or restore as a user "
            "with SUPER"
        )
    if restore.replay is not None:
        needed = min(GIB, largest_segment * 4 // 3 + PACKET_MARGIN)
        if settings.max_allowed_packet < needed:
            return (
                f"the target server's max_allowed_packet is {settings.max_allowed_packet} bytes;"
                f" a replayed statement may be up to {needed} bytes: set max_allowed_packet to "
                f"at least {needed} on the target server (SET GLOBAL max_allowed_packet={needed})"
            )
    return None


def _copies(segment: Segment, source: str) -> list[SegmentCopy]:
    roles = {"local": ["local"], "remote": ["remote"], "auto": ["local", "remote"]}[source]
    return [c for role in roles if (c := segment.copy(role)) is not None]


class RestoreReplays:
    def __init__(
        self,
        archive: ArchiveRepository,
        store: SegmentStore,
        replayer: BinlogReplayer,
        clock: Callable[[], datetime],
    ) -> None:
        self._archive = archive
        self._store = store
        self._replayer = replayer
        self._clock = clock

    def segments(self, restore: Restore) -> list[Segment]:
        """The replay's segments, in order, as recorded now."""
        if restore.replay is None:
            return []
        stored = {s.sequence: s for s in self._archive.segments(restore.planId)}
        found: list[Segment] = []
        for sequence in restore.replay.segments:
            segment = stored.get(sequence)
            if segment is None:
                raise ChecksumMismatch(
                    f"the archived binary-log segment {sequence} the replay needs is gone"
                )
            found.append(segment)
        return found

    def validate(self, restore: Restore, keeper: LeaseKeeper) -> RestoreReplay | None:
        """Every segment checked against its record: the roles of the copies to read. A
        segment with no good copy is marked corrupt, the history breaks there, and the restore
        stops before touching anything."""
        if restore.replay is None:
            return None
        roles: list[str] = []
        for segment in self.segments(restore):
            problems: list[str] = []
            chosen: SegmentCopy | None = None
            for copy in _copies(segment, restore.source):
                where = f"{copy.role} copy s3://{copy.bucket}/{copy.key}"
                try:
                    checked = self._store.checksum(copy)
                except Unprocessable as exc:
                    problems.append(f"{where}: {exc.message}")
                    continue
                finally:
                    keeper.check()
                if checked.sha256 == segment.sha256:
                    chosen = copy
                    break
                problems.append(
                    f"{where}: SHA-256 {checked.sha256} ({checked.size} bytes) is not the "
                    f"recorded {segment.sha256} ({segment.compressed_bytes} bytes)"
                )
            if chosen is None:
                raise self._corrupt(segment, problems or [f"no {restore.source} copy"])
            roles.append(chosen.role)
        return restore.replay.model_copy(update={"roles": roles})

    def _corrupt(self, segment: Segment, problems: list[str]) -> ChecksumMismatch:
        reason = (
            f"the archived binary-log segment {segment.file} (sequence {segment.sequence}) "
            f"failed its checksum: {'; '.join(problems)}"
        )
        if not segment.corrupt:
            self._archive.replace_segment(dataclasses.replace(segment, corrupt=True))
            self._archive.add_break(
                HistoryBreak(segment.plan_id, segment.opened_at, BREAK_CORRUPT, reason)
            )
        return ChecksumMismatch(f"{reason}. Nothing was touched; restore to an instant before it")

    def replay(
        self,
        restore: Restore,
        conn: Any,
        progress: Callable[[int], None],
    ) -> Replayed:
        plan = restore.replay
        if plan is None:
            raise ValueError("not a point-in-time restore")
        readers: list[Callable[[], Iterable[bytes]]] = []
        for segment, role in zip(self.segments(restore), plan.roles, strict=True):
            copy = segment.copy(role)
            if copy is None:
                raise ChecksumMismatch(f"the {role} copy of segment {segment.file} is gone")
            readers.append(self._reader(copy, segment.sha256))
        replayed = self._replayer.replay(
            conn,
            readers,
            start_position=plan.startPosition,
            stop_before=plan.stopBefore,
            names=restore.databases,
            progress=progress,
            on_start=lambda: None,
        )
        if replayed.exit_code != 0:
            raise ClientFailed(
                f"the replay of the binary log failed (mariadb exit {replayed.exit_code}) after "
                f"{replayed.raw_bytes} of {plan.bytesTotal} bytes: "
                f"{replayed.stderr or 'no output'}"
            )
        return replayed

    def _reader(self, copy: SegmentCopy, sha256: str) -> Callable[[], Iterable[bytes]]:
        return lambda: self._store.stream(copy, sha256)

    def restore_began(self, restore: Restore) -> None:
        """An in-place restore of the platform database: what follows is another history."""
        if not restore.in_place or restore.targetSecretArn is not None:
            return
        self._archive.add_break(
            HistoryBreak(
                restore.planId,
                self._clock(),
                BREAK_RESTORE,
                f"in-place restore {restore.id} of backup {restore.backupId}",
            )
        )
