"""The console's path through the local stack (`make run`): storages, the weekly plan of the
product documentation's example, its schedule in the embedded scheduler, and the refusals."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.http import Http

pytestmark = pytest.mark.e2e


@pytest.fixture
def http(stack: Any) -> Http:
    return Http(stack.api_url)


def _storage(http: Http, name: str, role: str, bucket: str) -> str:
    reply = http.post(
        "/v1/storages",
        {
            "name": name,
            "role": role,
            "bucket": bucket,
            "region": "us-east-1",
            "prefix": "platform-db/",
            "capacityBytes": 107374182400,
        },
    )
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def test_weekly_plan_of_the_documentation_end_to_end(stack: Any, http: Http) -> None:
    # Given two local storages and a remote one
    s3 = stack.client("s3")
    for bucket in ("e2e-primary", "e2e-fallback", "e2e-remote"):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    primary = _storage(http, "primary", "local", "e2e-primary")
    fallback = _storage(http, "fallback", "local", "e2e-fallback")
    remote = _storage(http, "remote", "remote", "e2e-remote")
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    body = {
        "name": "platform-db",
        "description": "weekly",
        "dataCenter": "dc-1",
        "objectType": "PlatformDatabase",
        "localStorageIds": [primary, fallback],
        "remoteSync": True,
        "remoteStorageId": remote,
        "policy": {
            "cycle": "weekly",
            "weekdays": ["SUN", "TUE"],
            "executionTime": "00:00",
            "startTime": start.isoformat(),
            "timezone": "Asia/Shanghai",
        },
        "retention": {
            "local": {"mode": "count", "value": 7},
            "remote": {"mode": "days", "value": 30},
        },
    }
    # When the plan is created
    created = http.post("/v1/plans", body)
    # Then
    assert created.status == 201, created.body
    plan_id = created.body["id"]
    try:
        runs = http.get(f"/v1/plans/{plan_id}/next-runs?count=4").body["runs"]
        shanghai = ZoneInfo("Asia/Shanghai")
        for run in runs:
            local = datetime.fromisoformat(run["local"])
            assert local.utcoffset() == timedelta(hours=8)
            assert (local.hour, local.minute) == (0, 0)
            assert local.astimezone(shanghai).strftime("%a") in ("Sun", "Tue")
            assert datetime.fromisoformat(run["utc"].replace("Z", "+00:00")) == local
            assert local >= start
        assert {datetime.fromisoformat(r["local"]).strftime("%a") for r in runs} == {"Sun", "Tue"}

        scheduler = stack.client("scheduler")
        groups = [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]
        group = next(g for g in groups if g != "default")
        schedule = scheduler.get_schedule(Name=f"pdb-plan-{plan_id}", GroupName=group)
        assert schedule["ScheduleExpression"] == "cron(0 0 ? * SUN,TUE *)"
        assert schedule["ScheduleExpressionTimezone"] == "Asia/Shanghai"
        assert schedule["StartDate"] == start
        assert schedule["State"] == "ENABLED"

        # And a second plan is refused
        second = http.post("/v1/plans", {**body, "name": "again"})
        assert second.status == 409
        assert "exists already" in second.body["error"]["message"]

        # And each bad input gets a 4xx naming its field
        bad_inputs = [
            (("retention", "local", "value"), 0, "retention.local.value"),
            (("localStorageIds",), [primary, fallback, remote], "localStorageIds"),
            (("retention", "remote"), None, "retention.remote"),
            (("remoteStorageId",), "no-such-storage", "remoteStorageId"),
            (("policy", "weekdays"), None, "policy.weekdays"),
            (("policy", "executionTime"), "25:00", "policy.executionTime"),
        ]
        for path, value, field in bad_inputs:
            changed = copy.deepcopy(body)
            node = changed
            for part in path[:-1]:
                node = node[part]
            if value is None:
                del node[path[-1]]
            else:
                node[path[-1]] = value
            reply = http.put(f"/v1/plans/{plan_id}", changed)
            assert 400 <= reply.status < 500, (field, reply.body)
            assert field in reply.error_fields, (field, reply.body)

        # And pause disables the schedule
        assert http.post(f"/v1/plans/{plan_id}/pause").body["state"] == "paused"
        schedule = scheduler.get_schedule(Name=f"pdb-plan-{plan_id}", GroupName=group)
        assert schedule["State"] == "DISABLED"
    finally:
        # And delete removes it
        assert http.delete(f"/v1/plans/{plan_id}").status == 204
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    assert f"pdb-plan-{plan_id}" not in names
    assert http.get(f"/v1/plans/{plan_id}").status == 404
