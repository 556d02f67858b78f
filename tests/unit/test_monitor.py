"""The staleness the monitor publishes for the stale-backup alarm, and the executor's outcome
metrics the failure alarm counts: the pure ratio, the last success read from DynamoDB (moto),
and what the handlers put in their EMF log lines."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from devstack.template import load_template, properties
from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.adapters.execution_repo import DynamoExecutionRepository
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.pending_remote import DynamoPendingRemote
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.run_metrics import PowertoolsRunMetrics
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.domain.execution import Execution, ExecutionStatus
from platform_backup.domain.plan import Plan
from platform_backup.domain.staleness import cycle_seconds, staleness
from platform_backup.domain.storage import Storage
from platform_backup.errors import DependencyFailed, DomainError
from platform_backup.observability import NAMESPACE, metrics
from platform_backup.services.backup_runner import BackupRunner
from platform_backup.services.ports import (
    Deadline,
    DumpOutcome,
    DumpProgress,
    DumpTarget,
    ObjectRef,
)
from platform_backup.services.remote_sync import RemoteSync
from tests.support.moto_env import LOCAL_BUCKETS, REGION, MotoEnv
from tests.support.schedule_times import on_time

NOW = datetime(2026, 10, 20, 9, 30, tzinfo=UTC)
HOUR = 3600.0
DAY = 24 * HOUR
WEEKLY = {"cycle": "weekly", "weekdays": ["SUN", "TUE"], "executionTime": "02:00"}
DAILY = {"cycle": "daily", "executionTime": "02:00"}
HOURLY = {"cycle": "hourly"}


def make_plan(
    schedule: dict[str, Any],
    started: datetime = NOW - timedelta(days=30),
    created: datetime = NOW - timedelta(days=30),
    state: str = "enabled",
    timezone: str = "UTC",
) -> Plan:
    return Plan.model_validate(
        {
            "id": uuid.uuid4().hex,
            "name": "platform-db",
            "localStorageIds": ["primary"],
            "policy": {**schedule, "startTime": started.isoformat(), "timezone": timezone},
            "retention": {"local": {"mode": "count", "value": 7}},
            "state": state,
            "createdAt": created,
            "updatedAt": created,
        }
    )


# -- the ratio (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "timezone", "expected"),
    [
        (WEEKLY, "Asia/Shanghai", 5 * DAY),  # Tuesday to Sunday, not a week split in two
        ({**WEEKLY, "weekdays": ["MON"]}, "UTC", 7 * DAY),
        (DAILY, "UTC", DAY),
        (HOURLY, "UTC", HOUR),
        # 2026-10-25, within the week ahead, Berlin turns its clocks back: that day is 25 h long.
        (DAILY, "Europe/Berlin", 25 * HOUR),
    ],
    ids=["weekly-sun-tue", "weekly-mon", "daily", "hourly", "daily-across-dst-end"],
)
def test_the_cycle_is_the_longest_gap_between_consecutive_runs(
    schedule: dict[str, Any], timezone: str, expected: float
) -> None:
    # Given a plan's schedule
    plan = make_plan(schedule, timezone=timezone)

    # When its cycle is derived from its run times
    cycle = cycle_seconds(plan.policy, NOW)

    # Then it is the longest wait between two runs
    assert cycle == expected


@pytest.mark.parametrize(
    ("schedule", "age", "expected"),
    [
        (WEEKLY, timedelta(days=6), 6 / 5),
        (DAILY, timedelta(hours=36), 1.5),
        (HOURLY, timedelta(minutes=45), 0.75),
    ],
    ids=["weekly", "daily", "hourly"],
)
def test_the_ratio_counts_from_the_last_success(
    schedule: dict[str, Any], age: timedelta, expected: float
) -> None:
    # Given a plan running for a month whose last success is some time ago
    plan = make_plan(schedule)

    # When its staleness is computed
    result = staleness(plan, NOW - age, NOW)

    # Then it is that time over the cycle
    assert result.ratio == pytest.approx(expected)
    assert result.seconds_since == age.total_seconds()
    assert result.since == "last success"


@pytest.mark.parametrize(
    ("schedule", "started", "created", "expected"),
    [
        (WEEKLY, NOW - timedelta(days=10), NOW - timedelta(days=12), 2.0),
        (DAILY, NOW - timedelta(days=3), NOW - timedelta(days=5), 3.0),
        # A start time before the plan was created counts from the creation.
        (HOURLY, NOW - timedelta(days=10), NOW - timedelta(hours=2), 2.0),
    ],
    ids=["weekly", "daily", "hourly-started-before-created"],
)
def test_without_a_success_the_ratio_counts_from_the_plan_start(
    schedule: dict[str, Any], started: datetime, created: datetime, expected: float
) -> None:
    # Given a plan that never had a successful backup
    plan = make_plan(schedule, started=started, created=created)

    # When its staleness is computed
    result = staleness(plan, None, NOW)

    # Then it counts from when the plan started to be expected to run
    assert result.ratio == pytest.approx(expected)
    assert result.since == "start, no success yet"


@pytest.mark.parametrize(
    ("plan", "why"),
    [
        (make_plan(DAILY, state="paused"), "paused"),
        (make_plan(DAILY, started=NOW + timedelta(days=2)), "start time ahead"),
    ],
    ids=["paused", "start-ahead"],
)
def test_a_plan_not_expected_to_run_is_never_late(plan: Plan, why: str) -> None:
    # Given a plan whose last success is long past, but that is paused or not started yet
    # When its staleness is computed
    result = staleness(plan, NOW - timedelta(days=60), NOW)

    # Then it reports 0, so the alarm stays quiet
    assert result.ratio == 0.0
    assert result.since == why


# -- the last success, read from the executions' byPlan index (moto) -------------------------


def record(plan_id: str, status: ExecutionStatus, age: timedelta, now: datetime = NOW) -> Execution:
    execution = Execution(
        id=uuid.uuid4().hex,
        planId=plan_id,
        trigger="schedule",
        status=status,
        startedAt=now - age,
        finishedAt=None if status == "running" else now - age + timedelta(minutes=5),
    )
    DynamoExecutionRepository().create(execution)
    return execution


def test_the_last_success_is_the_plans_newest_succeeded_or_partial_run(aws: MotoEnv) -> None:
    # Given a plan whose newest runs failed, were skipped or still run, after two successes,
    # and another plan with a newer success
    record("plan-a", "succeeded", timedelta(hours=5))
    partial = record("plan-a", "partially-succeeded", timedelta(hours=3))
    record("plan-a", "failed", timedelta(hours=2))
    record("plan-a", "skipped", timedelta(hours=1))
    record("plan-a", "running", timedelta(minutes=1))
    record("plan-b", "succeeded", timedelta(minutes=30))
    record("plan-c", "failed", timedelta(minutes=30))
    executions = DynamoExecutionRepository()

    # When the last success of each is read
    # Then the partially succeeded run is the plan's last success (its local copy exists)
    found = executions.last_success("plan-a")
    assert found is not None and found.id == partial.id
    # And a plan that never succeeded has none
    assert executions.last_success("plan-c") is None


# -- the handler (moto, the real handler through the local stack's invoker) -------------------


def emitted(output: str) -> dict[str, list[float]]:
    """Metric name -> values, from the EMF lines a handler printed."""
    found: dict[str, list[float]] = {}
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == NAMESPACE
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found.setdefault(metric["Name"], []).extend(
                    value if isinstance(value, list) else [value]
                )
    return found


def alarm_expression(logical_id: str) -> str:
    alarm = load_template().resources("AWS::CloudWatch::Alarm")[logical_id]
    return " ".join(m.get("Expression", "") for m in properties(alarm)["Metrics"])


def add_storage() -> None:
    DynamoStorageRepository().create(
        Storage(
            id="primary",
            name="primary",
            role="local",
            bucket=LOCAL_BUCKETS[0],
            region=REGION,
            capacityBytes=10**12,
            createdAt=NOW,
        )
    )


def run_monitor(aws: MotoEnv, capsys: pytest.CaptureFixture[str]) -> dict[str, list[float]]:
    capsys.readouterr()
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    outcome = aws.invoker.invoke("pdb-monitor", event)
    assert outcome.function_error is None, outcome.payload
    return emitted(capsys.readouterr().out)


def test_with_no_plan_the_monitor_publishes_zero(
    aws: MotoEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fresh deployment, no plan yet
    # When the monitor runs
    published = run_monitor(aws, capsys)

    # Then it still publishes a figure (the alarm takes silence as breaching), and it is 0
    assert published == {"StalenessRatio": [0.0]}


def test_the_monitor_publishes_the_staleness_the_alarm_reads(
    aws: MotoEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a daily plan whose last success finished 36 hours ago, and a failure since
    now = datetime.now(UTC)
    add_storage()
    plan = make_plan(DAILY, started=now - timedelta(days=10), created=now - timedelta(days=10))
    DynamoPlanRepository().create(plan)
    record(plan.id, "succeeded", timedelta(hours=36, minutes=5), now=now)
    record(plan.id, "failed", timedelta(hours=12), now=now)

    # When the monitor runs
    published = run_monitor(aws, capsys)

    # Then it publishes 1.5 cycles as StalenessRatio, the metric the stale-backup alarm reads
    assert list(published) == ["StalenessRatio"]
    assert published["StalenessRatio"] == [pytest.approx(1.5, abs=0.01)]
    assert "MAX(StalenessRatio)" in alarm_expression("BackupStaleAlarm")


# -- the executor's outcome metrics (moto records, a stand-in dump engine) --------------------

RAW_BYTES = 4000
COMPRESSED_BYTES = 1000


class StandInEngine:
    """Dumps nothing: returns the outcome a dump into the first target would, or fails."""

    def __init__(self, failure: DomainError | None = None) -> None:
        self._failure = failure

    def estimate_bytes(self, databases: list[str]) -> int:
        return RAW_BYTES

    def run(
        self,
        *,
        backup_id: str,
        plan_id: str,
        databases: list[str],
        targets: list[DumpTarget],
        expected_bytes: int | None,
        progress: Any,
        execution_id: str | None = None,
        trigger: str | None = None,
    ) -> DumpOutcome:
        if self._failure is not None:
            raise self._failure
        progress(DumpProgress(RAW_BYTES, COMPRESSED_BYTES, 1, 1))
        return DumpOutcome(
            target=targets[0],
            manifest_key=targets[0].key + ".manifest.json",
            raw_bytes=RAW_BYTES,
            compressed_bytes=COMPRESSED_BYTES,
            sha256="0" * 64,
            compression="zstd",
            databases=databases,
            failover_reason=None,
        )


class Unused:
    """Events and the replicator: not what these tests look at."""

    def publish(self, detail_type: str, detail: dict[str, object]) -> None:
        pass

    def copy(
        self, source: ObjectRef, target: ObjectRef, size: int | None, sha256: str | None
    ) -> None:
        raise AssertionError("the plan has no remote sync")

    def remove(self, target: ObjectRef) -> None:
        raise AssertionError("the plan has no remote sync")


@pytest.fixture
def metric_store() -> Iterator[dict[str, Any]]:
    """The Metrics singleton's unflushed store: the runner adds to it, a handler would flush it."""
    metrics.clear_metrics()
    yield metrics.metric_set
    metrics.clear_metrics()


def run_scheduled(engine: StandInEngine, state: str = "enabled") -> Execution:
    add_storage()
    plan = make_plan(DAILY, state=state)
    DynamoPlanRepository().create(plan)
    unused = Unused()
    runner = BackupRunner(
        plans=DynamoPlanRepository(),
        storages=DynamoStorageRepository(),
        executions=DynamoExecutionRepository(),
        backups=DynamoBackupRepository(),
        pending=DynamoPendingRemote(),
        leases=DynamoLeases(),
        engine=engine,
        remote=RemoteSync(
            DynamoStorageRepository(), DynamoBackupRepository(), unused, DynamoPendingRemote()
        ),
        events=unused,
        metrics=PowertoolsRunMetrics(),
        databases=["zstack"],
        clock=lambda: datetime.now(UTC),
    )
    return runner.run_scheduled(plan.id, on_time(), Deadline(lambda: 900.0))


def values(store: dict[str, Any]) -> dict[str, list[float]]:
    return {name: list(metric["Value"]) for name, metric in store.items()}


def test_a_successful_backup_counts_and_measures_itself(
    aws: MotoEnv, metric_store: dict[str, Any]
) -> None:
    # Given a plan whose dump succeeds
    # When its scheduled run finishes
    execution = run_scheduled(StandInEngine())

    # Then the run counts one success, with the dump's sizes, time and throughput
    assert execution.status == "succeeded"
    published = values(metric_store)
    duration = published.pop("BackupDurationSeconds")
    assert published == {
        "BackupBytes": [COMPRESSED_BYTES],
        "BackupRawBytes": [RAW_BYTES],
        "ThroughputBytesPerSecond": [pytest.approx(RAW_BYTES / duration[0])],
        "BackupSucceeded": [1],
    }
    assert metric_store["ThroughputBytesPerSecond"]["Unit"] == MetricUnit.BytesPerSecond.value


def test_a_failed_backup_counts_the_metric_the_failure_alarm_sums(
    aws: MotoEnv, metric_store: dict[str, Any]
) -> None:
    # Given a plan whose dump fails
    # When its scheduled run finishes
    execution = run_scheduled(StandInEngine(DependencyFailed("the server went away")))

    # Then the run counts one failure and nothing else, under the name the alarm sums
    assert execution.status == "failed"
    assert values(metric_store) == {"BackupFailed": [1]}
    assert "SUM(BackupFailed)" in alarm_expression("BackupFailedAlarm")


def test_a_skipped_run_counts_as_skipped(aws: MotoEnv, metric_store: dict[str, Any]) -> None:
    # Given a paused plan whose schedule still delivers a trigger
    # When the run is recorded as skipped
    execution = run_scheduled(StandInEngine(), state="paused")

    # Then it counts one skip, neither a success nor a failure
    assert execution.status == "skipped"
    assert values(metric_store) == {"BackupSkipped": [1]}
