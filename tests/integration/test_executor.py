"""The executor end to end: the real handler, the real MariaDB and mariadb-dump, moto's AWS
(in-process), driven the way the schedule and the API drive it."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from platform_backup.adapters import dump_pipeline
from platform_backup.services import backup_runner
from tests.support.api import ApiClient
from tests.support.moto_env import MotoEnv, moto_env
from tests.support.schedule_times import on_time

pytestmark = pytest.mark.integration


@dataclass
class System:
    env: MotoEnv
    api: ApiClient
    plan_id: str
    storages: dict[str, str]
    databases: list[str]

    def fire(self, scheduled_time: Any) -> dict[str, Any]:
        event = {"planId": self.plan_id, "scheduledTime": scheduled_time}
        outcome = self.env.invoker.invoke("pdb-executor", event)
        assert outcome.function_error is None, outcome.payload.decode()
        return dict(json.loads(outcome.payload))

    def executions(self) -> list[dict[str, Any]]:
        return list(self.api.get(f"/v1/executions?planId={self.plan_id}").body["items"])

    def backups(self) -> list[dict[str, Any]]:
        return list(self.api.get(f"/v1/backups?planId={self.plan_id}").body["items"])

    def storage(self, name: str) -> dict[str, Any]:
        return dict(self.api.get(f"/v1/storages/{self.storages[name]}").body)

    def objects(self, bucket: str) -> list[str]:
        listed = self.env.client("s3").list_objects_v2(Bucket=bucket)
        return [o["Key"] for o in listed.get("Contents", [])]

    def wait(self, execution_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            current = dict(self.api.get(f"/v1/executions/{execution_id}").body)
            if current["status"] != "running":
                return current
            time.sleep(0.05)
        raise AssertionError(f"execution {execution_id} still running")

    def open_uploads(self, bucket: str) -> list[Any]:
        return list(self.env.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@pytest.fixture
def system(platform_dbs: list[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[System]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PLATFORM_DB_NAMES": ",".join(platform_dbs),
    }.items():
        monkeypatch.setenv(name, value)
    with moto_env() as env:
        secret = {"host": "127.0.0.1", "port": 3306, "username": "root", "password": ""}
        env.client("secretsmanager").create_secret(
            Name=env.settings.db_secret_arn, SecretString=json.dumps(secret)
        )
        api = ApiClient(env.invoker)
        storages = {}
        for name, bucket in (("primary", "pdb-primary"), ("fallback", "pdb-fallback")):
            body = {
                "name": name,
                "role": "local",
                "bucket": bucket,
                "region": "us-east-1",
                "prefix": "platform-db/",
                "capacityBytes": 10**11,
            }
            storages[name] = api.post("/v1/storages", body).body["id"]
        plan = api.post(
            "/v1/plans",
            {
                "name": "platform-db",
                "localStorageIds": [storages["primary"], storages["fallback"]],
                "policy": {"cycle": "hourly", "startTime": "2026-01-01T00:05:00Z"},
                "retention": {"local": {"mode": "count", "value": 7}},
            },
        )
        assert plan.status == 201, plan.body
        yield System(env, api, plan.body["id"], storages, platform_dbs)


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
    s3 = system.env.client("s3")
    body = s3.get_object(Bucket="pdb-primary", Key=copy["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == backup["sha256"]
    assert len(body) == backup["compressedBytes"] == copy["bytes"]
    manifest = json.loads(
        s3.get_object(Bucket="pdb-primary", Key=copy["manifestKey"])["Body"].read()
    )
    assert manifest["sha256"] == backup["sha256"]
    assert system.objects("pdb-fallback") == []
    # And the storage's used bytes follow the copy
    primary = system.storage("primary")
    assert primary["usedBytes"] == backup["compressedBytes"]
    assert primary["availableBytes"] == 10**11 - backup["compressedBytes"]


def test_duplicate_deliveries_of_one_scheduled_time_make_one_backup(system: System) -> None:
    # Given three deliveries of the same scheduled time released together
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
    assert len({r["executionId"] for r in results}) == 1
    assert [e["status"] for e in system.executions()] == ["succeeded"]
    assert len(system.backups()) == 1
    # And a later delivery of the same time changes nothing
    assert system.fire(when.replace("Z", ".000Z"))["status"] == "succeeded"
    assert len(system.backups()) == 1


def test_a_scheduled_time_that_is_not_a_timestamp_is_refused(system: System) -> None:
    # Refused by failing the invocation, so the event reaches the failure destination
    for bad in ("tomorrow", None, 12345):
        event = {"planId": system.plan_id, "scheduledTime": bad}
        outcome = system.env.invoker.invoke("pdb-executor", event)
        assert outcome.function_error is not None
        assert "scheduledTime" in outcome.payload.decode()
    assert system.executions() == []


def test_a_trigger_finding_the_plan_busy_is_skipped_with_the_reason(system: System) -> None:
    # Given a restore holding the plan's lease
    from platform_backup.adapters.lease import DynamoLeases

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
    from platform_backup.adapters.execution_repo import DynamoExecutionRepository
    from platform_backup.adapters.lease import DynamoLeases
    from platform_backup.domain.execution import Execution

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
    assert system.objects("pdb-primary") == []
    assert len(system.objects("pdb-fallback")) == 2  # the dump and its manifest


def test_short_quota_everywhere_fails_before_any_dump(system: System) -> None:
    for storage_id in system.storages.values():
        system.api.patch(f"/v1/storages/{storage_id}", {"capacityBytes": 1000})
    result = system.fire(on_time(1))
    assert result["status"] == "failed"
    error = system.executions()[0]["error"]
    assert error.startswith("quota exhausted")
    assert "1000 bytes available" in error
    for bucket in ("pdb-primary", "pdb-fallback"):
        assert system.objects(bucket) == []
        assert system.open_uploads(bucket) == []


def test_missing_database_fails_with_the_reason(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platform_backup.composition.executor import runner

    monkeypatch.setattr(runner(), "_databases", [*system.databases, "no_such_db"])
    result = system.fire(on_time(1))
    assert result["status"] == "failed"
    assert "no_such_db" in system.executions()[0]["error"]
    assert system.objects("pdb-primary") == []


def test_run_now_makes_a_new_execution_every_time_and_progress_can_be_watched(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given progress written often enough to be seen on the small fixture databases
    monkeypatch.setattr(backup_runner, "PROGRESS_SECONDS", 0.05)
    monkeypatch.setattr(dump_pipeline, "PROGRESS_INTERVAL", 0.02)
    # When an operator backs up now, and watches
    started = system.api.post(f"/v1/plans/{system.plan_id}/executions")
    assert started.status == 202
    execution_id = started.body["id"]
    assert started.body["trigger"] == "manual"
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = system.api.get(f"/v1/executions/{execution_id}").body
        seen.append(current)
        if current["status"] != "running":
            break
        time.sleep(0.02)
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
    assert system.wait(again.body["id"])["status"] == "succeeded"
    assert len(system.backups()) == 2


@pytest.fixture
def synced(system: System) -> System:
    """The plan syncs to a remote storage in another region."""
    s3 = system.env.client("s3")
    s3.create_bucket(
        Bucket="pdb-offsite", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_bucket_versioning(Bucket="pdb-offsite", VersioningConfiguration={"Status": "Enabled"})
    remote = system.api.post(
        "/v1/storages",
        {
            "name": "offsite",
            "role": "remote",
            "bucket": "pdb-offsite",
            "region": "eu-west-1",
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
        "pdb-offsite",
        "available",
    )
    assert remote["key"].startswith("dr/pdb/")
    s3 = synced.env.client("s3")
    body = s3.get_object(Bucket="pdb-offsite", Key=remote["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == backup["sha256"]
    manifest = json.loads(
        s3.get_object(Bucket="pdb-offsite", Key=remote["manifestKey"])["Body"].read()
    )
    assert manifest["sha256"] == backup["sha256"]
    assert synced.storage("remote")["usedBytes"] == backup["compressedBytes"]


def test_a_failed_remote_copy_is_partial_and_caught_up_by_the_next_run(synced: System) -> None:
    # Given the remote bucket is gone when the first run syncs
    s3 = synced.env.client("s3")
    s3.delete_bucket(Bucket="pdb-offsite")
    first = synced.fire(on_time(2))
    # Then the run is partially successful, saying why, and the local copy is there
    assert first["status"] == "partially-succeeded"
    execution = synced.api.get(f"/v1/executions/{first['executionId']}").body
    assert "remote copy failed" in execution["error"]
    assert execution["backupId"]
    [backup] = synced.backups()
    assert [c["role"] for c in backup["copies"]] == ["local"]
    # When the bucket is back and the next run comes
    s3.create_bucket(
        Bucket="pdb-offsite", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_bucket_versioning(Bucket="pdb-offsite", VersioningConfiguration={"Status": "Enabled"})
    second = synced.fire(on_time(1))
    # Then both backups have their verified remote copy
    assert second["status"] == "succeeded"
    backups = synced.backups()
    assert len(backups) == 2
    for backup in backups:
        remote = [c for c in backup["copies"] if c["role"] == "remote"]
        assert len(remote) == 1 and remote[0]["status"] == "available"
        data = s3.get_object(Bucket="pdb-offsite", Key=remote[0]["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == backup["sha256"]


def test_a_remote_storage_short_of_quota_is_not_written(synced: System) -> None:
    synced.api.patch(f"/v1/storages/{synced.storages['remote']}", {"capacityBytes": 10})
    result = synced.fire(on_time(1))
    assert result["status"] == "partially-succeeded"
    error = synced.api.get(f"/v1/executions/{result['executionId']}").body["error"]
    assert "quota exhausted" in error
    assert synced.objects("pdb-offsite") == []


def test_a_run_that_cannot_finish_in_time_is_refused_up_front(system: System) -> None:
    # Given a measured earlier backup, and a function with almost no time left
    from platform_backup.composition import executor
    from platform_backup.services.ports import Deadline

    assert system.fire(on_time(2))["status"] == "succeeded"
    runner = executor.runner()
    # When the next run has less time than the last one took
    execution = runner.run_scheduled(system.plan_id, on_time(1), Deadline(lambda: 30.001))
    # Then it fails before dumping, with the figures
    assert execution.status == "failed"
    assert execution.error is not None and "would take about" in execution.error
    assert "s left" in execution.error
    assert len(system.backups()) == 1


def test_a_dump_that_runs_out_of_time_fails_cleanly(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function whose time runs out while the dump is under way
    from platform_backup.composition.executor import runner
    from platform_backup.services.ports import Deadline

    monkeypatch.setattr(dump_pipeline, "PROGRESS_INTERVAL", 0.02)
    started = time.monotonic()
    deadline = Deadline(lambda: 30.4 - (time.monotonic() - started))
    # When a first run (nothing measured yet, so nothing refused up front) goes
    execution = runner().run_scheduled(system.plan_id, on_time(1), deadline)
    # Then it failed saying so, and no object, no open upload and no backup is left
    assert execution.status == "failed"
    assert execution.error is not None and "time ran out" in execution.error
    assert system.backups() == []
    for bucket in ("pdb-primary", "pdb-fallback"):
        assert system.objects(bucket) == []
        assert system.open_uploads(bucket) == []


def test_a_remote_copy_that_does_not_fit_the_time_left_is_left_for_the_next_run(
    synced: System,
) -> None:
    # Given a function left, once dumped, with the margin for the final record plus less than the
    # smallest copy's estimate (a constant: a countdown would race the dump's own time check)
    from platform_backup.adapters.replication import REQUESTS_SECONDS
    from platform_backup.composition.executor import runner
    from platform_backup.domain.progress import TIME_MARGIN_SECONDS
    from platform_backup.services.ports import Deadline

    short = Deadline(lambda: TIME_MARGIN_SECONDS + REQUESTS_SECONDS - 1)
    # When the schedule fires
    first = runner().run_scheduled(synced.plan_id, on_time(2), short)
    # Then the local backup is made, the remote copy is not started, and the record says so
    assert first.status == "partially-succeeded", first
    execution = synced.api.get(f"/v1/executions/{first.id}").body
    assert execution["error"].startswith("remote copy of 1 backup(s) left for the next run")
    assert f"{execution['backupId']} (" in execution["error"]
    [backup] = synced.backups()
    assert [c["role"] for c in backup["copies"]] == ["local"]
    assert synced.objects("pdb-offsite") == []
    assert synced.storage("remote")["usedBytes"] == 0
    # When the next run has the function's full time (the real handler, its Lambda timeout)
    second = synced.fire(on_time(1))
    # Then both backups have their verified remote copy
    assert second["status"] == "succeeded", synced.executions()
    s3 = synced.env.client("s3")
    for backup in synced.backups():
        [remote] = [c for c in backup["copies"] if c["role"] == "remote"]
        data = s3.get_object(Bucket="pdb-offsite", Key=remote["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == backup["sha256"]
