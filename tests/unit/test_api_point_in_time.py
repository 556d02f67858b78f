"""Point-in-time recovery through the real API handler on moto: turning it on asks the server
(through the archiver function) first, and the plan's recovery window shows what a restore can
reach, from records written as the archiver and the executor write them.

The archiver's own check is another function's; here a stand-in registered with the local
stack's invoker answers it, so what is tested is the API's side of the exchange."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from platform_backup.domain.recovery import BREAK_PURGED, HistoryBreak
from tests.support.api import ApiClient
from tests.support.archive_records import (
    StandInArchiver,
    record_backup,
    record_break,
    record_segments,
    remove_archiver,
    segment,
)
from tests.support.moto_env import MotoEnv

PITR_ON = {"enabled": True, "archiveIntervalMinutes": 5}


@pytest.fixture
def archiver(aws: MotoEnv, tmp_path: Path) -> StandInArchiver:
    return StandInArchiver(aws, tmp_path)


@pytest.fixture
def plan_body(api: ApiClient) -> dict[str, Any]:
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
    assert storage.status == 201, storage.body
    return {
        "name": "platform-db",
        "localStorageIds": [storage.body["id"]],
        "policy": {
            "cycle": "daily",
            "executionTime": "02:00",
            "startTime": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "timezone": "UTC",
        },
        "retention": {"local": {"mode": "count", "value": 7}},
    }


def plans(api: ApiClient) -> list[dict[str, Any]]:
    return list(api.get("/v1/plans").body["items"])


# -- turning it on: the server check ------------------------------------------------------------


def test_turning_it_on_asks_the_server_through_the_archiver_and_stores_the_plan(
    api: ApiClient, archiver: StandInArchiver, plan_body: dict[str, Any]
) -> None:
    # Given a plan without point-in-time recovery, on a server whose binary log can be archived
    created = api.post("/v1/plans", plan_body)
    assert created.status == 201, created.body
    assert archiver.asked() == []

    # When the plan is replaced with it turned on, every 3 minutes
    body = {**plan_body, "pointInTime": {"enabled": True, "archiveIntervalMinutes": 3}}
    replaced = api.put(f"/v1/plans/{created.body['id']}", body)

    # Then the archiver was asked about that interval, and the plan archives
    assert replaced.status == 200, replaced.body
    assert archiver.asked() == [{"action": "check", "archiveIntervalMinutes": 3}]
    assert replaced.body["pointInTime"] == {"enabled": True, "archiveIntervalMinutes": 3}

    # And a write that leaves it as it was, or turns it off, asks nothing
    again = api.put(f"/v1/plans/{created.body['id']}", {**body, "description": "pitr"})
    off = api.put(f"/v1/plans/{created.body['id']}", {**plan_body, "pointInTime": None})
    assert again.status == 200 and off.status == 200
    assert off.body["pointInTime"] is None
    assert len(archiver.asked()) == 1


def test_a_server_without_binary_logging_is_refused_naming_the_setting(
    api: ApiClient, archiver: StandInArchiver, plan_body: dict[str, Any]
) -> None:
    # Given a server with binary logging off and statement-based logging
    archiver.answer(
        {
            "ok": False,
            "problems": [
                {"setting": "log_bin", "message": "binary logging is off: start with --log-bin"},
                {"setting": "binlog_format", "message": "is STATEMENT: set binlog_format=ROW"},
            ],
        }
    )

    # When a plan is created with point-in-time recovery on
    refused = api.post("/v1/plans", {**plan_body, "pointInTime": PITR_ON})

    # Then it is refused with 422 naming the field and each server setting to change
    assert refused.status == 422, refused.body
    assert refused.error_fields == ["pointInTime.enabled", "pointInTime.enabled"]
    message = refused.body["error"]["message"]
    assert "log_bin" in message and "binlog_format=ROW" in message
    # And nothing was stored
    assert plans(api) == []


def test_an_unreachable_archiver_answers_503_and_changes_nothing(
    api: ApiClient, aws: MotoEnv, plan_body: dict[str, Any]
) -> None:
    # Given a plan without point-in-time recovery, and no archiver function to ask
    created = api.post("/v1/plans", plan_body)
    assert created.status == 201, created.body
    remove_archiver(aws)

    # When it is turned on, and when a new plan is created with it on
    turned_on = api.put(f"/v1/plans/{created.body['id']}", {**plan_body, "pointInTime": PITR_ON})

    # Then the API says the archiver could not be reached, with 503
    assert turned_on.status == 503, turned_on.body
    assert "archiver function could not be reached" in turned_on.body["error"]["message"]
    # And the plan is as it was
    assert api.get(f"/v1/plans/{created.body['id']}").body == created.body


# -- the recovery window ------------------------------------------------------------------------

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def parsed(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@pytest.fixture
def archiving_plan(
    api: ApiClient, archiver: StandInArchiver, plan_body: dict[str, Any]
) -> dict[str, Any]:
    created = api.post("/v1/plans", {**plan_body, "pointInTime": PITR_ON})
    assert created.status == 201, created.body
    return dict(created.body)


def test_the_window_runs_from_a_backup_through_the_archived_chain(
    api: ApiClient, archiving_plan: dict[str, Any]
) -> None:
    # Given a backup taken in the second of three archived binary-log files
    plan_id = archiving_plan["id"]
    record_segments(
        [
            segment(plan_id, 1, 1, at(0), at(5)),
            segment(plan_id, 2, 2, at(5), at(10)),
            segment(plan_id, 3, 3, at(10), at(15)),
        ]
    )
    record_backup(plan_id, "b1", 2, at(6))

    # When the recovery window is asked for
    answer = api.get(f"/v1/plans/{plan_id}/recovery-window")

    # Then it runs from the backup to the second before the last file was closed
    assert answer.status == 200, answer.body
    window = answer.body["windows"]
    assert [(parsed(w["from"]), parsed(w["to"])) for w in window] == [(at(6), at(15) - SECOND)]
    assert parsed(answer.body["lastRecoverableTime"]) == at(15) - SECOND
    assert answer.body["gaps"] == []
    # And the lag is how far the archive trails now (the last file closed long ago here)
    assert answer.body["lagSeconds"] > 0
    # And every time carries its offset
    assert all(w["from"].endswith(("Z", "+00:00")) for w in window)


def test_binlogs_purged_before_archiving_show_as_a_gap_until_the_next_backup(
    api: ApiClient, archiving_plan: dict[str, Any]
) -> None:
    # Given files 3 and 4 purged on the server before they were archived, and a backup on
    # either side of the break
    plan_id = archiving_plan["id"]
    record_segments(
        [
            segment(plan_id, 1, 1, at(0), at(5)),
            segment(plan_id, 2, 2, at(5), at(10)),
            segment(plan_id, 3, 5, at(20), at(25), continues=False),
        ]
    )
    record_break(
        HistoryBreak(plan_id, at(20), BREAK_PURGED, "mysql-bin.000003 to 000004 were purged")
    )
    record_backup(plan_id, "b1", 1, at(1))
    record_backup(plan_id, "b2", 5, at(21))

    # When the recovery window is asked for
    answer = api.get(f"/v1/plans/{plan_id}/recovery-window")

    # Then there are two windows, and the gap between them says why
    assert answer.status == 200, answer.body
    assert [(parsed(w["from"]), parsed(w["to"])) for w in answer.body["windows"]] == [
        (at(1), at(10) - SECOND),
        (at(21), at(25) - SECOND),
    ]
    [gap] = answer.body["gaps"]
    assert (parsed(gap["from"]), parsed(gap["to"])) == (at(10) - SECOND, at(21))
    assert gap["reason"].startswith("purged") and "mysql-bin.000003" in gap["reason"]
    assert parsed(answer.body["lastRecoverableTime"]) == at(25) - SECOND


def test_a_plan_with_nothing_archived_has_no_window(
    api: ApiClient, archiving_plan: dict[str, Any]
) -> None:
    # Given a plan that archives, before its first file is archived
    # When its recovery window is asked for
    answer = api.get(f"/v1/plans/{archiving_plan['id']}/recovery-window")

    # Then there is none, and nothing to measure the lag by
    assert answer.status == 200, answer.body
    assert answer.body == {
        "windows": [],
        "lastRecoverableTime": None,
        "gaps": [],
        "lagSeconds": None,
    }


def test_turned_off_the_windows_archived_stay_and_no_lag_is_reported(
    api: ApiClient, archiving_plan: dict[str, Any], plan_body: dict[str, Any]
) -> None:
    # Given an archived window, and then point-in-time recovery turned off
    plan_id = archiving_plan["id"]
    record_segments([segment(plan_id, 1, 1, at(0), at(5)), segment(plan_id, 2, 2, at(5), at(10))])
    record_backup(plan_id, "b1", 1, at(1))
    assert api.put(f"/v1/plans/{plan_id}", plan_body).status == 200

    # When its recovery window is asked for
    answer = api.get(f"/v1/plans/{plan_id}/recovery-window")

    # Then the archived window is still there (until retention prunes it), and no lag
    assert answer.status == 200, answer.body
    assert parsed(answer.body["lastRecoverableTime"]) == at(10) - SECOND
    assert answer.body["lagSeconds"] is None


def test_an_unknown_plan_has_no_recovery_window(api: ApiClient) -> None:
    answer = api.get("/v1/plans/no-such-plan/recovery-window")

    assert answer.status == 404
    assert "no-such-plan" in answer.body["error"]["message"]
