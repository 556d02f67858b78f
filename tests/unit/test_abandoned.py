"""Which running executions nobody runs any more (pure), and the monitor failing them with the
reason while it leaves alone the ones still alive or still on their way."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from platform_backup.adapters.execution_repo import DynamoExecutionRepository
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.tables import ExecutionItem
from platform_backup.domain.execution import Execution
from platform_backup.domain.lease import Holder
from platform_backup.services.abandoned import NEVER_STARTED, STOPPED, abandonment
from tests.support.moto_env import MotoEnv
from tests.support.throttle import no_backoff, throttled

__all__ = ["no_backoff"]

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def execution(
    phase: str = "dumping",
    started: timedelta = timedelta(minutes=5),
    updated: timedelta | None = timedelta(minutes=2),
    trigger: str = "schedule",
    requested_by: str | None = None,
) -> Execution:
    return Execution.model_validate(
        {
            "id": "run-1",
            "planId": "p1",
            "trigger": trigger,
            "phase": phase,
            "startedAt": NOW - started,
            "updatedAt": NOW - updated if updated is not None else None,
            "requestedBy": requested_by,
        }
    )


def holder(owner: str = "run-1", expires_in: float = 30.0) -> Holder:
    return Holder(owner, "backup", NOW.timestamp() + expires_in, "schedule backup")


@pytest.mark.parametrize(
    ("run", "lease", "expected"),
    [
        # Its lease held and unexpired: alive, however long since it wrote
        (execution(), holder(), None),
        # Its lease expired: the executor stopped
        (execution(), holder(expires_in=-1), STOPPED),
        # The lease gone or another's, and no write for longer than a lease period
        (execution(), None, STOPPED),
        (execution(), holder("next-run"), STOPPED),
        # ... but a job that just released writes its final status next: not yet
        (execution(updated=timedelta(seconds=5)), None, None),
        # A run-now still queued: on its way while Lambda may still deliver it
        (execution("queued", timedelta(minutes=50), None, "manual"), None, None),
        (execution("queued", timedelta(hours=1, minutes=2), None, "manual"), None, NEVER_STARTED),
        # A scheduled run is recorded by the executor itself: queued and unleased, it died
        (execution("queued", timedelta(minutes=5), None), None, STOPPED),
        # A safety backup runs under its restore's lease
        (execution(trigger="pre-restore", requested_by="restore r-9"), holder("r-9"), None),
        (
            execution(trigger="pre-restore", requested_by="restore r-9"),
            holder("r-9", -1),
            STOPPED,
        ),
    ],
)
def test_abandonment(run: Execution, lease: Holder | None, expected: str | None) -> None:
    assert abandonment(run, lease, NOW) == expected


def test_the_monitor_fails_what_nobody_runs_and_leaves_the_rest(aws: MotoEnv) -> None:
    now = datetime.now(UTC)
    executions = DynamoExecutionRepository()
    # Given a run-now whose invocation Lambda never delivered (queued for two hours)
    lost = Execution(id="lost", planId="p1", trigger="manual", startedAt=now - timedelta(hours=2))
    # And a run-now just asked for, and a run whose executor holds the plan's lease
    fresh = Execution(id="fresh", planId="p2", trigger="manual", startedAt=now)
    alive = Execution(
        id="alive", planId="p3", trigger="schedule", phase="dumping", startedAt=now, updatedAt=now
    )
    for record in (lost, fresh, alive):
        executions.create(record)
    assert DynamoLeases().acquire("p3", "alive", "backup", "schedule backup", time.time(), 60)[0]

    # When the monitor runs, as its schedule runs it
    outcome = aws.invoker.invoke("pdb-monitor", {})

    # Then only the lost one is failed, saying why
    assert outcome.function_error is None, outcome.payload
    assert json.loads(outcome.payload)["reaped"] == [
        {"executionId": "lost", "error": NEVER_STARTED}
    ]
    assert executions.get("lost").status == "failed"
    assert executions.get("lost").finishedAt is not None
    assert executions.get("fresh").status == "running"
    assert executions.get("alive").status == "running"


def test_a_throttled_look_for_abandoned_runs_still_publishes_staleness(
    aws: MotoEnv, no_backoff: None
) -> None:
    # Given the executions table throttling every query
    with throttled(ExecutionItem, "Query"):
        # When the monitor runs
        outcome = aws.invoker.invoke("pdb-monitor", {})
    # Then it still answers with the staleness the alarm needs, and reaped nothing
    assert outcome.function_error is None, outcome.payload
    answer = json.loads(outcome.payload)
    assert answer["reaped"] == []
    assert answer["stalenessRatio"] == 0.0


def test_a_run_that_died_in_its_remote_copy_keeps_its_recorded_backup_as_partial(
    aws: MotoEnv,
) -> None:
    now = datetime.now(UTC)
    executions = DynamoExecutionRepository()
    # Given a run that recorded its backup, then died copying it to the remote storage, and a
    # run that died in its dump
    stale = now - timedelta(minutes=5)
    syncing = Execution(
        id="syncing",
        planId="p1",
        trigger="schedule",
        phase="replicating",
        backupId="b-1",
        startedAt=stale,
        updatedAt=stale,
    )
    dumping = Execution(
        id="dumping", planId="p2", trigger="schedule", phase="dumping", startedAt=stale
    )
    for record in (syncing, dumping):
        executions.create(record)

    # When the monitor runs
    outcome = aws.invoker.invoke("pdb-monitor", {})

    # Then the first is partially-succeeded, naming its backup and the catch-up; the other failed
    assert outcome.function_error is None, outcome.payload
    partial = executions.get("syncing")
    assert partial.status == "partially-succeeded"
    assert partial.error and partial.error.startswith(STOPPED)
    assert "backup b-1 is recorded" in partial.error and "next run" in partial.error
    assert executions.get("dumping").status == "failed"
    assert executions.get("dumping").error == STOPPED
