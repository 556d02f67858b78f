"""A scheduled delivery more than half the plan's cycle late is recorded as skipped with the
reason, not run: the bound (pure), and the executor given the schedule's own input, filled in
as EventBridge Scheduler fills it, hours after its time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from platform_backup.adapters.lease import DynamoLeases
from platform_backup.domain.late_delivery import delivery_bound, late_reason
from platform_backup.domain.plan import Policy
from tests.support.api import ApiClient
from tests.support.moto_env import MotoEnv


def policy(**fields: Any) -> Policy:
    return Policy.model_validate(
        {"startTime": "2026-01-01T00:05:00+00:00", "timezone": "UTC", **fields}
    )


HOURLY = policy(cycle="hourly")
DAILY = policy(cycle="daily", executionTime="02:00")
# Sunday and Tuesday at 02:00: two days from Sunday, five from Tuesday.
WEEKLY = policy(cycle="weekly", executionTime="02:00", weekdays=["SUN", "TUE"])
SUNDAY = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
TUESDAY = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("plan", "scheduled", "bound"),
    [
        (HOURLY, datetime(2026, 12, 1, 10, 5, tzinfo=UTC), timedelta(minutes=30)),
        # A time between two runs (the plan changed since): half the gap it falls in
        (HOURLY, datetime(2026, 12, 1, 10, 4, tzinfo=UTC), timedelta(minutes=30)),
        (DAILY, TUESDAY, timedelta(hours=12)),
        (WEEKLY, SUNDAY, timedelta(days=1)),
        (WEEKLY, TUESDAY, timedelta(days=2, hours=12)),
    ],
)
def test_the_bound_is_half_the_gap_to_the_plans_next_run(
    plan: Policy, scheduled: datetime, bound: timedelta
) -> None:
    assert delivery_bound(plan, scheduled) == bound


def test_daylight_saving_counts_the_real_hours_to_the_next_run() -> None:
    # Given a daily 03:30 plan in Berlin, the night the clocks go back (25 hours to the next run)
    berlin = policy(cycle="daily", executionTime="03:30", timezone="Europe/Berlin")
    scheduled = datetime(2026, 10, 24, 1, 30, tzinfo=UTC)  # 03:30 CEST
    # Then the bound is half of 25 hours, not of 24
    assert delivery_bound(berlin, scheduled) == timedelta(hours=12, minutes=30)


def test_a_delivery_within_the_bound_is_on_time_and_one_past_it_is_late() -> None:
    scheduled = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
    assert late_reason(HOURLY, scheduled, scheduled + timedelta(minutes=30)) is None
    reason = late_reason(HOURLY, scheduled, scheduled + timedelta(hours=5, minutes=1))
    assert reason is not None
    assert reason.startswith("delivered 5h01m late (scheduled for 2026-12-01T10:05:00Z)")
    assert "(30m)" in reason
    # A delivery before its time (a clock ahead) is not late
    assert late_reason(HOURLY, scheduled, scheduled - timedelta(minutes=1)) is None


@pytest.fixture
def plan_id(api: ApiClient) -> str:
    storage = api.add_storage("primary", "pdb-primary")
    plan = api.post(
        "/v1/plans",
        {
            "name": "platform-db",
            "localStorageIds": [storage],
            "policy": {"cycle": "hourly", "startTime": "2026-01-01T00:05:00Z", "timezone": "UTC"},
            "retention": {"local": {"mode": "count", "value": 7}},
        },
    )
    assert plan.status == 201, plan.body
    return str(plan.body["id"])


def test_a_scheduled_run_delivered_hours_late_is_skipped_with_the_reason(
    aws: MotoEnv, api: ApiClient, plan_id: str
) -> None:
    # Given the input the plan's schedule holds, filled in by the scheduler for a run due at
    # the plan's minute five hours ago, and delivered only now
    schedule = aws.client("scheduler").get_schedule(
        Name=f"pdb-plan-{plan_id}", GroupName=aws.settings.schedule_group
    )
    # (the plan's last XX:05 at least five hours ago, so between 5 and 6 hours late)
    five_hours_ago = datetime.now(UTC) - timedelta(hours=5)
    due = five_hours_ago.replace(minute=5, second=0, microsecond=0)
    if due > five_hours_ago:
        due -= timedelta(hours=1)
    event = json.loads(
        schedule["Target"]["Input"].replace(
            "<aws.scheduler.scheduled-time>", due.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    )

    # When the executor receives it
    outcome = aws.invoker.invoke("pdb-executor", event)

    # Then the run is recorded as skipped, saying how late it came, and nothing ran
    assert outcome.function_error is None, outcome.payload
    assert json.loads(outcome.payload)["status"] == "skipped"
    [execution] = api.get(f"/v1/executions?planId={plan_id}").body["items"]
    assert execution["status"] == "skipped"
    assert execution["reason"].startswith("delivered 5h")
    assert "late" in execution["reason"] and "not run" in execution["reason"]
    assert execution["scheduledTime"].startswith(due.strftime("%Y-%m-%dT%H:%M:%S"))
    assert api.get(f"/v1/backups?planId={plan_id}").body["items"] == []
    # And the plan was never taken: the next run finds it free
    assert DynamoLeases().holder(plan_id) is None
    # And a second delivery of the same late time changes nothing
    again = aws.invoker.invoke("pdb-executor", event)
    assert json.loads(again.payload)["executionId"] == execution["id"]
    assert len(api.get(f"/v1/executions?planId={plan_id}").body["items"]) == 1
