"""The operator CLI, `platform-backup`, against the local stack: every command, its tables and
--json output, and the message and exit status when the API refuses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from platform_backup_cli.main import app

pytestmark = pytest.mark.e2e

Cli = Callable[..., Result]
CONSOLE_SCRIPT = Path(sys.executable).with_name("platform-backup")
# Far ahead, so the first runs follow from the start time whatever the day the tests run.
START = "2036-12-01T00:00:00+08:00"
FINAL_EXECUTION = {"succeeded", "partially-succeeded", "failed", "skipped"}


@pytest.fixture
def cli(stack: Any) -> Cli:
    # Wide enough that no table wraps an id or a name the assertions look for.
    runner = CliRunner(env={"COLUMNS": "250", "PLATFORM_BACKUP_API": None})

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--api", stack.api_url, *args])

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def refused(result: Result) -> str:
    """The refusal's message: exit status 1, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.stderr


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def storages(stack: Any, cli: Cli) -> Iterator[dict[str, str]]:
    """Two local storages and a remote one, by role name -> storage name; removed afterwards."""
    s3 = stack.client("s3")
    names: dict[str, str] = {}
    ids: list[str] = []
    for role_name, role in (("primary", "local"), ("fallback", "local"), ("remote", "remote")):
        bucket = _unique(f"cli-{role_name}")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        name = _unique(role_name)
        added = as_json(
            cli(
                "storages",
                "add",
                "--name",
                name,
                "--role",
                role,
                "--bucket",
                bucket,
                "--region",
                "us-east-1",
                "--prefix",
                "platform-db/",
                "--capacity-bytes",
                "107374182400",
                "--json",
            )
        )
        names[role_name] = name
        ids.append(added["id"])
    yield names
    for storage_id in ids:
        # A storage that ended up holding a backup stays (the API refuses with 409).
        cli("storages", "remove", storage_id)


def _create_plan(cli: Cli, storages: dict[str, str], *extra: str) -> Result:
    return cli(
        "plan",
        "create",
        "--name",
        "platform-db",
        "--description",
        "from the cli",
        "--data-center",
        "dc-1",
        "--local-storage-ids",
        f"{storages['primary']},{storages['fallback']}",
        "--remote-sync",
        "--remote-storage-id",
        storages["remote"],
        "--cycle",
        "weekly",
        "--weekdays",
        "sun",
        "--weekdays",
        "TUE",
        "--execution-time",
        "00:00",
        "--start-time",
        START,
        "--timezone",
        "Asia/Shanghai",
        "--retention-local-mode",
        "count",
        "--retention-local-value",
        "7",
        "--retention-remote-mode",
        "days",
        "--retention-remote-value",
        "30",
        "--json",
        *extra,
    )


@pytest.fixture
def plan(cli: Cli, storages: dict[str, str]) -> Iterator[dict[str, Any]]:
    created = as_json(_create_plan(cli, storages))
    yield created
    cli("plan", "delete", created["id"])


def test_storages_add_list_show_remove_and_quota(stack: Any, cli: Cli) -> None:
    # Given a bucket
    bucket = _unique("cli-storage")
    stack.client("s3").create_bucket(Bucket=bucket)
    stack.client("s3").put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    name = _unique("primary")
    # When it is registered
    added = as_json(
        cli(
            "storages",
            "add",
            "--name",
            name,
            "--role",
            "local",
            "--bucket",
            bucket,
            "--region",
            "us-east-1",
            "--capacity-bytes",
            "1000000000",
            "--json",
        )
    )
    # Then every view shows it
    assert (added["name"], added["role"], added["capacityBytes"]) == (name, "local", 1000000000)
    assert added["availableBytes"] == 1000000000
    table = ok(cli("storages", "list")).stdout
    assert added["id"] in table and name in table and f"s3://{bucket}/" in table
    listed = as_json(cli("storages", "list", "--json"))
    assert added["id"] in [s["id"] for s in listed["items"]]
    assert "nextToken" in listed
    by_name = ok(cli("storages", "show", name)).stdout
    assert added["id"] in by_name and "1.0 GB" in by_name
    assert as_json(cli("storages", "show", added["id"], "--json")) == added
    quota = as_json(cli("quota", "--json"))
    assert added["id"] in [s["id"] for s in quota["storages"]]
    assert quota["capacityBytes"] >= 1000000000
    assert "capacity" in ok(cli("quota")).stdout

    # When it is removed
    assert added["id"] in ok(cli("storages", "remove", added["id"])).stdout
    # Then it is gone, and the API's 404 is what the operator reads
    message = refused(cli("storages", "show", added["id"]))
    assert "404" in message and "NotFound" in message


def test_storage_of_a_missing_bucket_is_refused_with_the_api_message(cli: Cli) -> None:
    # Given a bucket that does not exist
    bucket = _unique("cli-missing")
    # When it is registered
    result = cli(
        "storages",
        "add",
        "--name",
        "ghost",
        "--role",
        "local",
        "--bucket",
        bucket,
        "--region",
        "us-east-1",
        "--capacity-bytes",
        "1000",
    )
    # Then the API's message and status reach the operator
    message = refused(result)
    assert bucket in message and "422" in message


def test_plan_create_show_next_runs_pause_resume_update_delete(
    cli: Cli, storages: dict[str, str]
) -> None:
    # When the plan is created from flags, naming storages by their names
    created = as_json(_create_plan(cli, storages))
    plan_id = created["id"]
    try:
        # Then it holds the storages' ids and the weekly policy
        storage_ids = {
            s["name"]: s["id"] for s in as_json(cli("storages", "list", "--json"))["items"]
        }
        assert created["localStorageIds"] == [
            storage_ids[storages["primary"]],
            storage_ids[storages["fallback"]],
        ]
        assert created["remoteStorageId"] == storage_ids[storages["remote"]]
        assert created["policy"]["weekdays"] == ["SUN", "TUE"]
        assert created["state"] == "enabled"
        shown = ok(cli("plan", "show", plan_id)).stdout
        assert "weekly on SUN,TUE at 00:00 (Asia/Shanghai)" in shown
        assert "local: count 7; remote: days 30" in shown
        assert as_json(cli("plan", "show", plan_id, "--json"))["id"] == plan_id

        runs = as_json(cli("plan", "next-runs", plan_id, "--count", "4", "--json"))["runs"]
        assert [r["local"] for r in runs] == [
            "2036-12-02T00:00:00+08:00",
            "2036-12-07T00:00:00+08:00",
            "2036-12-09T00:00:00+08:00",
            "2036-12-14T00:00:00+08:00",
        ]
        assert "2036-12-01T16:00:00Z" in ok(cli("plan", "next-runs", plan_id)).stdout

        # And a second plan is refused with the API's 409
        message = refused(_create_plan(cli, storages))
        assert "exists already" in message and "409" in message

        # When it is paused and resumed
        assert as_json(cli("plan", "pause", plan_id, "--json"))["state"] == "paused"
        assert "is enabled" in ok(cli("plan", "resume", plan_id)).stdout

        # When it is updated from flags: daily, without remote sync
        updated = as_json(
            cli(
                "plan",
                "update",
                plan_id,
                "--cycle",
                "daily",
                "--execution-time",
                "02:30",
                "--no-remote-sync",
                "--json",
            )
        )
        # Then the rest of the plan is kept, and what the new cycle forbids is gone
        assert updated["policy"]["cycle"] == "daily"
        assert updated["policy"]["executionTime"] == "02:30"
        assert not updated["policy"].get("weekdays")
        assert updated["remoteSync"] is False
        assert updated["retention"] == {"local": {"mode": "count", "value": 7}, "remote": None}
        assert updated["localStorageIds"] == created["localStorageIds"]
        assert updated["revision"] > created["revision"]

        # And an invalid change is refused naming the field
        message = refused(cli("plan", "update", plan_id, "--execution-time", "25:00"))
        assert "policy.executionTime" in message and "400" in message
    finally:
        # When it is deleted
        ok(cli("plan", "delete", plan_id))
    # Then it is gone
    assert "404" in refused(cli("plan", "show", plan_id))


def test_plan_from_yaml_file_then_updated_from_json_file(
    cli: Cli, storages: dict[str, str], tmp_path: Path
) -> None:
    # Given a plan written as YAML, naming its storage by name
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        "name: from-yaml\n"
        f"localStorageIds: [{storages['primary']}]\n"
        "policy:\n"
        "  cycle: hourly\n"
        "  startTime: '2026-12-01T00:15:00+00:00'\n"
        "retention:\n"
        "  local: {mode: days, value: 3}\n"
    )
    # When it is created from the file, with a flag overriding the file
    created = as_json(
        cli("plan", "create", "--file", str(plan_file), "--description", "flag", "--json")
    )
    try:
        # Then
        assert (created["name"], created["description"]) == ("from-yaml", "flag")
        assert created["policy"]["cycle"] == "hourly"
        # When it is replaced by a JSON file
        body = {
            k: v
            for k, v in created.items()
            if k not in ("id", "state", "revision", "createdAt", "updatedAt")
        }
        body["name"] = "from-json"
        body["retention"] = {"local": {"mode": "count", "value": 2}}
        json_file = tmp_path / "plan.json"
        json_file.write_text(json.dumps(body))
        updated = as_json(cli("plan", "update", created["id"], "-f", str(json_file), "--json"))
        # Then
        assert updated["name"] == "from-json"
        assert updated["retention"]["local"] == {"mode": "count", "value": 2}
    finally:
        ok(cli("plan", "delete", created["id"]))


def test_run_watch_and_executions(cli: Cli, plan: dict[str, Any]) -> None:
    # When a backup is started now
    started = as_json(cli("run", "--plan", plan["id"], "--json"))
    assert (started["planId"], started["trigger"]) == (plan["id"], "manual")
    # And watched until it ends
    watched = cli("executions", "watch", started["id"], "--interval", "0.2", "--json")
    # Then the watch exits 0 exactly when the run succeeded, and prints the final execution
    final = json.loads(watched.stdout)
    assert final["id"] == started["id"]
    assert final["status"] in FINAL_EXECUTION
    assert watched.exit_code == (0 if final["status"] == "succeeded" else 1), watched.output
    assert as_json(cli("executions", "show", started["id"], "--json"))["status"] == final["status"]
    assert final["status"] in ok(cli("executions", "show", started["id"])).stdout

    listed = as_json(cli("executions", "list", "--plan", plan["id"], "--json"))
    assert started["id"] in [e["id"] for e in listed["items"]]
    assert started["id"] in ok(cli("executions", "list", "--plan", plan["id"])).stdout

    # When a run is started and followed in one command (the plan is free: the last run ended)
    both = cli("run", "--plan", plan["id"], "--watch", "--interval", "0.2")
    # Then its outcome line and exit status agree
    newest = as_json(cli("executions", "list", "--plan", plan["id"], "--limit", "1", "--json"))
    status = newest["items"][0]["status"]
    assert status in FINAL_EXECUTION
    assert f"{status}:" in both.stdout
    assert both.exit_code == (0 if status == "succeeded" else 1), both.output

    # And the backups, if the runs made any, list with their copies
    backups = as_json(cli("backups", "list", "--plan", plan["id"], "--json"))
    for backup in backups["items"]:
        assert backup["copies"], backup
        assert as_json(cli("backups", "show", backup["id"], "--json"))["id"] == backup["id"]
    listing = ok(cli("backups", "list", "--plan", plan["id"])).stdout
    assert all(b["id"] in listing for b in backups["items"])
    if not backups["items"]:
        assert "no backups" in listing


def test_unknown_ids_are_refused_with_the_api_message(cli: Cli) -> None:
    unknown = uuid.uuid4().hex
    for command in (
        ("executions", "show", unknown),
        ("executions", "watch", unknown),
        ("backups", "show", unknown),
        ("backups", "delete", unknown, "--force"),
        ("restore", "show", unknown),
        ("restore", "watch", unknown),
        ("restore", "start", "--backup", unknown),
        ("plan", "next-runs", unknown),
    ):
        # When the command names something that does not exist
        message = refused(cli(*command))
        # Then the API's 404 reaches the operator
        assert "404" in message and "NotFound" in message, command


def test_restore_list_answers_a_table_or_the_api_message(cli: Cli) -> None:
    # When the restores are listed (the restore routes may not be deployed yet)
    table, listed = cli("restore", "list"), cli("restore", "list", "--json")
    # Then either the restores or the API's refusal, never a traceback
    if listed.exit_code == 0:
        assert "items" in json.loads(listed.stdout)
        ok(table)
    else:
        assert "404" in refused(listed) and "404" in refused(table)


def test_restore_start_refuses_unsafe_or_ambiguous_requests_before_sending(cli: Cli) -> None:
    # When an in-place restore has no confirmation
    in_place = cli("restore", "start", "--backup", "b1", "--mode", "in-place")
    # Then it is a usage error naming --confirm
    assert in_place.exit_code == 2
    assert "--confirm" in in_place.output
    # And a restore needs exactly one of --backup and --before
    assert cli("restore", "start").exit_code == 2
    both = cli("restore", "start", "--backup", "b1", "--before", "2026-01-01T00:00:00Z")
    assert both.exit_code == 2 and "--before" in both.output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_console_script_reports_an_unreachable_api_without_traceback() -> None:
    # Given an address nothing listens on, from the environment
    url = f"http://127.0.0.1:{_closed_port()}"
    env = {**os.environ, "PLATFORM_BACKUP_API": url}
    # When the installed command is run
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "storages", "list"], env=env, capture_output=True, text=True
    )
    # Then
    assert done.returncode == 1
    assert f"cannot reach the API at {url}" in done.stderr
    assert "Traceback" not in done.stderr
