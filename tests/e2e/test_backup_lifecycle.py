"""Backups through the local stack as an operator sees them: a schedule firing by itself with
progress to watch, remote sync, and retention pruning after each success."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.http import Http

pytestmark = pytest.mark.e2e


def poll(check: Callable[[], Any], seconds: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(every)


@pytest.fixture
def http(stack: Any) -> Http:
    return Http(stack.api_url)


@pytest.fixture
def storages(stack: Any, http: Http) -> Iterator[dict[str, Any]]:
    """A local primary and fallback and a remote storage, on buckets of their own."""
    suffix = uuid.uuid4().hex[:8]
    s3 = stack.client("s3")
    made: dict[str, Any] = {}
    for name, role in (("primary", "local"), ("fallback", "local"), ("remote", "remote")):
        bucket = f"e2e-{name}-{suffix}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        reply = http.post(
            "/v1/storages",
            {
                "name": f"{name}-{suffix}",
                "role": role,
                "bucket": bucket,
                "region": "us-east-1",
                "prefix": "platform-db/",
                "capacityBytes": 10**11,
            },
        )
        assert reply.status == 201, reply.body
        made[name] = {"id": reply.body["id"], "bucket": bucket}
    yield made


@pytest.fixture
def make_plan(http: Http) -> Iterator[Callable[[dict[str, Any]], str]]:
    created: list[str] = []

    def make(body: dict[str, Any]) -> str:
        reply = http.post("/v1/plans", body)
        assert reply.status == 201, reply.body
        created.append(reply.body["id"])
        return str(reply.body["id"])

    yield make
    for plan_id in created:
        http.delete(f"/v1/plans/{plan_id}")


def test_an_hourly_plan_fires_by_itself_and_its_progress_can_be_watched(
    http: Http, storages: dict[str, Any], make_plan: Callable[[dict[str, Any]], str]
) -> None:
    # Given an hourly plan whose start time is a minute away
    start = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (start - datetime.now(UTC)).total_seconds() < 20:
        start += timedelta(minutes=1)
    plan_id = make_plan(
        {
            "name": "hourly",
            "localStorageIds": [storages["primary"]["id"]],
            "policy": {"cycle": "hourly", "startTime": start.isoformat()},
            "retention": {"local": {"mode": "count", "value": 3}},
        }
    )

    # When nobody does anything but watch
    def started() -> dict[str, Any] | None:
        items = http.get(f"/v1/executions?planId={plan_id}").body["items"]
        return items[0] if items else None

    execution = poll(started, 150, every=0.05)
    seen = [execution]
    while seen[-1]["status"] == "running":
        seen.append(http.get(f"/v1/executions/{execution['id']}").body)
        time.sleep(0.05)
    # Then the schedule fired at the start time and the run succeeded
    final = seen[-1]
    assert final["trigger"] == "schedule"
    assert datetime.fromisoformat(final["scheduledTime"].replace("Z", "+00:00")) == start
    assert final["status"] == "succeeded", final
    # And its progress could be watched through the API while it ran
    assert any(s["status"] == "running" for s in seen)
    # And its backup sits in the primary storage
    backup = http.get(f"/v1/backups/{final['backupId']}").body
    [copy] = backup["copies"]
    assert copy["bucket"] == storages["primary"]["bucket"]
    assert copy["status"] == "available"


def test_five_runs_keep_two_local_copies_and_every_remote_copy(
    stack: Any, http: Http, storages: dict[str, Any], make_plan: Callable[[dict[str, Any]], str]
) -> None:
    # Given a plan with local count 2 and remote days 30
    plan_id = make_plan(
        {
            "name": "retained",
            "localStorageIds": [storages["primary"]["id"]],
            "remoteSync": True,
            "remoteStorageId": storages["remote"]["id"],
            "policy": {
                "cycle": "daily",
                "executionTime": "03:00",
                "startTime": "2030-01-01T00:00:00Z",
            },
            "retention": {
                "local": {"mode": "count", "value": 2},
                "remote": {"mode": "days", "value": 30},
            },
        }
    )
    # When it runs five times
    for _ in range(5):
        started = http.post(f"/v1/plans/{plan_id}/executions")
        assert started.status == 202
        final = poll(
            lambda sid=started.body["id"]: (
                (e := http.get(f"/v1/executions/{sid}").body)["status"] != "running" and e
            ),
            120,
        )
        assert final["status"] == "succeeded", final

    # Then five backups are listed, each with its remote copy, local copies on the newest two
    def settled() -> list[dict[str, Any]] | None:
        backups = http.get(f"/v1/backups?planId={plan_id}").body["items"]
        local = [
            b
            for b in backups
            if any(c["role"] == "local" and c["status"] == "available" for c in b["copies"])
        ]
        return backups if len(backups) == 5 and len(local) == 2 else None

    backups = poll(settled, 60)
    for backup in backups:
        assert [c["status"] for c in backup["copies"] if c["role"] == "remote"] == ["available"]
    newest_two = backups[:2]
    assert all(any(c["role"] == "local" for c in b["copies"]) for b in newest_two)
    # And the local bucket holds exactly those two dumps and their manifests, every version
    kept = sorted(
        key
        for b in newest_two
        for c in b["copies"]
        if c["role"] == "local"
        for key in (c["key"], c["manifestKey"])
    )
    versions = stack.client("s3").list_object_versions(Bucket=storages["primary"]["bucket"])
    held = sorted(v["Key"] for v in versions.get("Versions", []))
    assert held == kept
    assert versions.get("DeleteMarkers", []) == []
