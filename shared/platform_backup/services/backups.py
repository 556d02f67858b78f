"""Running a backup of the plan: exactly once per scheduled time, one job of the plan at a time,
into the primary storage or its failover, with progress an operator can watch.

The order of writes is what makes it trustworthy:
- the execution record is created first, conditioned on its id (for a scheduled run, derived
  from the plan and the scheduled time), so duplicate deliveries make one execution;
- the plan's lease is taken next; a trigger that finds it held is recorded as skipped;
- the lease is released before the final status is written, so whoever sees a final status can
  start the next job at once; a final status is never changed.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from platform_backup.domain.execution import Backup, BackupCopy, Execution, ExecutionProgress
from platform_backup.domain.lease import LeaseLost
from platform_backup.domain.plan import Plan, PlanState
from platform_backup.domain.storage import Storage
from platform_backup.errors import DomainError, ValidationFailed
from platform_backup.observability import logger, metrics
from platform_backup.services.ports import (
    DumpEngine,
    DumpOutcome,
    DumpProgress,
    DumpTarget,
    EventPublisher,
    Launcher,
    Leases,
    ObjectRef,
    Page,
    PendingRemote,
    Replicator,
)
from platform_backup.services.repositories import (
    BackupRepository,
    ExecutionRepository,
    ExecutionWriteRefused,
    PlanRepository,
    PrunableBackups,
    StorageRepository,
    Stored,
)

_SCHEDULED = uuid.UUID("6f1d7c2e-3b7a-4d55-9a0e-5d2b8a1c9e41")
LEASE_TTL_SECONDS = 60.0
HEARTBEAT_SECONDS = 15.0
PROGRESS_SECONDS = 2.0
# Compressed dumps are a fraction of the raw SQL; until a backup of the plan has been measured,
# the quota check assumes this ratio (zstd on the benchmark data gives about 0.23).
FIRST_RATIO = 0.5
# Stop this long before the function's own limit, so an aborted upload is cleaned up and the
# failure recorded while the function still runs.
TIME_MARGIN_SECONDS = 30.0
EVENT_SUCCEEDED = "Backup Succeeded"
EVENT_PARTIAL = "Backup Partially Succeeded"
EVENT_FAILED = "Backup Failed"
MANIFEST_SUFFIX = ".manifest.json"
_OUTCOME_METRICS = {
    "succeeded": "BackupSucceeded",
    "partially-succeeded": "BackupSucceeded",
    "failed": "BackupFailed",
    "skipped": "BackupSkipped",
}


def scheduled_execution_id(plan_id: str, scheduled_time: datetime) -> str:
    stamp = scheduled_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return uuid.uuid5(_SCHEDULED, f"{plan_id}|{stamp}").hex


def parse_scheduled_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValidationFailed.of("scheduledTime", "must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed.of(
            "scheduledTime", f"'{value[:64]}' is not an ISO 8601 timestamp"
        ) from None
    if parsed.tzinfo is None:
        raise ValidationFailed.of("scheduledTime", "needs an offset (e.g. Z)")
    return parsed


def backup_key(storage: Storage, plan_id: str, backup_id: str, started: datetime) -> str:
    """Keys no other writer shares: the storage's prefix, then the plan, then the backup id."""
    stamp = started.astimezone(UTC).strftime("%Y/%m/%d/%H%M%SZ")
    return f"{storage.prefix}pdb/{plan_id}/{stamp}-{backup_id}.sql.zst"


@dataclass(frozen=True)
class Deadline:
    """The time the function has left (Lambda's context), so a run can refuse up front."""

    remaining_seconds: Callable[[], float]


class _Heartbeat(threading.Thread):
    """Renews the lease while the job works; a lost lease is raised in the job's thread at its
    next progress report."""

    def __init__(self, leases: Leases, plan_id: str, owner: str) -> None:
        super().__init__(name=f"lease-{owner}", daemon=True)
        self._leases = leases
        self._plan_id = plan_id
        self._owner = owner
        self._stop = threading.Event()
        self.lost: LeaseLost | None = None

    def run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._leases.renew(self._plan_id, self._owner, time.time(), LEASE_TTL_SECONDS)
            except LeaseLost as exc:
                self.lost = exc
                return
            except Exception:  # a passing DynamoDB error: the next beat tries again
                logger.exception("lease renewal failed; retrying at the next beat")

    def stop(self) -> None:
        self._stop.set()


class BackupRunner:
    def __init__(
        self,
        plans: PlanRepository,
        storages: StorageRepository,
        executions: ExecutionRepository,
        backups: BackupRepository,
        stored: PrunableBackups,
        leases: Leases,
        engine: DumpEngine,
        replicator: Replicator,
        pending: PendingRemote,
        events: EventPublisher,
        launcher: Launcher,
        databases: list[str],
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._storages = storages
        self._executions = executions
        self._backups = backups
        self._stored = stored
        self._leases = leases
        self._engine = engine
        self._replicator = replicator
        self._pending = pending
        self._events = events
        self._launcher = launcher
        self._databases = databases
        self._clock = clock

    # -- triggers ---------------------------------------------------------------------------

    def run_scheduled(self, plan_id: str, scheduled_time: object, deadline: Deadline) -> Execution:
        when = parse_scheduled_time(scheduled_time)
        execution = Execution(
            id=scheduled_execution_id(plan_id, when),
            planId=plan_id,
            trigger="schedule",
            scheduledTime=when,
            startedAt=self._clock(),
        )
        try:
            self._executions.create(execution)
        except ExecutionWriteRefused:
            logger.info("duplicate delivery of a scheduled run", execution_id=execution.id)
            return self._executions.get(execution.id)
        return self._run(execution, deadline)

    def start_manual(self, plan_id: str, requested_by: str | None) -> Execution:
        """Run now: a new execution every time, started asynchronously."""
        self._plans.get(plan_id)
        execution = Execution(
            id=uuid.uuid4().hex,
            planId=plan_id,
            trigger="manual",
            startedAt=self._clock(),
            requestedBy=requested_by,
        )
        self._executions.create(execution)
        self._launcher.start_backup({"planId": plan_id, "executionId": execution.id})
        return execution

    def run_started(self, execution_id: str, deadline: Deadline) -> Execution:
        execution = self._executions.get(execution_id)
        if execution.final:
            return execution
        return self._run(execution, deadline)

    # -- the run ----------------------------------------------------------------------------

    def _finish(self, execution: Execution, **changes: object) -> Execution:
        now = self._clock()
        final = execution.model_copy(update={**changes, "finishedAt": now, "updatedAt": now})
        self._executions.update(final)
        # Counted only once stored: a write refused (the execution was final already) counts
        # nothing, and an abandoned run marked failed here counts as the failure it was.
        metrics.add_metric(name=_OUTCOME_METRICS[final.status], unit=MetricUnit.Count, value=1)
        return final

    def run_for_restore(self, plan_id: str, restore_id: str, deadline: Deadline) -> Execution:
        """The safety backup before an in-place restore: a regular backup (trigger
        ``pre-restore``) that runs under the restore's lease, which the restore keeps."""
        execution = Execution(
            id=uuid.uuid4().hex,
            planId=plan_id,
            trigger="pre-restore",
            startedAt=self._clock(),
            requestedBy=f"restore {restore_id}",
        )
        self._executions.create(execution)
        return self._run(execution, deadline, lease_owner=restore_id)

    def _run(
        self, execution: Execution, deadline: Deadline, lease_owner: str | None = None
    ) -> Execution:
        plan = self._plans.find(execution.planId)
        if plan is None:
            return self._finish(execution, status="skipped", reason="the plan no longer exists")
        if plan.state == PlanState.PAUSED.value and execution.trigger == "schedule":
            return self._finish(execution, status="skipped", reason="the plan is paused")
        if lease_owner is not None:
            return self._work(plan, execution, deadline, lease_owner, release=False)
        taken, found = self._leases.acquire(
            plan.id,
            execution.id,
            "backup",
            f"{execution.trigger} backup",
            time.time(),
            LEASE_TTL_SECONDS,
        )
        if not taken:
            holder = f"{found.kind} {found.owner}" if found else "another job"
            return self._finish(
                execution, status="skipped", reason=f"the plan is busy: {holder} is running"
            )
        if found is not None:
            self._fail_abandoned(found.owner)
        return self._work(plan, execution, deadline, execution.id, release=True)

    def _work(
        self, plan: Plan, execution: Execution, deadline: Deadline, owner: str, release: bool
    ) -> Execution:
        heartbeat = _Heartbeat(self._leases, plan.id, owner)
        heartbeat.start()
        failure: BaseException | None = None
        remote_error: str | None = None
        try:
            outcome, execution = self._backup(plan, execution, deadline, heartbeat)
            if plan.remoteSync and plan.remoteStorageId:
                execution = self._progress(execution, phase="replicating")
                remote_error = self._replicate_pending(plan, heartbeat)
        except (DomainError, LeaseLost) as exc:
            failure = exc
        except Exception as exc:
            logger.exception("backup failed unexpectedly", execution_id=execution.id)
            failure = exc
        finally:
            # Released before the final status is written: whoever sees it can start next.
            heartbeat.stop()
            if release:
                self._leases.release(plan.id, owner)
        if failure is not None:
            return self._failed(execution, failure)
        status = "partially-succeeded" if remote_error else "succeeded"
        final = self._finish(
            execution,
            status=status,
            phase="done",
            storageId=outcome.target.storage_id,
            failoverReason=outcome.failover_reason,
            error=remote_error,
        )
        self._events.publish(
            EVENT_PARTIAL if remote_error else EVENT_SUCCEEDED,
            {"planId": plan.id, "executionId": final.id, "backupId": final.backupId},
        )
        return final

    def _progress(self, execution: Execution, **changes: object) -> Execution:
        current = execution.model_copy(update={**changes, "updatedAt": self._clock()})
        self._executions.update(current)
        return current

    def _replicate_pending(self, plan: Plan, heartbeat: _Heartbeat) -> str | None:
        """Copies every backup of the plan still missing its remote copy (this run's and any an
        earlier run could not copy). Returns what failed, or None."""
        remote = self._storages.find(plan.remoteStorageId or "")
        if remote is None or remote.role != "remote":
            return f"remote storage {plan.remoteStorageId} no longer exists: nothing was synced"
        errors: list[str] = []
        for backup_id in self._pending.pending(plan.id):
            if heartbeat.lost is not None:
                raise heartbeat.lost
            stored = self._stored.find_stored(backup_id)
            if stored is None or not _needs_remote(stored.value):
                self._pending.done(plan.id, backup_id)
                continue
            error = self._replicate(stored, remote)
            if error:
                errors.append(f"backup {backup_id}: {error}")
            else:
                self._pending.done(plan.id, backup_id)
        if errors:
            return "remote copy failed (the next run retries it): " + "; ".join(errors)
        return None

    def _replicate(self, stored: Stored[Backup], remote: Storage) -> str | None:
        backup = stored.value
        local = backup.local_copy()
        if local is None:
            return "no local copy left to copy from"
        fresh = self._storages.find(remote.id) or remote
        if fresh.availableBytes < local.bytes:
            return (
                f"{remote.name}: quota exhausted ({fresh.availableBytes} bytes available, "
                f"{local.bytes} needed)"
            )
        key = remote.prefix + local.key.removeprefix(self._prefix_of(local.storageId))
        source = ObjectRef(local.bucket, local.region or remote.region, local.key)
        target = ObjectRef(remote.bucket, remote.region, key)
        manifest = ObjectRef(target.bucket, target.region, key + MANIFEST_SUFFIX)
        try:
            self._replicator.copy(source, target, size=local.bytes, sha256=backup.sha256)
            self._replicator.copy(
                ObjectRef(source.bucket, source.region, local.manifestKey),
                manifest,
                size=None,
                sha256=None,
            )
        except DomainError as exc:
            return exc.message
        copy = BackupCopy(
            storageId=remote.id,
            role="remote",
            bucket=remote.bucket,
            region=remote.region,
            key=key,
            manifestKey=manifest.key,
            bytes=local.bytes,
        )
        # Recorded only on the version read: if retention or a delete changed the backup
        # meanwhile, read it again; if it is gone, the copy just made is removed again.
        current: Stored[Backup] | None = stored
        for _ in range(3):
            if current is None or not _needs_remote(current.value):
                self._replicator.remove(target)
                self._replicator.remove(manifest)
                return None
            new = current.value.model_copy(update={"copies": [*current.value.copies, copy]})
            if self._stored.replace(current, new) is not None:
                self._storages.add_usage(remote.id, local.bytes, 1)
                return None
            current = self._stored.find_stored(backup.id)
        return "the backup kept changing while its remote copy was recorded"

    def _prefix_of(self, storage_id: str) -> str:
        storage = self._storages.find(storage_id)
        return storage.prefix if storage else ""

    def _failed(self, execution: Execution, exc: BaseException) -> Execution:
        message = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        current = self._executions.find(execution.id) or execution
        final = self._finish(current, status="failed", error=message)
        self._events.publish(
            EVENT_FAILED, {"planId": final.planId, "executionId": final.id, "error": message}
        )
        return final

    def _fail_abandoned(self, owner: str) -> None:
        """The previous holder died without releasing: its execution is marked failed."""
        stale = self._executions.find(owner)
        if stale is not None and not stale.final:
            with contextlib.suppress(ExecutionWriteRefused):
                self._finish(
                    stale,
                    status="failed",
                    error="the executor stopped in the middle of the run (its lease expired)",
                )

    def _targets(
        self, plan: Plan, backup_id: str, expected: int, started: datetime
    ) -> tuple[list[DumpTarget], list[str]]:
        targets: list[DumpTarget] = []
        refused: list[str] = []
        for storage_id in plan.localStorageIds:
            storage = self._storages.find(storage_id)
            if storage is None:
                refused.append(f"storage {storage_id} no longer exists")
            elif storage.availableBytes < expected:
                refused.append(
                    f"{storage.name}: quota exhausted ({storage.availableBytes} bytes available, "
                    f"about {expected} needed)"
                )
            else:
                key = backup_key(storage, plan.id, backup_id, started)
                targets.append(DumpTarget(storage.id, storage.bucket, storage.region, key))
        return targets, refused

    def _expected_bytes(self, plan_id: str) -> tuple[int, int]:
        """(expected raw bytes, expected compressed bytes) of the next dump."""
        latest = self._backups.latest(plan_id)
        raw = self._engine.estimate_bytes(self._databases)
        if latest is not None and latest.rawBytes:
            ratio = latest.compressedBytes / latest.rawBytes
            return max(raw, latest.rawBytes), int(max(raw, latest.rawBytes) * ratio)
        return raw, int(raw * FIRST_RATIO)

    def _backup(
        self, plan: Plan, execution: Execution, deadline: Deadline, heartbeat: _Heartbeat
    ) -> tuple[DumpOutcome, Execution]:
        backup_id = uuid.uuid4().hex
        execution = execution.model_copy(update={"phase": "preflight", "updatedAt": self._clock()})
        self._executions.update(execution)
        expected = self._expect(plan.id)
        targets, refused = self._targets(plan, backup_id, expected.compressed_bytes, self._clock())
        if not targets:
            raise QuotaExhausted("quota exhausted: " + "; ".join(refused))
        needed = expected.seconds
        left = deadline.remaining_seconds() - TIME_MARGIN_SECONDS
        if needed is not None and needed > left:
            raise OutOfTime(
                f"the dump would take about {needed:.0f} s (about {expected.raw_bytes} bytes at "
                f"the last measured {expected.raw_bytes / needed:.0f} bytes/s) but the function "
                f"has {max(left, 0):.0f} s left: raise the executor's timeout or the throughput"
            )
        writer = _ProgressWriter(self, execution, expected.raw_bytes, heartbeat, deadline)
        outcome = self._engine.run(
            backup_id=backup_id,
            plan_id=plan.id,
            databases=self._databases,
            targets=targets,
            expected_bytes=expected.raw_bytes,
            progress=writer.report,
        )
        done = writer.execution.model_copy(
            update={
                "phase": "recording",
                "backupId": backup_id,
                "updatedAt": self._clock(),
                "progress": writer.execution.progress.model_copy(
                    update={
                        "bytesDumped": outcome.raw_bytes,
                        "compressedBytes": outcome.compressed_bytes,
                        "tablesDone": writer.execution.progress.tablesTotal,
                        "percent": 100.0,
                        "etaSeconds": 0.0,
                    }
                ),
            }
        )
        self._executions.update(done)
        self._record(plan, done, outcome, time.monotonic() - writer.started)
        if refused and not outcome.failover_reason:
            outcome = replace(outcome, failover_reason="; ".join(refused))
        return outcome, done

    def _expect(self, plan_id: str) -> _Expected:
        """The next dump's size from the server's table sizes (or the last backup, if larger),
        its compressed size and duration from the last backup's measured ratio and throughput."""
        latest = self._backups.latest(plan_id)
        raw = self._engine.estimate_bytes(self._databases)
        if latest is None or not latest.rawBytes:
            return _Expected(raw, int(raw * FIRST_RATIO), None)
        raw = max(raw, latest.rawBytes)
        ratio = latest.compressedBytes / latest.rawBytes
        seconds = None
        if latest.durationSeconds:
            seconds = raw / (latest.rawBytes / latest.durationSeconds)
        return _Expected(raw, int(raw * ratio), seconds)

    def update_progress(self, execution: Execution) -> None:
        self._executions.update(execution)

    def _record(
        self, plan: Plan, execution: Execution, outcome: DumpOutcome, seconds: float
    ) -> None:
        target = outcome.target
        backup = Backup(
            id=execution.backupId or "",
            planId=plan.id,
            executionId=execution.id,
            trigger=execution.trigger,
            createdAt=self._clock(),
            rawBytes=outcome.raw_bytes,
            compressedBytes=outcome.compressed_bytes,
            compression=outcome.compression,
            sha256=outcome.sha256,
            databases=outcome.databases,
            durationSeconds=round(seconds, 3),
            copies=[
                BackupCopy(
                    storageId=target.storage_id,
                    role="local",
                    bucket=target.bucket,
                    region=target.region,
                    key=target.key,
                    manifestKey=outcome.manifest_key,
                    bytes=outcome.compressed_bytes,
                )
            ],
        )
        if plan.remoteSync:
            # Noted before the record exists, so a crash between the two can only leave a
            # pending id without a backup (skipped later), never a backup nobody will copy.
            self._pending.add(plan.id, backup.id)
        self._backups.create(backup)
        self._storages.add_usage(target.storage_id, outcome.compressed_bytes, 1)
        _measure(outcome, seconds)

    def executions(
        self, plan_id: str | None, status: str | None, limit: int, token: str | None
    ) -> Page[Execution]:
        return self._executions.page(plan_id, status, limit, token)

    def backups(self, plan_id: str | None, limit: int, token: str | None) -> Page[Backup]:
        return self._backups.page(plan_id, limit, token)

    def get_execution(self, execution_id: str) -> Execution:
        return self._executions.get(execution_id)

    def get_backup(self, backup_id: str) -> Backup:
        return self._backups.get(backup_id)


def _measure(outcome: DumpOutcome, seconds: float) -> None:
    """The dump's figures, as the backup records them (the time is the dump's, not the run's)."""
    metrics.add_metric(name="BackupDurationSeconds", unit=MetricUnit.Seconds, value=seconds)
    metrics.add_metric(name="BackupBytes", unit=MetricUnit.Bytes, value=outcome.compressed_bytes)
    metrics.add_metric(name="BackupRawBytes", unit=MetricUnit.Bytes, value=outcome.raw_bytes)
    if seconds > 0:
        metrics.add_metric(
            name="ThroughputBytesPerSecond",
            unit=MetricUnit.BytesPerSecond,
            value=outcome.raw_bytes / seconds,
        )


def _needs_remote(backup: Backup) -> bool:
    """Still missing its remote copy, and not because retention pruned it on purpose."""
    pruned_remote = any(p.role == "remote" for p in backup.pruned)
    return backup.remote_copy() is None and not pruned_remote


class QuotaExhausted(DomainError):
    code = "QuotaExhausted"


class OutOfTime(DomainError):
    code = "OutOfTime"


@dataclass(frozen=True)
class _Expected:
    raw_bytes: int
    compressed_bytes: int
    seconds: float | None


class _ProgressWriter:
    """Turns the pipeline's progress reports into execution updates every PROGRESS_SECONDS, and
    stops the run (by raising in its thread) when the lease is lost or time runs out."""

    def __init__(
        self,
        runner: BackupRunner,
        execution: Execution,
        expected_raw: int,
        heartbeat: _Heartbeat,
        deadline: Deadline,
    ) -> None:
        self._runner = runner
        self.execution = execution
        self._expected_raw = expected_raw
        self._heartbeat = heartbeat
        self._deadline = deadline
        self.started = time.monotonic()
        self._last = 0.0

    def report(self, progress: DumpProgress) -> None:
        if self._heartbeat.lost is not None:
            raise self._heartbeat.lost
        if self._deadline.remaining_seconds() < TIME_MARGIN_SECONDS:
            raise OutOfTime(
                f"the function's time ran out after {progress.bytes_dumped} bytes dumped "
                f"({progress.tables_done} of {progress.tables_total} tables): the upload was "
                "aborted; raise the executor's timeout"
            )
        now = time.monotonic()
        if now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        elapsed = now - self.started
        fraction = 0.0
        if self._expected_raw:
            fraction = min(progress.bytes_dumped / self._expected_raw, 0.99)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
        self.execution = self.execution.model_copy(
            update={
                "phase": "dumping",
                "updatedAt": datetime.now(UTC),
                "progress": ExecutionProgress(
                    bytesDumped=progress.bytes_dumped,
                    compressedBytes=progress.compressed_bytes,
                    tablesDone=progress.tables_done,
                    tablesTotal=progress.tables_total,
                    percent=round(fraction * 100, 1),
                    etaSeconds=round(eta, 1) if eta is not None else None,
                ),
            }
        )
        self._runner.update_progress(self.execution)
