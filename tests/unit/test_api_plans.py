"""The backup plan and its schedule, through the real API and scheduler handlers on moto."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.api import ApiClient, ApiResponse
from tests.support.moto_env import MotoEnv


@pytest.fixture
def storages(api: ApiClient) -> dict[str, str]:
    def register(name: str, role: str, bucket: str) -> str:
        body = {
            "name": name,
            "role": role,
            "bucket": bucket,
            "region": "us-east-1",
            "capacityBytes": 10**12,
        }
        response = api.post("/v1/storages", body)
        assert response.status == 201
        return str(response.body["id"])

    return {
        "primary": register("primary", "local", "pdb-primary"),
        "fallback": register("fallback", "local", "pdb-fallback"),
        "remote": register("remote", "remote", "pdb-remote"),
    }


def future(days: int = 7) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


@pytest.fixture
def plan_body(storages: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "platform-db",
        "description": "nightly",
        "dataCenter": "dc-1",
        "objectType": "PlatformDatabase",
        "localStorageIds": [storages["primary"], storages["fallback"]],
        "remoteSync": True,
        "remoteStorageId": storages["remote"],
        "policy": {
            "cycle": "weekly",
            "weekdays": ["SUN", "TUE"],
            "executionTime": "00:00",
            "startTime": future(),
            "timezone": "Asia/Shanghai",
        },
        "retention": {
            "local": {"mode": "count", "value": 7},
            "remote": {"mode": "days", "value": 30},
        },
    }


def schedule_of(aws: MotoEnv, plan_id: str) -> dict[str, Any]:
    return dict(
        aws.client("scheduler").get_schedule(
            Name=f"pdb-plan-{plan_id}", GroupName=aws.settings.schedule_group
        )
    )


def schedule_exists(aws: MotoEnv, plan_id: str) -> bool:
    names = [
        s["Name"]
        for s in aws.client("scheduler").list_schedules(GroupName=aws.settings.schedule_group)[
            "Schedules"
        ]
    ]
    return f"pdb-plan-{plan_id}" in names


def test_create_the_plan_builds_its_schedule(
    api: ApiClient, aws: MotoEnv, plan_body: dict[str, Any]
) -> None:
    # When
    created = api.post("/v1/plans", plan_body)
    # Then the plan is stored with every field
    assert created.status == 201, created.body
    plan = created.body
    assert plan["state"] == "enabled"
    assert plan["localStorageIds"] == plan_body["localStorageIds"]
    assert plan["retention"] == plan_body["retention"]
    assert api.get(f"/v1/plans/{plan['id']}").body == plan
    # And the scheduler holds its schedule, built from the plan
    schedule = schedule_of(aws, plan["id"])
    assert schedule["ScheduleExpression"] == "cron(0 0 ? * SUN,TUE *)"
    assert schedule["ScheduleExpressionTimezone"] == "Asia/Shanghai"
    assert schedule["State"] == "ENABLED"
    start = datetime.fromisoformat(plan_body["policy"]["startTime"])
    assert schedule["StartDate"] == start
    target = schedule["Target"]
    assert target["Arn"] == aws.settings.executor_function_arn
    assert target["RoleArn"] == aws.settings.scheduler_role_arn
    assert target["DeadLetterConfig"]["Arn"] == aws.settings.schedule_dlq_arn
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["Input"] == (
        '{"planId":"' + plan["id"] + '","scheduledTime":"<aws.scheduler.scheduled-time>"}'
    )


def test_a_second_platform_database_plan_is_refused(
    api: ApiClient, plan_body: dict[str, Any]
) -> None:
    first = api.post("/v1/plans", plan_body)
    second = api.post("/v1/plans", {**plan_body, "name": "another"})
    assert second.status == 409
    assert "exists already" in second.body["error"]["message"]
    assert first.body["id"] in second.body["error"]["message"]


def test_two_creates_at_once_make_exactly_one_plan(
    api: ApiClient, plan_body: dict[str, Any]
) -> None:
    # Given two creates released together
    barrier = threading.Barrier(2)
    results: list[ApiResponse] = []

    def create(name: str) -> None:
        barrier.wait()
        results.append(api.post("/v1/plans", {**plan_body, "name": name}))

    threads = [threading.Thread(target=create, args=(f"plan-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one succeeds and the other is told one exists
    assert sorted(r.status for r in results) == [201, 409]
    assert len(api.get("/v1/plans").body["items"]) == 1


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return changed


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("retention.local.value", 0, "retention.local.value"),
        ("retention.remote.value", 0, "retention.remote.value"),
        ("retention.remote", _DELETE, "retention.remote"),
        ("policy.weekdays", [], "policy.weekdays"),
        ("policy.weekdays", _DELETE, "policy.weekdays"),
        ("policy.weekdays", ["SUN", "FUNDAY"], "policy.weekdays.1"),
        ("policy.executionTime", "25:00", "policy.executionTime"),
        ("policy.executionTime", _DELETE, "policy.executionTime"),
        ("policy.timezone", "Mars/Olympus", "policy.timezone"),
        ("policy.startTime", "2026-12-01T00:00:00", "policy.startTime"),
        ("policy.cycle", "monthly", "policy.cycle"),
        ("name", "", "name"),
        ("name", "x" * 129, "name"),
        ("name", _DELETE, "name"),
        ("objectType", "VmInstance", "objectType"),
        ("retention.local.mode", "permanent", "retention.local.mode"),
        ("remoteStorageId", _DELETE, "remoteStorageId"),
    ],
)
def test_invalid_plans_get_400_naming_the_field(
    api: ApiClient, plan_body: dict[str, Any], path: str, value: Any, field: str
) -> None:
    response = api.post("/v1/plans", _set(plan_body, path, value))
    assert response.status == 400, response.body
    assert field in response.error_fields, response.body
    assert api.get("/v1/plans").body["items"] == []


def test_three_local_storages_are_refused(
    api: ApiClient, plan_body: dict[str, Any], storages: dict[str, str]
) -> None:
    third = api.post(
        "/v1/storages",
        {
            "name": "third",
            "role": "local",
            "bucket": "pdb-primary",
            "region": "us-east-1",
            "capacityBytes": 1,
        },
    ).body["id"]
    body = {**plan_body, "localStorageIds": [*plan_body["localStorageIds"], third]}
    response = api.post("/v1/plans", body)
    assert response.status == 400
    assert response.error_fields == ["localStorageIds"]


def test_sync_without_remote_retention_is_refused(
    api: ApiClient, plan_body: dict[str, Any]
) -> None:
    body = _set(plan_body, "retention.remote", _DELETE)
    response = api.post("/v1/plans", body)
    assert response.status == 400
    assert response.error_fields == ["retention.remote"]
    assert "remoteSync" in response.body["error"]["message"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("remoteStorageId", "no-such-storage", "remoteStorageId"),
        ("localStorageIds", ["no-such-storage"], "localStorageIds.0"),
    ],
)
def test_unknown_storages_are_refused_with_422(
    api: ApiClient, plan_body: dict[str, Any], field: str, value: Any, expected: str
) -> None:
    response = api.post("/v1/plans", {**plan_body, field: value})
    assert response.status == 422
    assert response.error_fields == [expected]


def test_storages_of_the_wrong_role_are_refused(
    api: ApiClient, plan_body: dict[str, Any], storages: dict[str, str]
) -> None:
    body = {
        **plan_body,
        "localStorageIds": [storages["remote"]],
        "remoteStorageId": storages["primary"],
    }
    response = api.post("/v1/plans", body)
    assert response.status == 422
    assert sorted(response.error_fields) == ["localStorageIds.0", "remoteStorageId"]


def test_pause_disables_resume_enables_delete_removes(
    api: ApiClient, aws: MotoEnv, plan_body: dict[str, Any]
) -> None:
    plan = api.post("/v1/plans", plan_body).body
    paused = api.post(f"/v1/plans/{plan['id']}/pause")
    assert paused.status == 200
    assert paused.body["state"] == "paused"
    assert schedule_of(aws, plan["id"])["State"] == "DISABLED"
    assert api.get(f"/v1/plans/{plan['id']}/next-runs").body["runs"] == []
    resumed = api.post(f"/v1/plans/{plan['id']}/resume")
    assert resumed.body["state"] == "enabled"
    assert schedule_of(aws, plan["id"])["State"] == "ENABLED"
    assert api.delete(f"/v1/plans/{plan['id']}").status == 204
    assert not schedule_exists(aws, plan["id"])
    assert api.get(f"/v1/plans/{plan['id']}").status == 404
    # And a new plan may be created once the old one is gone
    assert api.post("/v1/plans", plan_body).status == 201


def test_replace_rebuilds_the_schedule(
    api: ApiClient, aws: MotoEnv, plan_body: dict[str, Any]
) -> None:
    plan = api.post("/v1/plans", plan_body).body
    body = _set(
        plan_body,
        "policy",
        {
            "cycle": "daily",
            "executionTime": "02:30",
            "startTime": "2020-01-01T00:00:00Z",
            "timezone": "Asia/Kolkata",
        },
    )
    replaced = api.put(f"/v1/plans/{plan['id']}", body)
    assert replaced.status == 200, replaced.body
    assert replaced.body["revision"] == plan["revision"] + 1
    schedule = schedule_of(aws, plan["id"])
    assert schedule["ScheduleExpression"] == "cron(30 2 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Asia/Kolkata"
    # A start time in the past is not given as StartDate: the scheduler would refuse it.
    assert "StartDate" not in schedule


def test_storages_used_by_the_plan_cannot_be_deleted(
    api: ApiClient, plan_body: dict[str, Any], storages: dict[str, str]
) -> None:
    plan = api.post("/v1/plans", plan_body).body
    for storage_id in storages.values():
        response = api.delete(f"/v1/storages/{storage_id}")
        assert response.status == 409
    # Once the plan is gone, they can
    api.delete(f"/v1/plans/{plan['id']}")
    assert api.delete(f"/v1/storages/{storages['remote']}").status == 204


def test_next_runs_in_the_plan_timezone_and_utc(api: ApiClient, plan_body: dict[str, Any]) -> None:
    # A Tuesday midnight in UTC+8, a week or two from now (the plan runs on Sundays and Tuesdays).
    soon = datetime.now(UTC).date() + timedelta(days=8)
    tuesday = soon + timedelta(days=(1 - soon.weekday()) % 7)
    body = _set(plan_body, "policy.startTime", f"{tuesday}T00:00:00+08:00")
    plan = api.post("/v1/plans", body).body
    runs = api.get(f"/v1/plans/{plan['id']}/next-runs?count=3").body["runs"]
    assert runs == [
        {"local": f"{day}T00:00:00+08:00", "utc": f"{day - timedelta(days=1)}T16:00:00Z"}
        for day in (tuesday, tuesday + timedelta(days=5), tuesday + timedelta(days=7))
    ]
    assert api.get(f"/v1/plans/{plan['id']}/next-runs?count=0").status == 400


def test_a_failing_scheduler_leaves_the_plan_as_it_was(
    api: ApiClient, plan_body: dict[str, Any], storages: dict[str, str]
) -> None:
    # Given a scheduler that refuses to create schedules
    from platform_backup.adapters.aws import client

    def refuse(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ServiceQuotaExceededException", "Message": "no"}},
            "CreateSchedule",
        )

    client("scheduler", "us-east-1").meta.events.register(
        "before-call.scheduler.CreateSchedule", refuse
    )
    # When a plan is created
    response = api.post("/v1/plans", plan_body)
    # Then the request fails as the service's fault, not the client's, and changed nothing:
    # no plan, and the storages are free again
    assert response.status == 503
    assert "ServiceQuotaExceededException" in response.body["error"]["message"]
    assert api.get("/v1/plans").body["items"] == []
    assert api.delete(f"/v1/storages/{storages['primary']}").status == 204


def test_the_plan_names_its_storages_with_their_room(
    api: ApiClient, plan_body: dict[str, Any], storages: dict[str, str]
) -> None:
    # When the plan is created and read
    created = api.post("/v1/plans", plan_body).body
    plan = api.get(f"/v1/plans/{created['id']}").body
    # Then it names primary, failover and remote, each with its capacity and free bytes
    named = [(s["use"], s["name"], s["id"]) for s in plan["storages"]]
    assert named == [
        ("primary", "primary", storages["primary"]),
        ("failover", "fallback", storages["fallback"]),
        ("remote", "remote", storages["remote"]),
    ]
    assert all(s["capacityBytes"] == s["availableBytes"] == 10**12 for s in plan["storages"])
    assert api.get("/v1/plans").body["items"][0]["storages"] == plan["storages"]
    # And a renamed storage reads with its new name
    api.patch(f"/v1/storages/{storages['remote']}", {"name": "off-site"})
    assert api.get(f"/v1/plans/{plan['id']}").body["storages"][2]["name"] == "off-site"


def test_a_plan_without_timezone_reads_its_times_in_the_start_times_offset(
    api: ApiClient, aws: MotoEnv, plan_body: dict[str, Any]
) -> None:
    # Given a daily 00:30 plan whose start time says +08:00, and no timezone
    start = (datetime.now(UTC) + timedelta(days=3)).date()
    policy = {"cycle": "daily", "executionTime": "00:30", "startTime": f"{start}T00:00:00+08:00"}
    body = _set(plan_body, "policy", policy)
    # When it is created
    plan = api.post("/v1/plans", body).body
    # Then it shows the fixed-offset zone it used, and runs at 00:30 at +08:00 (16:30 UTC)
    assert plan["policy"]["timezone"] == "Etc/GMT-8"
    assert schedule_of(aws, plan["id"])["ScheduleExpressionTimezone"] == "Etc/GMT-8"
    first = api.get(f"/v1/plans/{plan['id']}/next-runs?count=1").body["runs"][0]
    assert first == {
        "local": f"{start}T00:30:00+08:00",
        "utc": f"{start - timedelta(days=1)}T16:30:00Z",
    }


@pytest.mark.parametrize(
    ("start_time", "zone"),
    [("2026-12-01T00:00:00Z", "UTC"), ("2026-12-01T00:00:00-05:00", "Etc/GMT+5")],
)
def test_the_zone_of_a_start_time_offset(
    api: ApiClient, plan_body: dict[str, Any], start_time: str, zone: str
) -> None:
    policy = {"cycle": "daily", "executionTime": "00:30", "startTime": start_time}
    plan = api.post("/v1/plans", _set(plan_body, "policy", policy)).body
    assert plan["policy"]["timezone"] == zone


def test_an_offset_of_no_whole_hour_needs_a_timezone(
    api: ApiClient, plan_body: dict[str, Any]
) -> None:
    policy = {"cycle": "daily", "executionTime": "00:30", "startTime": "2026-12-01T00:00:00+05:30"}
    response = api.post("/v1/plans", _set(plan_body, "policy", policy))
    assert response.status == 400
    assert [d["field"] for d in response.body["error"]["details"]] == ["policy.timezone"]
    assert "Asia/Kolkata" in response.body["error"]["message"]
