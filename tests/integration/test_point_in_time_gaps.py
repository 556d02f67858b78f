"""A break in the archived history, end to end: binary logs purged on the private server before
the real archiver took them. The plan's recovery window shows the gap with its reason, the alarm's
metric is published, a restore into the gap is refused naming the windows, and a restore inside
the window the next full backup opened gives the rows as they were at that instant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.private_server import PrivateServer, private_server
from tests.integration.test_point_in_time_restore import (
    ARCHIVER,
    _commit,
    _copy,
    _next_second,
    archiver,
    binlog_system,
)
from tests.integration.test_restore_targets import checksums
from tests.support.schedule_times import on_time
from tests.support.system import System

pytestmark = pytest.mark.integration

PLAN_DBS = ["pitr_a"]


@dataclass
class Broken:
    server: PrivateServer
    system: System
    emitted: list[dict[str, Any]]  # the metrics the archive runs published
    in_gap: datetime  # a commit's time between the two windows
    instant: datetime  # inside the second window
    before: set[str]  # labels committed at or before ``instant``

    def window(self) -> dict[str, Any]:
        found = self.system.api.get(f"/v1/plans/{self.system.plan_id}/recovery-window")
        assert found.status == 200, found.body
        return dict(found.body)

    def restore(self, at: datetime, suffix: str) -> Any:
        return self.system.api.post(
            f"/v1/plans/{self.system.plan_id}/restores",
            {
                "pointInTime": at.isoformat(),
                "target": {"mode": "new-database", "databaseSuffix": suffix},
            },
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _binary_logs(server: PrivateServer) -> list[str]:
    return [row.split("\t")[0] for row in server.sql("SHOW BINARY LOGS").splitlines() if row]


def _history(server: PrivateServer, system: System) -> Broken:
    archive = archiver(system)
    server.sql(
        "CREATE DATABASE pitr_a; CREATE TABLE pitr_a.events (id INT AUTO_INCREMENT PRIMARY KEY,"
        " label VARCHAR(40), committed_at DATETIME(6));"
    )
    _commit(server, "g1")
    system.backup(on_time(20))
    _commit(server, "g2")
    # A window ends a whole second before its last file was closed: let it reach past g2.
    _next_second()
    _next_second()
    archive()
    # Files the server closes and purges before the next archive run.
    _next_second()
    _commit(server, "g3")
    in_gap = _now()
    server.sql("FLUSH BINARY LOGS")
    _commit(server, "g4")
    server.sql("FLUSH BINARY LOGS")
    server.sql(f"PURGE BINARY LOGS TO '{_binary_logs(server)[-1]}'")
    with system.log_of(ARCHIVER) as log:
        archive()
        emitted = [json.loads(line) for line in log() if line.startswith("{") and '"_aws"' in line]
    # The next full backup opens a new window.
    _next_second()
    system.backup(on_time(19))
    _commit(server, "h1")
    _next_second()
    _commit(server, "h2")
    instant = _now()
    _copy(server, "pitr_a", "pitr_a_copy")  # the state at the instant
    _next_second()
    _commit(server, "h3")
    archive()
    _next_second()
    _commit(server, "h4")
    archive()
    return Broken(server, system, emitted, in_gap, instant, {"g1", "g2", "g3", "g4", "h1", "h2"})


@pytest.fixture(scope="module")
def broken() -> Iterator[Broken]:
    with private_server(binlog=True) as server, binlog_system(server, PLAN_DBS) as system:
        yield _history(server, system)


def test_the_window_shows_the_gap_with_its_reason(broken: Broken) -> None:
    window = broken.window()
    # Two windows, one per full backup, with the purged files' gap between them
    assert len(window["windows"]) == 2, window
    first, second = window["windows"]
    (gap,) = window["gaps"]
    assert gap["reason"].startswith("purged: binary log mysql-bin.000002")
    assert "before it was archived" in gap["reason"]
    assert (gap["from"], gap["to"]) == (first["to"], second["from"])
    assert datetime.fromisoformat(first["to"]) < broken.in_gap < datetime.fromisoformat(gap["to"])
    # and the second window reaches the instant, the last recoverable time its end
    assert datetime.fromisoformat(second["from"]) <= broken.instant
    assert datetime.fromisoformat(second["to"]) >= broken.instant
    assert window["lastRecoverableTime"] == second["to"]


def test_the_break_publishes_the_alarms_metric(broken: Broken) -> None:
    breaks = [m for m in broken.emitted if "RecoveryHistoryBreaks" in m]
    assert [(m["plan"], m["RecoveryHistoryBreaks"]) for m in breaks] == [
        (broken.system.plan_id, [1.0])
    ]


def test_a_restore_into_the_gap_is_refused_naming_the_windows(broken: Broken) -> None:
    databases = set(broken.server.sql("SHOW DATABASES").split())
    refused = broken.restore(broken.in_gap, "_gap")
    assert refused.status == 409, refused.body
    message = refused.body["error"]["message"]
    assert "in no recovery window" in message
    for window in broken.window()["windows"]:
        start, end = (datetime.fromisoformat(window[k]).isoformat() for k in ("from", "to"))
        assert f"{start} to {end}" in message
    # and nothing was touched
    assert set(broken.server.sql("SHOW DATABASES").split()) == databases


def test_a_restore_inside_the_next_window_gives_the_rows_at_that_instant(broken: Broken) -> None:
    started = broken.restore(broken.instant, "_next")
    assert started.status == 202, started.body
    done = broken.system.wait(started.body["id"])
    assert done["status"] == "succeeded", done
    restored = set(broken.server.sql("SELECT label FROM pitr_a_next.events").split())
    assert restored == broken.before
    assert checksums(broken.server.sql, "pitr_a_next") == checksums(
        broken.server.sql, "pitr_a_copy"
    )
