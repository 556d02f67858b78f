"""Through the local stack: a retention policy lowered with no new backup prunes (started by the
plan's update, or by retention's hourly pass when it could not be started then), and an
executor killed mid-run is failed by the monitor with the reason, leaving the plan free."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.local_settings import LOCAL_SETTINGS
from tests.e2e.conftest import REGION, REPO_ROOT, RunningStack
from tests.e2e.http import Http
from tests.e2e.test_backup_lifecycle import http, make_plan, poll, storages
from tests.support.databases import ROOT
from tests.support.schedule_times import on_time

__all__ = ["http", "make_plan", "storages"]
pytestmark = pytest.mark.e2e

# What EventBridge (and the local schedule loop) delivers for retention's rate(1 hour) rule.
HOURLY_EVENT = json.loads((REPO_ROOT / "events" / "retention-hourly.json").read_text())


def plan_body(storages: dict[str, Any], count: int) -> dict[str, Any]:
    return {
        "name": f"records-{uuid.uuid4().hex[:6]}",
        "localStorageIds": [storages["primary"]["id"]],
        # Nothing fires by itself during the test: every run is asked for.
        "policy": {"cycle": "daily", "executionTime": "03:00", "startTime": "2030-01-01T00:00:00Z"},
        "retention": {"local": {"mode": "count", "value": count}},
    }


def backup_now(http: Http, plan_id: str) -> dict[str, Any]:
    started = http.post(f"/v1/plans/{plan_id}/executions")
    assert started.status == 202, started.body
    final = poll(
        lambda: (
            (e := http.get(f"/v1/executions/{started.body['id']}").body)["status"] != "running"
            and e
        ),
        120,
    )
    assert final["status"] == "succeeded", final
    return dict(final)


def backups(http: Http, plan_id: str) -> list[dict[str, Any]]:
    return list(http.get(f"/v1/backups?planId={plan_id}").body["items"])


def lower_to(http: Http, plan_id: str, count: int) -> None:
    plan = http.get(f"/v1/plans/{plan_id}").body
    body = {k: plan[k] for k in ("name", "localStorageIds", "policy", "retention")}
    body["retention"]["local"] = {"mode": "count", "value": count}
    reply = http.put(f"/v1/plans/{plan_id}", body)
    assert reply.status == 200, reply.body


def stored_keys(stack: RunningStack, bucket: str) -> list[str]:
    versions = stack.client("s3").list_object_versions(Bucket=bucket)
    return sorted(v["Key"] for v in versions.get("Versions", []))


def copy_keys(backup: dict[str, Any]) -> list[str]:
    return sorted(key for c in backup["copies"] for key in (c["key"], c["manifestKey"]))


def test_a_lowered_policy_prunes_at_once_with_no_new_backup(
    stack: RunningStack,
    http: Http,
    storages: dict[str, Any],
    make_plan: Callable[[dict[str, Any]], str],
) -> None:
    # Given three backups kept by a count of 3
    plan_id = make_plan(plan_body(storages, 3))
    for _ in range(3):
        backup_now(http, plan_id)
    newest = backups(http, plan_id)[0]

    # When the operator lowers the count to 1, and no backup runs
    lower_to(http, plan_id, 1)

    # Then retention, started by the change, leaves only the newest backup, data included
    kept = poll(lambda: len(b := backups(http, plan_id)) == 1 and b, 60)
    assert kept[0]["id"] == newest["id"]
    assert stored_keys(stack, storages["primary"]["bucket"]) == copy_keys(newest)


def test_retention_that_could_not_start_on_the_change_prunes_on_its_hourly_pass(
    stack: RunningStack,
    http: Http,
    storages: dict[str, Any],
    make_plan: Callable[[dict[str, Any]], str],
) -> None:
    # Given two backups kept by a count of 2
    plan_id = make_plan(plan_body(storages, 2))
    for _ in range(2):
        backup_now(http, plan_id)
    newest = backups(http, plan_id)[0]
    # And the retention function gone from Lambda, so the plan's update cannot start it
    lam = stack.client("lambda")
    config = lam.get_function(FunctionName="pdb-retention")["Configuration"]
    lam.delete_function(FunctionName="pdb-retention")
    try:
        # When the count is lowered to 1: the plan is saved all the same, and nothing pruned
        lower_to(http, plan_id, 1)
        assert http.get(f"/v1/plans/{plan_id}").body["retention"]["local"]["value"] == 1
        assert len(backups(http, plan_id)) == 2
    finally:
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
        lam.create_function(
            FunctionName="pdb-retention",
            Runtime=config["Runtime"],
            Role=config["Role"],
            Handler=config["Handler"],
            Code={"ZipFile": code.getvalue()},
        )

    # When retention's hourly schedule delivers its event
    answer = lam.invoke(FunctionName="pdb-retention", Payload=json.dumps(HOURLY_EVENT).encode())

    # Then every plan's policy was applied: this one keeps its newest backup only
    assert "FunctionError" not in answer, answer["Payload"].read()
    summaries = json.loads(answer["Payload"].read())
    assert [s["pruned"] for s in summaries if s["planId"] == plan_id] != [[]]
    assert [b["id"] for b in backups(http, plan_id)] == [newest["id"]]
    assert stored_keys(stack, storages["primary"]["bucket"]) == copy_keys(newest)


def _worker_env(stack: RunningStack, databases: list[str]) -> dict[str, str]:
    return {
        **os.environ,
        **LOCAL_SETTINGS,
        "AWS_ENDPOINT_URL": stack.aws_endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PLATFORM_DB_NAMES": ",".join(databases),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT / "shared"), str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }


def test_an_executor_killed_mid_run_is_failed_by_the_monitor_and_the_plan_runs_again(
    stack: RunningStack,
    http: Http,
    storages: dict[str, Any],
    make_plan: Callable[[dict[str, Any]], str],
    platform_databases: list[str],
    tmp_path: Path,
) -> None:
    plan_id = make_plan(plan_body(storages, 7))
    # Given a table of the platform database locked, so a run stays in its middle
    locker = subprocess.Popen(
        [*ROOT, "--batch", "--unbuffered", platform_databases[1]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert locker.stdin is not None and locker.stdout is not None
    locker.stdin.write(b"LOCK TABLES ApiToken WRITE;\nSELECT 'locked';\n")
    locker.stdin.flush()
    assert locker.stdout.readline().strip() == b"locked"
    # And a scheduled run in an executor worker of its own
    event = {"planId": plan_id, "scheduledTime": on_time()}
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.support.executor_process", json.dumps(event)],
            cwd=REPO_ROOT,
            env=_worker_env(stack, platform_databases),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    locks = stack.client("dynamodb")
    try:

        def in_the_middle() -> dict[str, Any] | None:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            items = http.get(f"/v1/executions?planId={plan_id}").body["items"]
            lease = locks.get_item(TableName="pdb-locks", Key={"lockId": {"S": f"lease#{plan_id}"}})
            held = lease.get("Item", {}).get("owner", {}).get("S")
            return items[0] if items and items[0]["id"] == held else None

        running = poll(in_the_middle, 120, every=0.2)
        # When the worker is killed, as Lambda kills a worker (the dump tool with it)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        locker.stdin.write(b"UNLOCK TABLES;\n")
        locker.stdin.close()
        locker.wait()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert running["status"] == "running"

    # Then the monitor, run as its schedule runs it, fails the execution once its lease expired
    lam = stack.client("lambda")

    def reaped() -> dict[str, Any] | None:
        lam.invoke(FunctionName="pdb-monitor", Payload=b"{}")
        current = http.get(f"/v1/executions/{running['id']}").body
        return current if current["status"] != "running" else None

    final = poll(reaped, 180, every=5)
    assert final["status"] == "failed"
    assert final["error"] == "the executor stopped in the middle of the run (its lease expired)"
    assert final["finishedAt"] is not None
    # And the plan runs its next backup
    assert backup_now(http, plan_id)["status"] == "succeeded"
