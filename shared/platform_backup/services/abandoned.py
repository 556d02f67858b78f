"""Executions whose executor is gone, made final with the reason: by the next job that takes
over the plan's expired lease (services/backup_runner.py) and by the monitor, which looks every
few minutes so that a dead run is failed even when no next job comes.

An execution is alive while the plan's lease is held, unexpired, by its owner (the execution, or
for a safety backup the restore it runs under). Without that:
- it held the lease and it expired, or it lost it (released or taken over) and has not written
  for a lease period (a job releases just before its final write): "the executor stopped";
- it never took the lease (a run-now the API recorded, still queued): only once Lambda can no
  longer deliver its invocation (the executor's maximum event age) is it "never started".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from platform_backup.domain.execution import Execution
from platform_backup.domain.lease import Holder
from platform_backup.observability import logger
from platform_backup.services.lease_keeper import LEASE_TTL_SECONDS
from platform_backup.services.ports import (
    ExecutionRepository,
    ExecutionWriteRefused,
    Leases,
    RunMetrics,
    RunningExecutions,
)

LEASE_TTL = timedelta(seconds=LEASE_TTL_SECONDS)
STOPPED = "the executor stopped in the middle of the run (its lease expired)"
# template.yaml: ExecutorFunction's EventInvokeConfig.MaximumEventAgeInSeconds.
EXECUTOR_MAX_EVENT_AGE = timedelta(hours=1)
NEVER_STARTED = (
    "the executor never started this run: Lambda did not deliver its invocation within "
    "an hour (see the executor's failure queue)"
)
# Running executions are looked for this far back: a run lives 15 minutes, a queued one an hour.
LOOK_BACK = timedelta(days=7)
# A safety backup runs under the lease of the restore that asked for it.
RESTORE_REQUESTER = "restore "


def lease_owner(execution: Execution) -> str:
    requester = execution.requestedBy or ""
    if execution.trigger == "pre-restore" and requester.startswith(RESTORE_REQUESTER):
        return requester.removeprefix(RESTORE_REQUESTER)
    return execution.id


def abandonment(execution: Execution, holder: Holder | None, now: datetime) -> str | None:
    """Why a running execution is no longer run by anyone, or None while it may still be."""
    at = now.timestamp()
    if holder is not None and holder.owner == lease_owner(execution):
        return STOPPED if holder.expires_at <= at else None
    if execution.phase == "queued" and execution.trigger == "manual":
        # Recorded by the API; the executor may not have received it yet.
        waited = now - execution.startedAt
        return NEVER_STARTED if waited > EXECUTOR_MAX_EVENT_AGE + LEASE_TTL else None
    last_write = execution.updatedAt or execution.startedAt
    return STOPPED if now - last_write > LEASE_TTL else None


class AbandonedExecutions:
    """Marks an execution nobody runs any more failed, or partially-succeeded when it died in its
    remote copy with its backup recorded (a final status is never changed)."""

    def __init__(
        self,
        executions: ExecutionRepository,
        metrics: RunMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._executions = executions
        self._metrics = metrics
        self._clock = clock

    def fail(self, execution: Execution, reason: str = STOPPED) -> Execution | None:
        """The execution failed with ``reason``; None when it was final already."""
        if execution.final:
            return None
        now = self._clock()
        status = "failed"
        if execution.phase == "replicating" and execution.backupId:
            # Its backup was recorded whole before the remote copy began (backup_runner.py):
            # the local copy is good and stays pending for the next run's remote copy.
            status = "partially-succeeded"
            reason = (
                f"{reason}, during the remote copy: backup {execution.backupId} is recorded "
                "and restorable from its local copy; the next run makes its remote copy"
            )
        final = execution.model_copy(
            update={"status": status, "error": reason, "finishedAt": now, "updatedAt": now}
        )
        try:
            self._executions.update(final)
        except ExecutionWriteRefused:
            return None
        self._metrics.outcome(status)
        return final

    def fail_taken_over(self, owner: str) -> None:
        """The plan's previous lease holder died without releasing it: its execution failed."""
        stale = self._executions.find(owner)
        if stale is not None:
            self.fail(stale)


class ExecutionReaper:
    """The monitor's pass: every running execution of the last days that nobody runs."""

    def __init__(
        self,
        running: RunningExecutions,
        leases: Leases,
        abandoned: AbandonedExecutions,
        clock: Callable[[], datetime],
    ) -> None:
        self._running = running
        self._leases = leases
        self._abandoned = abandoned
        self._clock = clock

    def reap(self) -> list[Execution]:
        now = self._clock()
        holders: dict[str, Holder | None] = {}
        reaped = []
        for execution in self._running.running_since(now - LOOK_BACK):
            if execution.planId not in holders:
                holders[execution.planId] = self._leases.holder(execution.planId)
            reason = abandonment(execution, holders[execution.planId], now)
            if reason is None:
                continue
            failed = self._abandoned.fail(execution, reason)
            if failed is not None:
                logger.warning("abandoned execution failed", execution_id=failed.id, reason=reason)
                reaped.append(failed)
        return reaped
