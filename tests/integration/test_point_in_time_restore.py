"""Restores to a point in time, end to end on the local stack: a private MariaDB server with
binary logging is the platform database (the executor, the archiver and the restore reach it
through the secret), a workload that writes rows carrying their own commit time, two full backups
by the real executor, the binary log archived by the real archiver function (each run delivered
as the plan's archive schedule delivers it; point-in-time recovery turned on through the API,
whose server check the archiver answers from the private server), and the real API and restore
workflow on the embedded AWS's Step Functions engine replaying the segments with mariadb-binlog.
Every function runs in its own worker processes, as its template role."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from devstack.config import DatabaseAccess
from devstack.private_server import PrivateServer, private_server
from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from tests.integration.test_restore_targets import checksums
from tests.support.schedule_times import on_time
from tests.support.system import RESTORE, System, client_wrapper, running_system

pytestmark = pytest.mark.integration

ARCHIVER = "pdb-archiver"
PLAN_DBS = ["pitr_a", "pitr_b"]
OTHER = "pitr_other"
USER, PASSWORD = "pdbt_pitr", "Pit#r \"q\" 'x' \\ $HOME ;"


@dataclass
class History:
    server: PrivateServer
    system: System
    instant: datetime  # inside the second every commit of which is restored
    before: set[str]  # labels committed at or before it
    after: set[str]  # labels committed after it
    other_at_end: dict[str, str]  # the outside database's checksums once the workload ended

    def run(self, statement: str) -> str:
        return self.server.sql(statement)

    def restore(self, body: dict[str, Any], in_place: bool = False) -> dict[str, Any]:
        route = "in-place-restores" if in_place else "restores"
        started = self.system.api.post(f"/v1/plans/{self.system.plan_id}/{route}", body)
        assert started.status == 202, started.body
        return self.system.wait(started.body["id"])


def _next_second(margin: float = 0.05) -> None:
    now = time.time()
    time.sleep(1 - (now % 1) + margin)


def _commit(server: PrivateServer, label: str) -> None:
    server.sql(
        f"INSERT INTO pitr_a.events (label, committed_at) VALUES ('{label}', UTC_TIMESTAMP(6))"
    )


def _copy(server: PrivateServer, source: str, copy: str) -> None:
    """The source database copied with mariadb-dump into a scratch database of the same server."""
    server.sql(f"CREATE DATABASE `{copy}`")
    dump = subprocess.run(
        [
            "mariadb-dump",
            "--no-defaults",
            f"--socket={server.socket}",
            "-uroot",
            "--single-transaction",
            source,
        ],
        capture_output=True,
        check=True,
    )
    server.sql(dump.stdout.decode(), copy)


def turn_point_in_time_on(system: System) -> None:
    """Through the API, as an operator would: the archiver checks the server first."""
    plan = system.api.get(f"/v1/plans/{system.plan_id}").body
    body = {k: plan[k] for k in ("name", "localStorageIds", "policy", "retention")}
    body["pointInTime"] = {"enabled": True, "archiveIntervalMinutes": 5}
    replaced = system.api.put(f"/v1/plans/{system.plan_id}", body)
    assert replaced.status == 200, replaced.body
    assert replaced.body["pointInTime"] == {"enabled": True, "archiveIntervalMinutes": 5}


def archiver(system: System) -> Callable[[], dict[str, Any]]:
    """Each call is the next delivery of the plan's archive schedule (every 5 minutes)."""
    times = itertools.count()

    def fire() -> dict[str, Any]:
        when = datetime(2026, 11, 25, 10, tzinfo=UTC) + timedelta(minutes=5 * next(times))
        event = {"planId": system.plan_id, "scheduledTime": when.isoformat(), "kind": "archive"}
        outcome = system.invoke(ARCHIVER, event)
        result = json.loads(outcome.payload)
        assert outcome.function_error is None, result
        assert result["status"] == "archived", result
        return dict(result)

    return fire


@contextmanager
def binlog_system(server: PrivateServer, databases: list[str]) -> Iterator[System]:
    """The stack with the private server as the platform database, reached through the secret
    by the executor, the archiver and the restore; point-in-time on."""
    server.create_user(USER, PASSWORD)
    access = DatabaseAccess("127.0.0.1", server.port, USER, PASSWORD)
    with running_system(databases, database=access) as system:
        turn_point_in_time_on(system)
        yield system


def _workload(server: PrivateServer, system: System) -> History:
    archive = archiver(system)
    server.sql(
        "CREATE DATABASE pitr_a; CREATE DATABASE pitr_b; CREATE DATABASE pitr_other;"
        " CREATE TABLE pitr_a.events (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(40),"
        " committed_at DATETIME(6));"
        " CREATE TABLE pitr_b.accounts (id INT PRIMARY KEY, balance INT);"
        " CREATE TABLE pitr_other.noise (id INT AUTO_INCREMENT PRIMARY KEY, v INT);"
        " INSERT INTO pitr_b.accounts VALUES (1, 100), (2, 200);"
    )
    before: set[str] = set()
    for label in ("seed-1", "seed-2"):
        _commit(server, label)
        before.add(label)
    assert system.backup(on_time(20))["binlog"]["file"]
    for label in ("e1", "e2"):
        _commit(server, label)
        before.add(label)
    archive()
    server.sql(
        "USE pitr_b; CREATE TABLE added (id INT PRIMARY KEY, note TEXT);"
        " INSERT INTO added VALUES (1, 'made after the first backup');"
        " USE pitr_a; ALTER TABLE events ADD COLUMN extra INT DEFAULT 7;"
        " INSERT INTO pitr_other.noise (v) VALUES (1);"
    )
    _commit(server, "e3")
    before.add("e3")
    archive()
    system.backup(on_time(19))
    _commit(server, "e4")
    before.add("e4")
    server.sql(
        "UPDATE pitr_b.accounts SET balance = balance - 10 WHERE id = 1;"
        " INSERT INTO pitr_other.noise (v) VALUES (2)"
    )
    archive()
    # A transaction that opens before the instant and commits after it.
    span = subprocess.Popen(
        ["mariadb", "--no-defaults", f"--socket={server.socket}", "-uroot", "pitr_a"],
        stdin=subprocess.PIPE,
    )
    assert span.stdin is not None
    span.stdin.write(b"BEGIN; INSERT INTO events (label) VALUES ('span');\n")
    span.stdin.flush()
    _next_second()
    _commit(server, "at-instant")
    server.sql(
        "UPDATE pitr_b.accounts SET balance = balance + 5 WHERE id = 2;"
        " INSERT INTO pitr_other.noise (v) VALUES (3)"
    )
    instant = datetime.now(UTC).replace(microsecond=500_000)
    before.add("at-instant")
    # The state at the instant, copied while nothing else commits.
    for name in PLAN_DBS:
        _copy(server, name, f"{name}_copy")
    _next_second()
    span.stdin.write(
        b"UPDATE events SET committed_at = UTC_TIMESTAMP(6) WHERE label = 'span'; COMMIT;\n"
    )
    span.stdin.close()
    assert span.wait() == 0
    after = {"span"}
    for label in ("after-1", "after-2"):
        _commit(server, label)
        after.add(label)
    server.sql(
        "ALTER TABLE pitr_b.added ADD COLUMN late INT; INSERT INTO pitr_other.noise (v)"
        " VALUES (4); UPDATE pitr_b.accounts SET balance = 0"
    )
    archive()
    _next_second()
    _commit(server, "late")
    after.add("late")
    archive()
    return History(server, system, instant, before, after, checksums(server.sql, OTHER))


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    with private_server(binlog=True) as server, binlog_system(server, PLAN_DBS) as system:
        yield _workload(server, system)


def _labels(history: History, database: str) -> set[str]:
    return set(history.run(f"SELECT label FROM `{database}`.events").split())


def _shanghai(moment: datetime) -> str:
    return moment.astimezone(timezone(timedelta(hours=8))).isoformat()


def test_a_restore_to_an_instant_into_new_databases_is_the_state_at_that_instant(
    history: History,
) -> None:
    # When the plan is restored to the instant (given with another offset) into new databases
    done = history.restore(
        {
            "pointInTime": _shanghai(history.instant),
            "target": {"mode": "new-database", "databaseSuffix": "_r"},
        }
    )
    # Then it succeeded through the replay, and says what it replayed
    assert done["status"] == "succeeded", done
    assert datetime.fromisoformat(done["pointInTime"]) == history.instant
    assert done["replay"]["applied"] is True
    assert done["progress"]["bytesApplied"] == done["progress"]["bytesTotal"] > 0
    # And every row committed at or before the instant is there, none after
    assert _labels(history, "pitr_a_r") == history.before
    # And every table equals the copy of the source taken at that instant
    for name in PLAN_DBS:
        assert checksums(history.run, f"{name}_r") == checksums(history.run, f"{name}_copy")
    # And the database outside the plan, written during the window, was not touched
    assert checksums(history.run, OTHER) == history.other_at_end
    assert "pitr_other_r" not in history.run("SHOW DATABASES").split()


def test_an_instant_outside_every_window_is_refused_naming_the_windows(
    history: History,
) -> None:
    early = datetime(2020, 1, 1, tzinfo=UTC)
    refused = history.system.api.post(
        f"/v1/plans/{history.system.plan_id}/restores",
        {"pointInTime": early.isoformat(), "target": {"mode": "new-database"}},
    )
    assert refused.status == 409, refused.body
    message = refused.body["error"]["message"]
    assert "in no recovery window" in message and "last recoverable time" in message
    assert " to " in message  # the windows, from and to


def test_a_naive_instant_is_refused_naming_the_field(history: History) -> None:
    refused = history.system.api.post(
        f"/v1/plans/{history.system.plan_id}/restores",
        {"pointInTime": "2026-12-01T10:15:30", "target": {"mode": "new-database"}},
    )
    assert refused.status == 400, refused.body
    assert refused.error_fields == ["pointInTime"]


# The replay's client session is fed mariadb-binlog's text, which opens with this setting.
REPLAY_HEADER = "PSEUDO_SLAVE_MODE"


def failing_replay_client(tmp_path: Path) -> dict[str, str]:
    """The restore function's environment with a client that reads a little of a replay and
    fails; what else it is given (the backup's apply, the rollback's) it applies."""
    script = (
        'first="$(mktemp)"\n'
        "trap 'rm -f \"$first\"' EXIT\n"
        'head -c 100 >"$first"\n'
        f"if grep -q {REPLAY_HEADER} \"$first\"; then echo 'replay broke' >&2; exit 1; fi\n"
        'cat "$first" - | "$CLIENT" "$@"\n'
    )
    return client_wrapper(tmp_path, script, RESTORE)[RESTORE]


def test_an_in_place_restore_whose_replay_fails_is_rolled_back(
    history: History, tmp_path: Path
) -> None:
    live = {name: checksums(history.run, name) for name in PLAN_DBS}
    # Given the restore function's client fails in the replay
    history.system.configure(RESTORE, environment=failing_replay_client(tmp_path))
    try:
        done = history.restore(
            {
                "pointInTime": history.instant.isoformat(),
                "target": {"mode": "in-place"},
                "confirm": "platform-db",
            },
            in_place=True,
        )
    finally:
        history.system.configure(RESTORE, environment={"PATH": os.environ["PATH"]})
    assert done["status"] == "rolled-back", done
    assert "replay broke" in done["error"]
    assert done["safetyBackupId"]
    assert {name: checksums(history.run, name) for name in PLAN_DBS} == live


def test_an_in_place_restore_to_an_instant_brings_that_state_back(history: History) -> None:
    done = history.restore(
        {
            "pointInTime": history.instant.isoformat(),
            "target": {"mode": "in-place"},
            "confirm": "platform-db",
        },
        in_place=True,
    )
    assert done["status"] == "succeeded", done
    assert done["safetyBackupId"]
    assert _labels(history, "pitr_a") == history.before
    for name in PLAN_DBS:
        assert checksums(history.run, name) == checksums(history.run, f"{name}_copy")
    assert checksums(history.run, OTHER) == history.other_at_end
    # And the plan's history breaks where the restore began writing
    breaks = DynamoArchiveRepository().breaks(history.system.plan_id)
    assert [b.kind for b in breaks if b.kind == "restore"]


def test_a_corrupted_segment_is_refused_at_validation_and_nothing_is_touched(
    history: History,
) -> None:
    repo = DynamoArchiveRepository()
    segments = repo.segments(history.system.plan_id)
    victim = segments[-3]
    copy = victim.copies[0]
    history.system.client("s3").put_object(Bucket=copy.bucket, Key=copy.key, Body=b"garbage")
    databases = set(history.run("SHOW DATABASES").split())
    done = history.restore(
        {
            "pointInTime": history.instant.isoformat(),
            "target": {"mode": "new-database", "databaseSuffix": "_bad"},
        }
    )
    assert done["status"] == "failed", done
    assert victim.file in done["error"] and "checksum" in done["error"]
    assert done["targetTouched"] is False
    assert set(history.run("SHOW DATABASES").split()) == databases
    marked = {s.sequence: s for s in repo.segments(history.system.plan_id)}[victim.sequence]
    assert marked.corrupt
    assert "corrupt" in [b.kind for b in repo.breaks(history.system.plan_id)]
