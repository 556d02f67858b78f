"""The plan's archive schedule, through the real API and scheduler handlers on moto: present,
every archiveIntervalMinutes, only while the plan is enabled with point-in-time recovery on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import ApiClient
from tests.support.archive_records import StandInArchiver
from tests.support.moto_env import MotoEnv


@pytest.fixture
def plan_body(api: ApiClient, aws: MotoEnv, tmp_path: Path) -> dict[str, Any]:
    # The server check before archiving is turned on answers "fine" (the real check, against a
    # server with and without binary logging, is tests/integration/test_archiver.py's).
    StandInArchiver(aws, tmp_path)
    ids = []
    for name, bucket in (("primary", "pdb-primary"), ("fallback", "pdb-fallback")):
        body = {
            "name": name,
            "role": "local",
            "bucket": bucket,
            "region": "us-east-1",
            "capacityBytes": 10**12,
        }
        ids.append(api.post("/v1/storages", body).body["id"])
    return {
        "name": "platform-db",
        "localStorageIds": ids,
        "policy": {"cycle": "hourly", "startTime": "2026-01-01T00:05:00Z"},
        "retention": {"local": {"mode": "count", "value": 7}},
        "pointInTime": {"enabled": True, "archiveIntervalMinutes": 5},
    }


def archive_schedule(aws: MotoEnv, plan_id: str) -> dict[str, Any] | None:
    names = [
        s["Name"]
        for s in aws.client("scheduler").list_schedules(GroupName=aws.settings.schedule_group)[
            "Schedules"
        ]
    ]
    if f"pdb-archive-{plan_id}" not in names:
        return None
    return dict(
        aws.client("scheduler").get_schedule(
            Name=f"pdb-archive-{plan_id}", GroupName=aws.settings.schedule_group
        )
    )


def test_a_plan_with_point_in_time_gets_an_archive_schedule(
    aws: MotoEnv, api: ApiClient, plan_body: dict[str, Any]
) -> None:
    # Given a plan created with point-in-time recovery every 5 minutes
    plan = api.post("/v1/plans", plan_body).body
    # When its schedules are read
    schedule = archive_schedule(aws, plan["id"])
    # Then the archiver is started every 5 minutes with the scheduled time and the kind
    assert schedule is not None
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == aws.settings.archiver_function_arn
    assert json.loads(schedule["Target"]["Input"]) == {
        "planId": plan["id"],
        "scheduledTime": "<aws.scheduler.scheduled-time>",
        "kind": "archive",
    }


def test_the_archive_schedule_follows_the_interval_and_goes_when_off_or_paused(
    aws: MotoEnv, api: ApiClient, plan_body: dict[str, Any]
) -> None:
    plan = api.post("/v1/plans", plan_body).body
    # When the interval becomes 1 minute
    one = {**plan_body, "pointInTime": {"enabled": True, "archiveIntervalMinutes": 1}}
    assert api.put(f"/v1/plans/{plan['id']}", one).status == 200
    schedule = archive_schedule(aws, plan["id"])
    # Then the schedule follows (in the scheduler's singular for one)
    assert schedule is not None and schedule["ScheduleExpression"] == "rate(1 minute)"
    # When the plan is paused, the archive schedule goes; resumed, it is back
    api.post(f"/v1/plans/{plan['id']}/pause")
    assert archive_schedule(aws, plan["id"]) is None
    api.post(f"/v1/plans/{plan['id']}/resume")
    assert archive_schedule(aws, plan["id"]) is not None
    # When point-in-time recovery is turned off, it goes too
    off = {**plan_body, "pointInTime": {"enabled": False}}
    assert api.put(f"/v1/plans/{plan['id']}", off).status == 200
    assert archive_schedule(aws, plan["id"]) is None
    # And deleting the plan leaves no schedule of it
    on = api.put(f"/v1/plans/{plan['id']}", plan_body)
    assert on.status == 200 and archive_schedule(aws, plan["id"]) is not None
    api.delete(f"/v1/plans/{plan['id']}")
    assert archive_schedule(aws, plan["id"]) is None
