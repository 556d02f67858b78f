"""Objects no backup record describes, caused on the local stack: the executor's record write is
throttled by the embedded AWS until the function gives up (the run fails after its dump and
manifest are stored), one good backup loses its record, and a foreign object sits under the
plan's keys. The hourly reconcile reports all of them first and deletes only the proven leftover,
and only once it is a day old (the stored objects' dates moved back a day in the embedded S3)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from moto.s3.models import s3_backends

from devstack.invoker import ACCOUNT_ID
from tests.integration.test_executor import objects, system  # noqa: F401
from tests.support.schedule_times import on_time
from tests.support.system import System
from tests.support.throttle import throttled_in_aws

pytestmark = pytest.mark.integration


def keys_of(stack: System, backup_id: str) -> list[str]:
    return sorted(k for k in objects(stack, "pdb-primary") if backup_id in k)


def hourly(stack: System) -> list[dict[str, Any]]:
    outcome = stack.invoke("pdb-retention", {"action": "reconcile-orphans"})
    assert outcome.function_error is None, outcome.payload.decode()
    [report] = json.loads(outcome.payload)["plans"]
    assert report["errors"] == []
    return list(report["found"])


def older_by_a_day(bucket: str) -> None:
    """Every version stored in ``bucket`` dated a day and a minute earlier (as a day later)."""
    stored = s3_backends[ACCOUNT_ID]["aws"].buckets[bucket].keys
    for _name, versions in stored.iterlists():
        for version in versions:
            version.last_modified -= timedelta(days=1, minutes=1)


def test_unrecorded_objects_are_reported_and_only_proven_leftovers_deleted_after_a_day(
    system: System,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a run whose dump and manifest were stored but whose record could not be written
    with throttled_in_aws(monkeypatch, system.settings.backups_table, "PutItem") as throttled:
        crashed = system.fire(on_time(2))
    assert throttled
    assert crashed["status"] == "failed", crashed
    failed = system.api.get(f"/v1/executions/{crashed['executionId']}").body
    assert "throttl" in failed["error"].lower() or "Throughput" in failed["error"], failed
    leftover = keys_of(system, failed["backupId"])
    assert len(leftover) == 2  # the dump and its manifest
    # and a good backup whose record was lost (a damaged catalog, not a leftover)
    good = system.fire(on_time(1))
    assert good["status"] == "succeeded", good
    good_id = system.api.get(f"/v1/executions/{good['executionId']}").body["backupId"]
    system.client("dynamodb").delete_item(
        TableName=system.settings.backups_table, Key={"id": {"S": good_id}}
    )
    # and an object somebody else put under the plan's keys
    foreign = f"platform-db/pdb/{system.plan_id}/notes.txt"
    system.client("s3").put_object(Bucket="pdb-primary", Key=foreign, Body=b"mine")

    # When the hourly reconcile runs
    found = {item["key"]: item for item in hourly(system)}
    # Then it reports all three, with size and age, and deletes nothing younger than a day
    assert set(found) == {leftover[0], keys_of(system, good_id)[0], foreign}
    assert not any(item["deleted"] for item in found.values())
    assert "ended failed" in found[leftover[0]]["reason"]
    assert "younger than a day" in found[leftover[0]]["reason"]
    assert "catalog rebuild" in found[keys_of(system, good_id)[0]]["reason"]
    assert "not a key this plan writes" in found[foreign]["reason"]
    assert found[leftover[0]]["bytes"] > 0 and found[leftover[0]]["ageHours"] < 1
    assert keys_of(system, failed["backupId"]) == leftover

    # When it runs again a day later
    older_by_a_day("pdb-primary")
    again = hourly(system)
    # Then only the proven leftover is gone, dump and manifest, every version
    deleted = [item["key"] for item in again if item["deleted"]]
    assert deleted == [leftover[0]]
    assert keys_of(system, failed["backupId"]) == []
    versions = system.client("s3").list_object_versions(Bucket="pdb-primary")
    assert not any(
        failed["backupId"] in v["Key"]
        for v in (*versions.get("Versions", []), *versions.get("DeleteMarkers", []))
    )
    # and the unrecorded good backup and the foreign object stay
    assert len(keys_of(system, good_id)) == 2
    assert foreign in objects(system, "pdb-primary")
