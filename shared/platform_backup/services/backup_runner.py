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

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from platform_backup.domain import catalog
from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.execution import Execution, ExecutionProgress
from platform_backup.domain.late_delivery import late_reason
from platform_backup.domain.lease import LeaseLost
from platform_backup.domain.plan import Plan, PlanState, stand_in_plan
from platform_backup.domain.point_in_time import binlog_position
from platform_backup.domain.progress import PROGRESS_SECONDS, TIME_MARGIN_SECONDS, estimate
from platform_backup.domain.storage import Storage
from platform_backup.errors import (
    DependencyFailed,
    DomainError,
    OutOfTime,
    QuotaExhausted,
    ValidationFailed,
)
from platform_backup.observability import logger
from platform_backup.services.abandoned import RESTORE_REQUESTER, AbandonedExecutions
from platform_backup.services.lease_keeper import LEASE_TTL_SECONDS, LeaseKeeper
from platform_backup.services.ports import (
    BackupRepository,
    Deadline,
    DumpEngine,
    DumpOutcome,
    DumpProgress,
    DumpTarget,
    EventPublisher,
    ExecutionRepository,
    ExecutionWriteRefused,
    Leases,
    PendingRemote,
    PlanLookup,
    RunMetrics,
    StorageRepository,
)
from platform_backup.services.remote_sync import RemoteSync

_SCHEDULED = uuid.UUID("6f1d7c2e-3b7a-4d55-9a0e-5d2b8a1c9e41")
# Compressed dumps are a fraction of the raw SQL; until a backup of the plan has been measured,
# the quota check assumes this ratio (zstd on the benchmark data gives about 0.23).
FIRST_RATIO = 0.5
# The dump's size is itself an estimate: progress stays below 100% until the dump ends.
DUMP_CEILING = 0.99
EVENT_SUCCEEDED = "Backup Succeeded"
EVENT_PARTIAL = "Backup Partially Succeeded"
EVENT_FAILED = "Backup Failed"


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
    """The storage's key of a backup (domain/catalog.py: the one naming scheme)."""
    return catalog.backup_key(storage.prefix, plan_id, backup_id, started)


class BackupRunner:
    def __init__(
        self,
        plans: PlanLookup,
        storages: StorageRepository,
        executions: ExecutionRepository,
        backups: BackupRepository,
        pending: PendingRemote,
        leases: Leases,
        engine: DumpEngine,
        remote: RemoteSync,
        events: EventPublisher,
        metrics: RunMetrics,
        databases: list[str],
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._storages = storages
        self._executions = executions
        self._backups = backups
        self._pending = pending
        self._leases = leases
        self._engine = engine
        self._remote = remote
        self._events = events
        self._metrics = metrics
        self._databases = databases
        self._clock = clock
        self._abandoned = AbandonedExecutions(executions, metrics, clock)

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

    def run_started(self, execution_id: str, deadline: Deadline) -> Execution:
        """A run-now the API recorded (services/run_now.py)."""
        execution = self._executions.get(execution_id)
        if execution.final:
            return execution
        return self._run(execution, deadline)

    def run_for_restore(
        self, plan_id: str, restore_id: str, deadline: Deadline, orphan_storage_ids: list[str]
    ) -> Execution:
        """The safety backup before an in-place restore: a regular backup (trigger
        ``pre-restore``) that runs under the restore's lease, which the restore keeps. A plan
        that is gone is stood in for by ``orphan_storage_ids`` (domain.plan.stand_in_plan)."""
        execution = Execution(
            id=uuid.uuid4().hex,
            planId=plan_id,
            trigger="pre-restore",
            startedAt=self._clock(),
            requestedBy=f"{RESTORE_REQUESTER}{restore_id}",
        )
        self._executions.create(execution)
        stand_in = stand_in_plan(plan_id, orphan_storage_ids, execution.startedAt)
        return self._run(execution, deadline, lease_owner=restore_id, stand_in=stand_in)

    # -- the run ----------------------------------------------------------------------------

    def _finish(self, execution: Execution, **changes: object) -> Execution:
        now = self._clock()
        final = execution.model_copy(update={**changes, "finishedAt": now, "updatedAt": now})
        self._executions.update(final)
        # Counted only once stored: a write refused (the execution was final already) counts
        # nothing, and an abandoned run marked failed here counts as the failure it was.
        self._metrics.outcome(final.status)
        return final

    def _run(
        self,
        execution: Execution,
        deadline: Deadline,
        lease_owner: str | None = None,
        stand_in: Plan | None = None,
    ) -> Execution:
        plan = self._plans.find(execution.planId) or stand_in
        if plan is None:
            return self._finish(execution, status="skipped", reason="the plan no longer exists")
        if plan.state == PlanState.PAUSED.value and execution.trigger == "schedule":
            return self._finish(execution, status="skipped", reason="the plan is paused")
        if execution.trigger == "schedule" and execution.scheduledTime is not None:
            late = late_reason(plan.policy, execution.scheduledTime, execution.startedAt)
            if late is not None:
                return self._finish(execution, status="skipped", reason=late)
        if lease_owner is not None:
            return self._work(plan, execution, deadline, lease_owner, release=False)
        try:
            taken, found = self._leases.acquire(
                plan.id,
                execution.id,
                "backup",
                f"{execution.trigger} backup",
                time.time(),
                LEASE_TTL_SECONDS,
            )
        except DependencyFailed as exc:
            # Nobody was found holding the plan: a failure with its cause, never "busy".
            return self._failed(execution, exc)
        if not taken:
            holder = f"{found.kind} {found.owner}" if found else "another job"
            return self._finish(
                execution, status="skipped", reason=f"the plan is busy: {holder} is running"
            )
        if found is not None:
            # The previous holder died without releasing: its execution is marked failed.
            self._abandoned.fail_taken_over(found.owner)
        return self._work(plan, execution, deadline, execution.id, release=True)

    def _work(
        self, plan: Plan, execution: Execution, deadline: Deadline, owner: str, release: bool
    ) -> Execution:
        def renew() -> None:
            self._leases.renew(plan.id, owner, time.time(), LEASE_TTL_SECONDS)

        keeper = LeaseKeeper(renew, name=f"lease-{owner}")
        keeper.start()
        failure: BaseException | None = None
        remote_error: str | None = None
        try:
            outcome, execution = self._backup(plan, execution, deadline, keeper)
            if plan.remoteSync and plan.remoteStorageId:
                execution = self._progress(execution, phase="replicating")
                remote_error = self._remote.replicate_pending(plan, keeper, deadline)
        except (DomainError, LeaseLost) as exc:
            failure = exc
        except Exception as exc:
            logger.exception("backup failed unexpectedly", execution_id=execution.id)
            failure = exc
        finally:
            # Released before the final status is written: whoever sees it can start next.
            keeper.stop()
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

    def _failed(self, execution: Execution, exc: BaseException) -> Execution:
        message = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        current = self._executions.find(execution.id) or execution
        final = self._finish(current, status="failed", error=message)
        self._events.publish(
            EVENT_FAILED, {"planId": final.planId, "executionId": final.id, "error": message}
        )
        return final

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

    def _backup(
        self, plan: Plan, execution: Execution, deadline: Deadline, keeper: LeaseKeeper
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
        writer = _ProgressWriter(self._executions, execution, expected.raw_bytes, keeper, deadline)
        outcome = self._engine.run(
            backup_id=backup_id,
            plan_id=plan.id,
            databases=self._databases,
            targets=targets,
            expected_bytes=expected.raw_bytes,
            progress=writer.report,
            execution_id=execution.id,
            trigger=execution.trigger,
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
            outcome = outcome._replace(failover_reason="; ".join(refused))
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
            binlog=binlog_position(outcome.binlog),
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
        # The dump's figures (its time, not the run's).
        self._metrics.dump(outcome.raw_bytes, outcome.compressed_bytes, seconds)


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
        executions: ExecutionRepository,
        execution: Execution,
        expected_raw: int,
        keeper: LeaseKeeper,
        deadline: Deadline,
    ) -> None:
        self._executions = executions
        self.execution = execution
        self._expected_raw = expected_raw
        self._keeper = keeper
        self._deadline = deadline
        self.started = time.monotonic()
        self._last = 0.0

    def report(self, progress: DumpProgress) -> None:
        self._keeper.check()
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
        done = estimate(progress.bytes_dumped, self._expected_raw, now - self.started, DUMP_CEILING)
        self.execution = self.execution.model_copy(
            update={
                "phase": "dumping",
                "updatedAt": datetime.now(UTC),
                "progress": ExecutionProgress(
                    bytesDumped=progress.bytes_dumped,
                    compressedBytes=progress.compressed_bytes,
                    tablesDone=progress.tables_done,
                    tablesTotal=progress.tables_total,
                    percent=done.percent,
                    etaSeconds=done.eta_seconds,
                ),
            }
        )
        self._executions.update(self.execution)
