"""The executor end to end on the local stack: the real handler in its worker processes, with its
template's timeout and environment, calling the embedded AWS as its template role, the real
MariaDB and mariadb-dump, driven the way the schedule and the API drive it. Conditions are
caused, not patched in: a database that is not there, a table another session holds locked, the
function's lowered timeout, a remote bucket that is gone, a storage read that does not answer."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

from devstack.resources import REMOTE_BUCKET
from platform_backup.adapters.execution_repo import DynamoExecutionRepository
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.replication import REQUESTS_SECONDS
from platform_backup.domain.execution import Execution
from platform_backup.domain.progress import TIME_MARGIN_SECONDS
from tests.support.databases import ROOT, sql
from tests.support.schedule_times import on_time
from tests.support.system import EXECUTOR, System, running_system
from tests.support.worker_faults import hanging

pytestmark = pytest.mark.integration


@pytest.fixture
def system(platform_dbs: list[str]) -> Iterator[System]:
    """The plan on the primary storage and its fallback."""
    with running_system(platform_dbs, fallback=True) as running:
        yield running


def objects(system: System, bucket: str) -> list[str]:
    listed = system.client("s3").list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def open_uploads(system: System, bucket: str) -> list[Any]:
    return list(system.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def storage(system: System, name: str) -> dict[str, Any]:
    return dict(system.api.get(f"/v1/storages/{system.storages[name]}").body)


def template_timeout(system: System) -> int:
    return system.stack.invoker.functions[EXECUTOR].timeout_seconds


class TableLock:
    """Another session holding a write lock on a table: a dump that reaches it waits there until
    the lock is released (its earlier tables are dumped, the later ones not yet)."""

    def __init__(self, database: str, table: str) -> None:
        self._session = subprocess.Popen(
            [*ROOT, "--batch", "--skip-column-names", "--unbuffered"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._session.stdin is not None and self._session.stdout is not None
        self._session.stdin.write(f"LOCK TABLES `{database}`.`{table}` WRITE; SELECT 'locked';\n")
        self._session.stdin.flush()
        assert self._session.stdout.readline().strip() == "locked"

    def release(self) -> None:
        """The session ends, and its lock with it (once; again is nothing)."""
        if self._session.stdin is not None and not self._session.stdin.closed:
            self._session.stdin.close()
            self._session.wait(timeout=30)


@contextmanager
def table_locked(database: str, table: str) -> Iterator[TableLock]:
    lock = TableLock(database, table)
    try:
        yield lock
    finally:
        lock.release()


def test_a_scheduled_run_makes_a_verified_backup_in_the_primary(system: System) -> None:
    # When the schedule fires
    when = on_time(1)
    result = system.fire(when)
    # Then the execution succeeded and its backup sits in the primary storage
    assert result["status"] == "succeeded", system.executions()
    execution = system.api.get(f"/v1/executions/{result['executionId']}").body
    assert execution["trigger"] == "schedule"
    assert execution["scheduledTime"].startswith(when.removesuffix("Z"))
    assert execution["storageId"] == system.storages["primary"]
    assert execution["failoverReason"] is None
    assert execution["progress"]["percent"] == 100.0
    assert execution["finishedAt"] is not None
    backup = system.api.get(f"/v1/backups/{execution['backupId']}").body
    assert backup["databases"] == system.databases
    [copy] = backup["copies"]
    assert (copy["bucket"], copy["role"], copy["status"]) == ("pdb-primary", "local", "available")
    assert copy["key"].startswith(f"platform-db/pdb/{system.plan_id}/")
    # And the object is what the record says: its SHA-256, its size, its manifest beside it
    s3 = system.client("s3")
    body = s3.get_object(Bucket="pdb-primary", Key=copy["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == backup["sha256"]
    assert len(body) == backup["compressedBytes"] == copy["bytes"]
    manifest = json.loads(
        s3.get_object(Bucket="pdb-primary", Key=copy["manifestKey"])["Body"].read()
    )
    assert manifest["sha256"] == backup["sha256"]
    assert objects(system, "pdb-fallback") == []
    # And the storage's used bytes follow the copy
    primary = storage(system, "primary")
    assert primary["usedBytes"] == backup["compressedBytes"]
    assert primary["availableBytes"] == 10**11 - backup["compressedBytes"]


def test_duplicate_deliveries_of_one_scheduled_time_make_one_backup(system: System) -> None:
    # Given three deliveries of the same scheduled time released together (each in its own
    # execution environment, as Lambda runs concurrent invocations)
    barrier = threading.Barrier(3)
    when = on_time(1)
    results: list[dict[str, Any]] = []

    def deliver() -> None:
        barrier.wait()
        results.append(system.fire(when))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one execution and one backup
    assert len(results) == 3
    assert len({r["executionId"] for r in results}) == 1
    assert [e["status"] for e in system.executions()] == ["succeeded"]
    assert len(system.backups()) == 1
    # And a later delivery of the same time changes nothing
    assert system.fire(when.replace("Z", ".000Z"))["status"] == "succeeded"
    assert len(system.backups()) == 1


def test_a_scheduled_time_that_is_not_a_timestamp_is_refused(system: System) -> None:
    # Refused by failing the invocation, so the event reaches the failure destination
    for bad in ("tomorrow", None, 12345):
        outcome = system.invoke(EXECUTOR, {"planId": system.plan_id, "scheduledTime": bad})
        assert outcome.function_error is not None
        assert "scheduledTime" in outcome.payload.decode()
    assert system.executions() == []


def test_a_trigger_finding_the_plan_busy_is_skipped_with_the_reason(system: System) -> None:
    # Given a restore holding the plan's lease
    leases = DynamoLeases()
    taken, _ = leases.acquire(system.plan_id, "restore-1", "restore", "restore", time.time(), 300)
    assert taken
    # When the schedule fires
    result = system.fire(on_time(2))
    # Then the run is recorded as skipped, saying why, and nothing was dumped
    assert result["status"] == "skipped"
    [execution] = system.executions()
    assert "restore restore-1" in execution["reason"]
    assert system.backups() == []
    # And once the lease is released the next trigger runs
    leases.release(system.plan_id, "restore-1")
    assert system.fire(on_time(1))["status"] == "succeeded"


def test_a_dead_executor_is_marked_failed_and_never_blocks_the_plan(system: System) -> None:
    # Given an execution whose executor died mid-run: running, its lease expired
    dead = Execution(
        id="dead-run",
        planId=system.plan_id,
        trigger="schedule",
        startedAt="2026-11-25T09:00:00Z",
        phase="dumping",
    )
    DynamoExecutionRepository().create(dead)
    DynamoLeases().acquire(system.plan_id, dead.id, "backup", "schedule", time.time() - 120, 60)
    # When the next trigger comes
    result = system.fire(on_time(1))
    # Then it runs, and the dead execution is failed with the reason
    assert result["status"] == "succeeded"
    dead_now = system.api.get("/v1/executions/dead-run").body
    assert dead_now["status"] == "failed"
    assert "lease expired" in dead_now["error"]


def test_short_quota_on_the_primary_lands_on_the_fallback(system: System) -> None:
    system.api.patch(f"/v1/storages/{system.storages['primary']}", {"capacityBytes": 1000})
    result = system.fire(on_time(1))
    assert result["status"] == "succeeded"
    execution = system.executions()[0]
    assert execution["storageId"] == system.storages["fallback"]
    assert "quota exhausted" in execution["failoverReason"]
    assert objects(system, "pdb-primary") == []
    assert len(objects(system, "pdb-fallback")) == 2  # the dump and its manifest


def test_short_quota_everywhere_fails_before_any_dump(system: System) -> None:
    for storage_id in system.storages.values():
        system.api.patch(f"/v1/storages/{storage_id}", {"capacityBytes": 1000})
    result = system.fire(on_time(1))
    assert result["status"] == "failed"
    error = system.executions()[0]["error"]
    assert error.startswith("quota exhausted")
    assert "1000 bytes available" in error
    for bucket in ("pdb-primary", "pdb-fallback"):
        assert objects(system, bucket) == []
        assert open_uploads(system, bucket) == []


def test_missing_database_fails_with_the_reason(platform_dbs: list[str]) -> None:
    # Given the executor set to protect a database the server does not have
    with running_system([*platform_dbs, "no_such_db"], fallback=True) as system:
        # When the schedule fires
        result = system.fire(on_time(1))
        # Then the run fails naming it, and nothing was stored
        assert result["status"] == "failed"
        assert "no_such_db" in system.executions()[0]["error"]
        assert objects(system, "pdb-primary") == []


def test_run_now_makes_a_new_execution_every_time_and_progress_can_be_watched(
    system: System,
) -> None:
    # Given two tables, one in each database, that other sessions hold locked: the dump waits
    # at each, long enough for the executor's progress writes (every 2 s) to be seen
    zstack, sakila = system.databases
    with (
        table_locked(zstack, "AccountPriceTableRefVO") as first,
        table_locked(sakila, "actor") as second,
    ):
        # When an operator backs up now, and watches
        started = system.api.post(f"/v1/plans/{system.plan_id}/executions")
        assert started.status == 202
        execution_id = started.body["id"]
        assert started.body["trigger"] == "manual"
        seen = _watch(system, execution_id, first, second)
    # Then it succeeded, and while it ran the progress moved
    assert seen[-1]["status"] == "succeeded", seen[-1]
    middle = [
        s["progress"]
        for s in seen
        if s["status"] == "running"
        and 0 < s["progress"]["tablesDone"] < s["progress"]["tablesTotal"]
    ]
    assert middle, "no poll saw the run between its first and its last table"
    # (bytesDumped counts what left the dump tool's 1 MiB output buffer, so on these small
    # databases the first table can be done before the first byte is counted)
    dumped = [p["bytesDumped"] for p in middle]
    assert dumped == sorted(dumped) and dumped[-1] > dumped[0]
    # And a second run-now is a new execution
    again = system.api.post(f"/v1/plans/{system.plan_id}/executions")
    assert again.body["id"] != execution_id
    assert system.wait_execution(again.body["id"])["status"] == "succeeded"
    assert len(system.backups()) == 2


def _watch(
    system: System, execution_id: str, first: TableLock, second: TableLock
) -> list[dict[str, Any]]:
    """Every poll of the execution until it ends. Each lock is released once a poll has shown
    the progress written while the dump waited at it: the first (some zstack tables done), then
    the second (sakila's first table: every zstack table done but the last, which counts as
    done once the next one starts)."""
    tables = sql(
        "SELECT COUNT(*) FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = '{system.databases[0]}' AND TABLE_TYPE = 'BASE TABLE'"
    )
    at_second = int(tables) - 1
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = system.api.get(f"/v1/executions/{execution_id}").body
        seen.append(current)
        if current["status"] != "running":
            break
        done = current["progress"]["tablesDone"]
        if done > 0:
            first.release()
        if done >= at_second:
            second.release()
        time.sleep(0.02)
    return seen


@pytest.fixture
def synced(system: System) -> System:
    """The plan syncs to the stack's remote storage (versioned, with Object Lock)."""
    remote = system.api.post(
        "/v1/storages",
        {
            "name": "offsite",
            "role": "remote",
            "bucket": REMOTE_BUCKET,
            "region": system.stack.aws.region,
            "prefix": "dr/",
            "capacityBytes": 10**11,
        },
    )
    assert remote.status == 201, remote.body
    system.storages["remote"] = remote.body["id"]
    plan = system.api.get(f"/v1/plans/{system.plan_id}").body
    body = {k: plan[k] for k in ("name", "localStorageIds", "policy", "retention")}
    body["remoteSync"] = True
    body["remoteStorageId"] = remote.body["id"]
    body["retention"]["remote"] = {"mode": "permanent"}
    assert system.api.put(f"/v1/plans/{system.plan_id}", body).status == 200
    return system


def test_remote_sync_copies_and_verifies_each_backup(synced: System) -> None:
    result = synced.fire(on_time(1))
    assert result["status"] == "succeeded", synced.executions()[0]["error"]
    [backup] = synced.backups()
    local, remote = backup["copies"]
    assert (local["role"], local["bucket"]) == ("local", "pdb-primary")
    assert (remote["role"], remote["bucket"], remote["status"]) == (
        "remote",
        REMOTE_BUCKET,
        "available",
    )
    assert remote["key"].startswith("dr/pdb/")
    s3 = synced.client("s3")
    body = s3.get_object(Bucket=REMOTE_BUCKET, Key=remote["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == backup["sha256"]
    manifest = json.loads(
        s3.get_object(Bucket=REMOTE_BUCKET, Key=remote["manifestKey"])["Body"].read()
    )
    assert manifest["sha256"] == backup["sha256"]
    assert storage(synced, "remote")["usedBytes"] == backup["compressedBytes"]


def test_a_failed_remote_copy_is_partial_and_caught_up_by_the_next_run(synced: System) -> None:
    # Given the remote bucket is gone when the first run syncs
    s3 = synced.client("s3")
    s3.delete_bucket(Bucket=REMOTE_BUCKET)
    first = synced.fire(on_time(2))
    # Then the run is partially successful, saying why, and the local copy is there
    assert first["status"] == "partially-succeeded"
    execution = synced.api.get(f"/v1/executions/{first['executionId']}").body
    assert "remote copy failed" in execution["error"]
    assert execution["backupId"]
    [backup] = synced.backups()
    assert [c["role"] for c in backup["copies"]] == ["local"]
    # When the bucket is back (as the stack makes it: versioned, Object Lock) and the next run
    s3.create_bucket(Bucket=REMOTE_BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_bucket_versioning(Bucket=REMOTE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    second = synced.fire(on_time(1))
    # Then both backups have their verified remote copy
    assert second["status"] == "succeeded"
    backups = synced.backups()
    assert len(backups) == 2
    for backup in backups:
        remote = [c for c in backup["copies"] if c["role"] == "remote"]
        assert len(remote) == 1 and remote[0]["status"] == "available"
        data = s3.get_object(Bucket=REMOTE_BUCKET, Key=remote[0]["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == backup["sha256"]


def test_a_remote_storage_short_of_quota_is_not_written(synced: System) -> None:
    synced.api.patch(f"/v1/storages/{synced.storages['remote']}", {"capacityBytes": 10})
    result = synced.fire(on_time(1))
    assert result["status"] == "partially-succeeded"
    error = synced.api.get(f"/v1/executions/{result['executionId']}").body["error"]
    assert "quota exhausted" in error
    assert objects(synced, REMOTE_BUCKET) == []


def test_a_run_that_cannot_finish_in_time_is_refused_up_front(system: System) -> None:
    # Given a measured earlier backup
    assert system.fire(on_time(2))["status"] == "succeeded"
    # And the executor's timeout lowered to its time margin: a run has no time left for a dump
    system.configure(EXECUTOR, timeout_seconds=int(TIME_MARGIN_SECONDS))
    # When the next run has less time than the last one took
    result = system.fire(on_time(1))
    # Then it fails before dumping, with the figures
    assert result["status"] == "failed"
    error = system.api.get(f"/v1/executions/{result['executionId']}").body["error"]
    assert error is not None and "would take about" in error
    assert "s left" in error
    assert len(system.backups()) == 1


def test_a_dump_that_runs_out_of_time_fails_cleanly(system: System) -> None:
    # Given the executor's timeout lowered to its time margin, and a table another session holds
    # locked, so the dump is still under way when the executor looks at the time it has left
    system.configure(EXECUTOR, timeout_seconds=int(TIME_MARGIN_SECONDS))
    with table_locked(system.databases[0], "AccountPriceTableRefVO"):
        # When a first run (nothing measured yet, so nothing refused up front) goes
        result = system.fire(on_time(1))
    # Then it failed saying so, and no object, no open upload and no backup is left
    assert result["status"] == "failed"
    error = system.api.get(f"/v1/executions/{result['executionId']}").body["error"]
    assert error is not None and "time ran out" in error
    assert system.backups() == []
    for bucket in ("pdb-primary", "pdb-fallback"):
        assert objects(system, bucket) == []
        assert open_uploads(system, bucket) == []


def test_a_remote_copy_that_does_not_fit_the_time_left_is_left_for_the_next_run(
    synced: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the executor's timeout lowered, and its run, once dumped, held on its read of the
    # remote storage (a table that stops answering) until what is left is less than the margin
    # for the final record plus the smallest copy's estimate
    full = template_timeout(synced)
    timeout = 50  # room for the dump besides the 30 s margin
    synced.configure(EXECUTOR, timeout_seconds=timeout)
    table, remote_id = synced.settings.storages_table, synced.storages["remote"]

    def remote_storage_read(table_name: str, keys: dict[str, Any], *_: Any, **__: Any) -> bool:
        return table_name == table and keys.get("id", {}).get("S") == remote_id

    results: list[dict[str, Any]] = []
    with hanging(monkeypatch, DynamoDBBackend, "get_item", remote_storage_read) as reading:
        # When the schedule fires
        firing = threading.Thread(target=lambda: results.append(synced.fire(on_time(2))))
        firing.start()
        assert reading.waiting.wait(timeout), "the run never reached its remote copy"
        # (its time started counting before this point)
        time.sleep(timeout - (TIME_MARGIN_SECONDS + REQUESTS_SECONDS) + 1)
        reading.release()
        firing.join()
    [first] = results
    # Then the local backup is made, the remote copy is not started, and the record says so
    assert first["status"] == "partially-succeeded", first
    execution = synced.api.get(f"/v1/executions/{first['executionId']}").body
    assert execution["error"].startswith("remote copy of 1 backup(s) left for the next run")
    assert f"{execution['backupId']} (" in execution["error"]
    [backup] = synced.backups()
    assert [c["role"] for c in backup["copies"]] == ["local"]
    assert objects(synced, REMOTE_BUCKET) == []
    assert storage(synced, "remote")["usedBytes"] == 0
    # When the next run has the function's full time (the template's timeout)
    synced.configure(EXECUTOR, timeout_seconds=full)
    second = synced.fire(on_time(1))
    # Then both backups have their verified remote copy
    assert second["status"] == "succeeded", synced.executions()
    s3 = synced.client("s3")
    for backup in synced.backups():
        [remote] = [c for c in backup["copies"] if c["role"] == "remote"]
        data = s3.get_object(Bucket=REMOTE_BUCKET, Key=remote["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == backup["sha256"]
