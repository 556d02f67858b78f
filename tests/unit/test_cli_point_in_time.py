"""`platform-backup plan update --point-in-time` and `platform-backup recovery-window`, through
the local stack's HTTP gateway in front of the real API handler on moto (in-process), with the
archiver's server check answered by a stand-in (tests/support/archive_records.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from devstack.gateway import ApiGateway
from platform_backup.domain.recovery import BREAK_PURGED, HistoryBreak
from platform_backup_cli.main import app
from tests.support.api import ApiClient
from tests.support.archive_records import (
    StandInArchiver,
    record_backup,
    record_break,
    record_segments,
    segment,
)
from tests.support.moto_env import MotoEnv

Cli = Callable[..., Result]
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def cli(aws: MotoEnv) -> Iterator[Cli]:
    gateway = ApiGateway(0, aws.client("lambda"), "pdb-api")
    gateway.start()
    runner = CliRunner(env={"COLUMNS": "200", "PLATFORM_BACKUP_API": None})
    try:
        yield lambda *args: runner.invoke(app, ["--api", gateway.url, *args])
    finally:
        gateway.stop()


@pytest.fixture
def plan(api: ApiClient) -> dict[str, Any]:
    storage = api.post(
        "/v1/storages",
        {
            "name": "primary",
            "role": "local",
            "bucket": "pdb-primary",
            "region": "us-east-1",
            "capacityBytes": 10**12,
        },
    )
    body = {
        "name": "platform-db",
        "localStorageIds": [storage.body["id"]],
        "policy": {"cycle": "hourly", "startTime": T0.isoformat()},
        "retention": {"local": {"mode": "count", "value": 7}},
    }
    created = api.post("/v1/plans", body)
    assert created.status == 201, created.body
    return dict(created.body)


def test_turning_point_in_time_on_and_off_from_the_cli(
    cli: Cli, plan: dict[str, Any], aws: MotoEnv, tmp_path: Path
) -> None:
    # Given the plan, and a server whose binary log can be archived
    archiver = StandInArchiver(aws, tmp_path)

    # When the operator turns point-in-time recovery on every 3 minutes
    result = cli("plan", "update", "--point-in-time", "on", "--archive-interval", "3")

    # Then the server was checked, and the plan shows it on
    assert result.exit_code == 0, result.output
    assert "on, binary log archived every 3 min" in result.stdout
    assert archiver.asked() == [{"action": "check", "archiveIntervalMinutes": 3}]

    # And turned off, it says so (the interval kept for next time)
    off = cli("plan", "update", "--point-in-time", "off", "--json")
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout)["pointInTime"] == {"enabled": False, "archiveIntervalMinutes": 3}


def test_a_server_that_cannot_be_archived_is_refused_with_the_setting_to_change(
    cli: Cli, plan: dict[str, Any], aws: MotoEnv, tmp_path: Path
) -> None:
    # Given a server with binary logging off
    StandInArchiver(aws, tmp_path).answer(
        {"ok": False, "problems": [{"setting": "log_bin", "message": "start with --log-bin"}]}
    )

    # When the operator turns point-in-time recovery on
    result = cli("plan", "update", "--point-in-time", "on")

    # Then the CLI exits 1 with the API's message naming the field and the setting
    assert result.exit_code == 1
    assert "pointInTime.enabled" in result.stderr and "log_bin" in result.stderr


def test_the_recovery_window_as_tables_and_as_json(cli: Cli, plan: dict[str, Any]) -> None:
    # Given two windows either side of binary logs purged before they were archived
    plan_id = plan["id"]
    record_segments(
        [
            segment(plan_id, 1, 1, at(0), at(5)),
            segment(plan_id, 2, 2, at(5), at(10)),
            segment(plan_id, 3, 5, at(20), at(25), continues=False),
        ]
    )
    record_break(HistoryBreak(plan_id, at(20), BREAK_PURGED, "mysql-bin.000003 was purged"))
    record_backup(plan_id, "b1", 1, at(1))
    record_backup(plan_id, "b2", 5, at(21))

    # When the operator asks for the recovery window of the only plan
    shown = cli("recovery-window")
    answer = cli("recovery-window", plan_id, "--json")

    # Then the tables show the last recoverable second, each window and the gap with its reason
    assert shown.exit_code == 0, shown.output
    assert "last recoverable  2026-12-01T10:24:59Z" in shown.stdout
    assert "2026-12-01T10:01:00Z" in shown.stdout and "2026-12-01T10:09:59Z" in shown.stdout
    assert "purged: mysql-bin.000003 was purged" in shown.stdout
    # And --json prints the API's answer
    assert answer.exit_code == 0, answer.output
    body = json.loads(answer.stdout)
    assert len(body["windows"]) == 2 and len(body["gaps"]) == 1
