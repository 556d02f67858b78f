"""Catalog loss, caused: backups made by the real executor, every record deleted from DynamoDB,
the catalog rebuilt with `platform-backup catalog rebuild` (the CLI through the local stack's
HTTP gateway, the real API handler, moto's S3), then list, prune and restore from the rebuilt
records as before."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from platform_backup_cli.main import app
from tests.integration.test_restore import System, checksums, drop, system  # noqa: F401
from tests.support.schedule_times import on_time

pytestmark = pytest.mark.integration

Cli = Callable[..., Result]
# What a record says that its manifest must give back.
KEPT = ("id", "planId", "executionId", "trigger", "rawBytes", "compressedBytes", "sha256")


@pytest.fixture
def cli(system: System) -> Iterator[Cli]:  # noqa: F811
    """The CLI, on the local stack's API Gateway."""
    runner = CliRunner(env={"COLUMNS": "200", "PLATFORM_BACKUP_API": None})
    yield lambda *args: runner.invoke(app, ["--api", system.stack.api_url, *args])


def listed(stack: System) -> list[dict[str, Any]]:
    return list(stack.api.get(f"/v1/backups?planId={stack.plan_id}").body["items"])


def storage(stack: System) -> dict[str, Any]:
    [found] = stack.api.get("/v1/storages").body["items"]
    return dict(found)


def lose_the_catalog(stack: System) -> None:
    table = stack.client("dynamodb")
    name = stack.settings.backups_table
    for page in table.get_paginator("scan").paginate(TableName=name):
        for item in page["Items"]:
            table.delete_item(TableName=name, Key={"id": item["id"]})


def test_a_lost_catalog_is_rebuilt_from_storage_and_works_as_before(
    system: System,  # noqa: F811
    cli: Cli,
) -> None:
    # Given three backups made by the real executor and a fourth whose dump was damaged since
    made = [system.backup(on_time(4 - hour)) for hour in range(4)]
    *good, damaged = made
    s3 = system.client("s3")
    [copy] = damaged["copies"]
    size = s3.head_object(Bucket=copy["bucket"], Key=copy["key"])["ContentLength"]
    s3.put_object(Bucket=copy["bucket"], Key=copy["key"], Body=b"\0" * size)
    # When every backup record is deleted from DynamoDB
    lose_the_catalog(system)
    assert listed(system) == []
    # and the catalog is rebuilt from the storage
    result = cli("catalog", "rebuild", "--storage", "primary", "--json")
    # Then the good backups are recreated and the damaged one is reported corrupt (exit 1)
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert sorted(e["backupId"] for e in report["recreated"]) == sorted(b["id"] for b in good)
    assert [e["backupId"] for e in report["corrupt"]] == [damaged["id"]]
    assert "SHA-256" in report["corrupt"][0]["reason"]
    # and the listing shows them as the executor recorded them
    rebuilt = {b["id"]: b for b in listed(system)}
    assert sorted(rebuilt) == sorted(b["id"] for b in good)
    for before in good:
        after = rebuilt[before["id"]]
        assert {k: after[k] for k in KEPT} == {k: before[k] for k in KEPT}
        assert after["databases"] == before["databases"]
        assert after["trigger"] == "schedule"
        [was], [now] = before["copies"], after["copies"]
        for field in ("storageId", "role", "bucket", "key", "manifestKey", "bytes", "status"):
            assert now[field] == was[field]
    # and the storage counts exactly what the catalog holds again
    assert storage(system)["usedBytes"] == sum(b["compressedBytes"] for b in good)
    # And a second rebuild changes nothing, and says so
    again = json.loads(cli("catalog", "rebuild", "--storage", "primary", "--json").output)
    assert again["recreated"] == [] and again["copiesAdded"] == []
    assert {e["reason"] for e in again["skipped"]} == {"in the catalog already"}
    said = cli("catalog", "rebuild", "--storage", "primary")
    assert said.exit_code == 1
    assert "0 recreated, 0 copies added, 3 skipped, 1 corrupt" in said.output
    assert damaged["id"] in said.output

    # When a rebuilt backup is restored into new databases
    source = good[1]
    started = system.api.post(
        f"/v1/backups/{source['id']}/restores",
        {"target": {"mode": "new-database", "databaseSuffix": "_rebuilt"}},
    )
    assert started.status == 202, started.body
    restored = {db: f"{db}_rebuilt" for db in system.databases}
    try:
        done = system.wait(started.body["id"])
        # Then it succeeds and the databases are the same
        assert done["status"] == "succeeded", done
        for db, copy_db in restored.items():
            assert checksums(copy_db) == checksums(db)
    finally:
        drop(*restored.values())

    # When the policy keeps one backup and retention runs
    plan = system.api.get(f"/v1/plans/{system.plan_id}").body
    body = {
        "name": plan["name"],
        "localStorageIds": plan["localStorageIds"],
        "policy": plan["policy"],
        "retention": {"local": {"mode": "count", "value": 1}},
    }
    assert system.api.put(f"/v1/plans/{system.plan_id}", body).status == 200
    event = {"detail": {"planId": system.plan_id}}
    outcome = system.invoke("pdb-retention", event)
    assert outcome.function_error is None, outcome.payload.decode()
    # Then the rebuilt records are pruned like any: only the newest is left, objects and all
    newest = good[-1]
    assert [b["id"] for b in listed(system)] == [newest["id"]]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=copy["bucket"]).get("Contents", [])]
    for gone in good[:-1]:
        assert gone["copies"][0]["key"] not in keys
    assert newest["copies"][0]["key"] in keys
    assert storage(system)["usedBytes"] == newest["compressedBytes"]
