"""The archive lag the monitor publishes per plan for the lag alarm, through the real monitor
handler on moto, and the two point-in-time alarms the template declares."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.template import load_template, properties
from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.domain.plan import Plan
from platform_backup.domain.recovery import ArchiveState
from platform_backup.domain.storage import Storage
from platform_backup.observability import NAMESPACE
from tests.support.moto_env import LOCAL_BUCKETS, REGION, MotoEnv


def make_plan(now: datetime, point_in_time: dict[str, Any] | None, state: str = "enabled") -> Plan:
    created = now - timedelta(days=1)
    DynamoStorageRepository().create(
        Storage(
            id="primary",
            name="primary",
            role="local",
            bucket=LOCAL_BUCKETS[0],
            region=REGION,
            capacityBytes=10**12,
            createdAt=created,
        )
    )
    plan = Plan.model_validate(
        {
            "id": uuid.uuid4().hex,
            "name": "platform-db",
            "localStorageIds": ["primary"],
            "policy": {"cycle": "hourly", "startTime": created.isoformat()},
            "retention": {"local": {"mode": "count", "value": 7}},
            "pointInTime": point_in_time,
            "state": state,
            "createdAt": created,
            "updatedAt": created,
        }
    )
    DynamoPlanRepository().create(plan)
    return plan


def archived_until(plan: Plan, moment: datetime) -> None:
    repo = DynamoArchiveRepository()
    state = repo.state(plan.id)
    saved = repo.save_state(state, ArchiveState(plan.id, last_sequence=3, covered_until=moment))
    assert saved is not None


def per_plan(output: str) -> dict[tuple[str, str], float]:
    """(metric, plan) -> value, from the EMF lines with a ``plan`` dimension."""
    found: dict[tuple[str, str], float] = {}
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == NAMESPACE
            if ["plan"] not in [d[-1:] for d in directive["Dimensions"]]:
                continue
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found[(metric["Name"], blob["plan"])] = float(
                    value[0] if isinstance(value, list) else value
                )
    return found


def run_monitor(aws: MotoEnv, capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str], float]:
    capsys.readouterr()
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    outcome = aws.invoker.invoke("pdb-monitor", event)
    assert outcome.function_error is None, outcome.payload
    return per_plan(capsys.readouterr().out)


FIVE = {"enabled": True, "archiveIntervalMinutes": 5}
FIFTEEN = {"enabled": True, "archiveIntervalMinutes": 15}


@pytest.mark.parametrize(
    ("point_in_time", "state", "archived_ago", "seconds", "ratio"),
    [
        # The newest archived file closed 12 minutes ago: 2.4 intervals, above the alarm's 2.
        (FIVE, "enabled", timedelta(minutes=12), 720, 2.4),
        # Nothing archived since the plan changed a day ago: late from that change.
        (FIFTEEN, "enabled", None, 86400, 96),
        # A paused plan is not late.
        (FIVE, "paused", timedelta(hours=3), 0, 0),
    ],
    ids=["behind", "nothing-archived", "paused"],
)
def test_an_archiving_plan_publishes_its_lag_and_its_ratio_to_the_interval(
    aws: MotoEnv,
    capsys: pytest.CaptureFixture[str],
    point_in_time: dict[str, Any],
    state: str,
    archived_ago: timedelta | None,
    seconds: float,
    ratio: float,
) -> None:
    # Given a plan archiving its binary log
    now = datetime.now(UTC)
    plan = make_plan(now, point_in_time, state)
    if archived_ago is not None:
        archived_until(plan, now - archived_ago)

    # When the monitor runs
    published = run_monitor(aws, capsys)

    # Then it publishes the plan's lag and its ratio to the interval, under the plan
    assert set(published) == {("ArchiveLagSeconds", plan.id), ("ArchiveLagRatio", plan.id)}
    assert published[("ArchiveLagSeconds", plan.id)] == pytest.approx(seconds, abs=30)
    assert published[("ArchiveLagRatio", plan.id)] == pytest.approx(ratio, abs=0.1)


def test_a_plan_that_does_not_archive_publishes_no_lag(
    aws: MotoEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a plan without point-in-time recovery
    make_plan(datetime.now(UTC), None)

    # When the monitor runs
    # Then it publishes no lag (the lag alarm is not fed by plans that do not archive)
    assert run_monitor(aws, capsys) == {}


def alarm(logical_id: str) -> dict[str, Any]:
    return properties(load_template().resources("AWS::CloudWatch::Alarm")[logical_id])


def test_the_lag_alarm_fires_above_twice_the_interval_and_any_break_alarms() -> None:
    # Given the template's point-in-time alarms
    lag, breaks = alarm("ArchiveLagAlarm"), alarm("RecoveryHistoryBreakAlarm")

    # Then the lag alarm reads the ratio the monitor publishes, above 2, over every plan
    assert lag["Metrics"][0]["Expression"] == f"SELECT MAX(ArchiveLagRatio) FROM {NAMESPACE}"
    assert (lag["ComparisonOperator"], lag["Threshold"]) == ("GreaterThanThreshold", 2)
    # And one recorded break is enough for the other
    assert breaks["Metrics"][0]["Expression"] == (
        f"SELECT SUM(RecoveryHistoryBreaks) FROM {NAMESPACE}"
    )
    assert (breaks["ComparisonOperator"], breaks["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )
