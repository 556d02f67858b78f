"""One scheduled archive run of a plan: the server's binary log, closed and archived file by file.

- exactly once per scheduled time (a guard item claimed first), and never two runs of a plan at
  once (the archive's own lease, apart from the backup and restore lease: neither makes the
  other skip);
- the current file is closed (FLUSH BINARY LOGS) and every closed file after the last archived
  one is stored in the plan's first local storage, or its second when the first refuses, then
  copied to the remote storage when the plan syncs;
- a segment is recorded with the state that names it newest, in one conditional write: a run
  that finds another ahead of it stops, so no segment is ever missing or stored twice.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from platform_backup.domain.lease import LeaseLost
from platform_backup.domain.plan import Plan, PlanState
from platform_backup.domain.recovery import (
    ArchiveState,
    HistoryBreak,
    Segment,
    SegmentCopy,
)
from platform_backup.errors import DomainError
from platform_backup.observability import logger
from platform_backup.services.archive_continuity import ToArchive, to_archive
from platform_backup.services.archive_remote import RemoteSegments
from platform_backup.services.backup_runner import parse_scheduled_time
from platform_backup.services.lease_keeper import LEASE_TTL_SECONDS, LeaseKeeper
from platform_backup.services.ports import (
    ArchiveMetrics,
    ArchiveRepository,
    BackupRepository,
    BinlogFile,
    BinlogScan,
    BinlogSource,
    Deadline,
    Leases,
    ObjectRef,
    PlanLookup,
    Replicator,
    SegmentWriter,
    SegmentWriteRefused,
    SegmentWritten,
    StorageRepository,
)

ARCHIVE_LEASE_SUFFIX = "#archive"
# A run stops taking new files when less than this is left of the function's time.
TIME_MARGIN_SECONDS = 30.0


def archive_lease(plan_id: str) -> str:
    """The archive runs' lease: not the plan's backup and restore lease."""
    return plan_id + ARCHIVE_LEASE_SUFFIX


def segment_key(prefix: str, plan_id: str, server_id: int, file: str) -> str:
    return f"{prefix}binlog/{plan_id}/{server_id}/{file}.zst"


@dataclass(frozen=True)
class ArchiveOutcome:
    status: str  # "archived" | "duplicate" | "skipped" | "failed"
    segments: int = 0
    reason: str | None = None


class _RunStopped(Exception):
    """Another run recorded a segment first: this one has nothing left to do."""


@dataclass(frozen=True)
class ArchiveParts:
    """What the runner works with besides its records."""

    source: BinlogSource
    scanner: Callable[[], BinlogScan]
    writer: SegmentWriter
    replicator: Replicator
    metrics: ArchiveMetrics


class ArchiveRunner:
    def __init__(
        self,
        plans: PlanLookup,
        storages: StorageRepository,
        backups: BackupRepository,
        archive: ArchiveRepository,
        leases: Leases,
        parts: ArchiveParts,
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._storages = storages
        self._backups = backups
        self._archive = archive
        self._leases = leases
        self._source = parts.source
        self._scanner = parts.scanner
        self._writer = parts.writer
        self._remote = RemoteSegments(storages, archive, parts.replicator)
        self._metrics = parts.metrics
        self._clock = clock

    def run_scheduled(
        self, plan_id: str, scheduled_time: object, deadline: Deadline
    ) -> ArchiveOutcome:
        when = parse_scheduled_time(scheduled_time).astimezone(UTC)
        if not self._archive.claim_run(plan_id, when.strftime("%Y-%m-%dT%H:%M:%SZ"), time.time()):
            logger.info("duplicate delivery of an archive run", plan_id=plan_id)
            return ArchiveOutcome("duplicate")
        plan = self._plans.find(plan_id)
        if plan is None:
            return ArchiveOutcome("skipped", reason="the plan no longer exists")
        if plan.pointInTime is None or not plan.pointInTime.enabled:
            return ArchiveOutcome("skipped", reason="point-in-time recovery is off for the plan")
        if plan.state != PlanState.ENABLED.value:
            return ArchiveOutcome("skipped", reason="the plan is paused")
        owner = uuid.uuid4().hex
        lease = archive_lease(plan_id)
        taken, found = self._leases.acquire(
            lease, owner, "archive", "binary-log archive", time.time(), LEASE_TTL_SECONDS
        )
        if not taken:
            holder = found.owner if found else "another run"
            return ArchiveOutcome("skipped", reason=f"archive run {holder} is still running")
        keeper = LeaseKeeper(
            lambda: self._leases.renew(lease, owner, time.time(), LEASE_TTL_SECONDS),
            name=f"archive-{owner}",
        )
        keeper.start()
        try:
            return self._run(plan, keeper, deadline)
        finally:
            keeper.stop()
            self._leases.release(lease, owner)

    # -- the run ----------------------------------------------------------------------------

    def _run(self, plan: Plan, keeper: LeaseKeeper, deadline: Deadline) -> ArchiveOutcome:
        state = self._archive.state(plan.id)
        done = 0
        try:
            self._remote.retry_failed(plan)
            status = self._source.status()
            if not status.log_bin:
                raise _Refused(
                    "binary logging is off on the server (log_bin): turn it on with"
                    " binlog_format=ROW to archive the binary log"
                )
            rotated_at = self._source.rotate()
            status = self._source.status()
            latest = self._backups.latest(plan.id)
            backup_file = latest.binlog.file if latest and latest.binlog else None
            plan_files = to_archive(state, status, backup_file)
            if plan_files.broken is not None:
                self._record_break(plan.id, state, rotated_at, plan_files)
            current = status.files[-2].name if len(status.files) >= 2 else None
            continues = not (plan_files.first_run or plan_files.broken)
            for file in plan_files.files:
                keeper.check()
                if deadline.remaining_seconds() < TIME_MARGIN_SECONDS:
                    raise _Refused(f"the function's time ran out before {file.name}: next run")
                covered = rotated_at if file.name == current else None
                state = self._archive_file(plan, state, file, status.server_id, covered, continues)
                continues = True
                done += 1
        except _RunStopped:
            logger.info("another archive run recorded first: stopping", plan_id=plan.id)
            return ArchiveOutcome("archived", segments=done, reason="another run went on")
        except (DomainError, LeaseLost, _Refused) as exc:
            reason = exc.message if isinstance(exc, DomainError) else str(exc)
            return self._failed(plan, state, reason, done)
        finally:
            self._publish_lag(plan)
        self._save_run(state, None)
        return ArchiveOutcome("archived", segments=done)

    def _archive_file(
        self,
        plan: Plan,
        state: ArchiveState,
        file: BinlogFile,
        server_id: int,
        covered: datetime | None,
        continues: bool,
    ) -> ArchiveState:
        sequence = state.last_sequence + 1
        stored, scan, local = self._store(plan, state, file, server_id, sequence)
        summary = scan.summary()
        copies = [local]
        if plan.remoteSync and plan.remoteStorageId:
            copies.append(self._remote.copy(plan, local, stored.compressed_bytes, stored.sha256))
        covered_until = covered or summary.last_event_at or self._clock()
        segment = Segment(
            plan_id=plan.id,
            sequence=sequence,
            file=file.name,
            server_id=server_id,
            covered_until=covered_until,
            opened_at=summary.first_event_at or covered_until,
            first_gtid=summary.first_gtid,
            last_gtid=summary.last_gtid,
            last_event_at=summary.last_event_at,
            raw_bytes=stored.raw_bytes,
            compressed_bytes=stored.compressed_bytes,
            sha256=stored.sha256,
            compression="zstd",
            archived_at=self._clock(),
            continues=continues,
            copies=tuple(copies),
        )
        new_state = dataclasses.replace(
            state,
            last_sequence=sequence,
            last_file=file.name,
            server_id=server_id,
            covered_until=covered_until,
            last_run_at=self._clock(),
            last_error=None,
        )
        written = self._archive.add_segment(state, segment, new_state)
        if written is None:
            raise _RunStopped()
        # Segments take room in the plan's storages like backups (the quota counts them).
        for copy in segment.copies:
            if copy.status == "available":
                self._storages.add_usage(copy.storage_id, stored.compressed_bytes, 0)
        self._metrics.segment(plan.id, stored.raw_bytes, stored.compressed_bytes)
        return written

    def _store(
        self, plan: Plan, state: ArchiveState, file: BinlogFile, server_id: int, sequence: int
    ) -> tuple[SegmentWritten, BinlogScan, SegmentCopy]:
        """Into the first local storage that takes it: each try fetches the file again."""
        taken = {s.file for s in self._archive.segments(plan.id) if s.server_id == server_id}
        name = file.name if file.name not in taken else f"{file.name}.{sequence}"
        refused: list[str] = []
        for storage_id in plan.localStorageIds:
            storage = self._storages.find(storage_id)
            if storage is None:
                refused.append(f"storage {storage_id} no longer exists")
                continue
            key = segment_key(storage.prefix, plan.id, server_id, name)
            scan = self._scanner()
            try:
                written = self._writer.write(
                    ObjectRef(storage.bucket, storage.region, key),
                    _scanned(self._source.fetch(file.name), scan),
                )
            except SegmentWriteRefused as exc:
                refused.append(str(exc))
                logger.warning("storage refused a segment", storage=storage.name, reason=str(exc))
                continue
            if written.raw_bytes != file.size:
                raise _Refused(f"{file.name}: {written.raw_bytes} bytes read of {file.size}")
            copy = SegmentCopy(storage.id, "local", storage.bucket, storage.region, key)
            return written, scan, copy
        raise _Refused(f"no local storage took {file.name}: " + "; ".join(refused))

    # -- records ----------------------------------------------------------------------------

    def _record_break(
        self, plan_id: str, state: ArchiveState, rotated_at: datetime, found: ToArchive
    ) -> None:
        assert found.broken is not None  # nosec B101  # narrows a type, not a check
        brk = HistoryBreak(
            plan_id=plan_id,
            at=state.covered_until or rotated_at,
            kind=found.broken.kind,
            reason=found.broken.reason,
        )
        self._archive.add_break(brk)
        self._metrics.history_break(plan_id, brk.kind)
        logger.warning("the binary-log history broke", plan_id=plan_id, reason=brk.reason)

    def _failed(self, plan: Plan, state: ArchiveState, reason: str, done: int) -> ArchiveOutcome:
        logger.error("archive run failed", plan_id=plan.id, reason=reason)
        self._metrics.failed(plan.id)
        self._save_run(state, reason)
        return ArchiveOutcome("failed", segments=done, reason=reason)

    def _save_run(self, state: ArchiveState, error: str | None) -> None:
        current = self._archive.state(state.plan_id)
        if current.version != state.version:
            return  # another run wrote since: its word stands
        changed = dataclasses.replace(current, last_run_at=self._clock(), last_error=error)
        self._archive.save_state(current, changed)

    def _publish_lag(self, plan: Plan) -> None:
        newest = self._archive.state(plan.id).covered_until
        interval = plan.pointInTime.archiveIntervalMinutes * 60 if plan.pointInTime else 300
        if newest is not None:
            lag = max(0.0, (self._clock() - newest).total_seconds())
            self._metrics.lag(plan.id, lag, interval)


class _Refused(Exception):
    """The run cannot go on; the message says why (recorded as the archive's last error)."""


def _scanned(chunks: Iterable[bytes], scan: BinlogScan) -> Iterator[bytes]:
    for chunk in chunks:
        scan.feed(chunk)
        yield chunk
