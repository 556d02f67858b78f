"""The archiver end to end on the local stack: the real archiver function in its worker
processes, as its template role, a private MariaDB server with binary logging as the platform
database (reached through the secret, as the archiver's own user), the real mariadb-binlog over
the replication protocol. Segments are compared with the very files in the server's binary-log
directory."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import zstandard

from devstack.config import DatabaseAccess
from devstack.private_server import PrivateServer, private_server
from devstack.resources import REMOTE_BUCKET
from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.binlog_events import BinlogScanner
from platform_backup.domain.recovery import BREAK_PURGED, Segment
from tests.support.api import ApiClient
from tests.support.databases import RUN_ID
from tests.support.system import System, running_system

pytestmark = pytest.mark.integration

# What the README asks of the archiver's user: nothing more.
ARCHIVER_GRANTS = "REPLICATION SLAVE, BINLOG MONITOR, RELOAD, SELECT"
ARCHIVER = "pdb-archiver"


@dataclass
class Archive:
    system: System
    server: PrivateServer

    @property
    def api(self) -> ApiClient:
        return self.system.api

    @property
    def plan_id(self) -> str:
        return self.system.plan_id

    @property
    def storages(self) -> dict[str, str]:
        return self.system.storages

    def fire(self, scheduled_time: str) -> dict[str, Any]:
        event = {"planId": self.plan_id, "scheduledTime": scheduled_time, "kind": "archive"}
        return self.invoke(event)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        outcome = self.system.invoke(ARCHIVER, event)
        result = json.loads(outcome.payload)
        assert outcome.function_error is None, result
        return dict(result)

    def segments(self) -> list[Segment]:
        return sorted(DynamoArchiveRepository().segments(self.plan_id), key=lambda s: s.sequence)

    def stored(self, segment: Segment) -> bytes:
        copy = segment.copies[0]
        body = self.system.client("s3").get_object(Bucket=copy.bucket, Key=copy.key)["Body"]
        return bytes(body.read())

    def server_file(self, name: str) -> bytes:
        return (self.server.binlog_dir / name).read_bytes()

    def write(self, rows: int) -> None:
        values = ", ".join(f"('row {i}')" for i in range(rows))
        self.server.sql(f"INSERT INTO app.t (v) VALUES {values}")


@pytest.fixture
def archive() -> Iterator[Archive]:
    """The stack protecting the private server's ``app`` through the archiver's user, with the
    plan on the primary and the fallback storage and point-in-time recovery turned on (every
    minute) through the API."""
    password = f"Arc#{RUN_ID} 'q' \\ ;"
    with private_server(binlog=True) as server:
        server.create_user("archiver", password, ARCHIVER_GRANTS)
        server.sql(
            "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)"
        )
        access = DatabaseAccess("127.0.0.1", server.port, "archiver", password)
        with running_system(["app"], fallback=True, database=access) as system:
            plan = system.api.get(f"/v1/plans/{system.plan_id}").body
            body = {k: plan[k] for k in ("name", "localStorageIds", "policy", "retention")}
            body["pointInTime"] = {"enabled": True, "archiveIntervalMinutes": 1}
            replaced = system.api.put(f"/v1/plans/{system.plan_id}", body)
            assert replaced.status == 200, replaced.body
            yield Archive(system, server)


def _decompressed(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def test_runs_archive_an_unbroken_chain_equal_to_the_servers_files(archive: Archive) -> None:
    # Given writes between three archive runs
    outcomes = []
    for minute in range(3):
        archive.write(50 + minute)
        outcomes.append(archive.fire(f"2026-12-01T10:0{minute}:00Z"))
    # When the segments are read back
    segments = archive.segments()
    # Then each run archived the file it closed, one after the other, the first one opening it
    assert [o["status"] for o in outcomes] == ["archived"] * 3
    assert [s.sequence for s in segments] == [1, 2, 3]
    assert [s.continues for s in segments] == [False, True, True]
    files = [s.file for s in segments]
    assert files == ["mysql-bin.000001", "mysql-bin.000002", "mysql-bin.000003"]
    for segment in segments:
        stored = archive.stored(segment)
        raw = _decompressed(stored)
        # whose bytes are exactly the server's file, checksummed as stored
        assert raw == archive.server_file(segment.file)
        assert hashlib.sha256(stored).hexdigest() == segment.sha256
        assert segment.raw_bytes == len(raw) and segment.compressed_bytes == len(stored)
        assert segment.copies[0].key == (
            f"platform-db/binlog/{archive.plan_id}/7/{segment.file}.zst"
        )
        # and whose GTIDs and times are those mariadb-binlog reads in it
        scan = BinlogScanner()
        scan.feed(raw)
        summary = scan.summary()
        assert (segment.first_gtid, segment.last_gtid) == (summary.first_gtid, summary.last_gtid)
        assert segment.opened_at <= segment.covered_until
    # GTIDs run on without a hole: domain 0, server 7, one transaction per write (and DDL)
    assert segments[1].first_gtid is not None and segments[0].last_gtid is not None
    last_seq = int(segments[0].last_gtid.rsplit("-", 1)[1])
    assert int(segments[1].first_gtid.rsplit("-", 1)[1]) == last_seq + 1
    server_pos = archive.server.sql("SELECT @@gtid_binlog_pos").strip()
    assert segments[-1].last_gtid == server_pos
    # and the storage counts the room they take, as it counts backups
    primary = archive.api.get(f"/v1/storages/{archive.storages['primary']}").body
    assert primary["usedBytes"] == sum(s.compressed_bytes for s in segments)


def test_two_deliveries_of_the_same_time_make_one_run(archive: Archive) -> None:
    # Given a first run, then writes
    archive.fire("2026-12-01T10:00:00Z")
    archive.write(20)
    # When the next scheduled time is delivered twice at once
    results: list[dict[str, Any]] = []

    def fire() -> None:
        results.append(archive.fire("2026-12-01T10:01:00Z"))

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one of them ran and the other did nothing
    assert sorted(r["status"] for r in results) == ["archived", "duplicate"]
    # and the chain has each file once, none missing
    files = [s.file for s in archive.segments()]
    assert files == ["mysql-bin.000001", "mysql-bin.000002"]


def test_a_primary_that_refuses_sends_segments_to_the_fallback(archive: Archive) -> None:
    # Given a primary bucket that refuses every write
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::pdb-primary/*",
            }
        ],
    }
    archive.system.client("s3").put_bucket_policy(Bucket="pdb-primary", Policy=json.dumps(deny))
    archive.write(10)
    # When the archive runs
    outcome = archive.fire("2026-12-01T10:00:00Z")
    # Then the segment is in the fallback storage, whole
    (segment,) = archive.segments()
    assert outcome["status"] == "archived"
    assert segment.copies[0].bucket == "pdb-fallback"
    assert segment.copies[0].storage_id == archive.storages["fallback"]
    assert _decompressed(archive.stored(segment)) == archive.server_file(segment.file)
    # and nothing is left in the primary
    listed = archive.system.client("s3").list_objects_v2(Bucket="pdb-primary")
    assert listed.get("KeyCount", 0) == 0


def test_binlogs_purged_before_they_were_archived_break_the_history(archive: Archive) -> None:
    with archive.system.log_of(ARCHIVER) as log:
        _purged_before_archived(archive, log)


def _purged_before_archived(archive: Archive, log: Callable[[], list[str]]) -> None:
    # Given a first run that archived mysql-bin.000001
    archive.fire("2026-12-01T10:00:00Z")
    # and two more files the server closed and purged before the next run
    for _ in range(2):
        archive.write(5)
        archive.server.sql("FLUSH BINARY LOGS")
    archive.server.sql("PURGE BINARY LOGS TO 'mysql-bin.000004'")
    # (the server keeps a file whose transactions InnoDB has not checkpointed yet)
    kept = [row.split("\t")[0] for row in archive.server.sql("SHOW BINARY LOGS").split("\n") if row]
    assert "mysql-bin.000002" not in kept
    first_kept = kept[0]
    archive.write(5)
    # When the next run comes
    outcome = archive.fire("2026-12-01T10:01:00Z")
    # Then the break is recorded with the lost files' names
    (brk,) = DynamoArchiveRepository().breaks(archive.plan_id)
    assert brk.kind == BREAK_PURGED
    lost = "mysql-bin.000002" if first_kept == "mysql-bin.000003" else "mysql-bin.000002 to"
    assert f"binary log {lost}" in brk.reason
    # and counted in the metric the alarm reads, for this plan
    emitted = [json.loads(line) for line in log() if line.startswith("{") and '"_aws"' in line]
    breaks = [m for m in emitted if "RecoveryHistoryBreaks" in m]
    assert [(m["plan"], m["RecoveryHistoryBreaks"]) for m in breaks] == [(archive.plan_id, [1.0])]
    # and the archive starts a new history at the next file the server has
    assert outcome["status"] == "archived"
    segments = archive.segments()
    assert [(s.file, s.continues) for s in segments[:2]] == [
        ("mysql-bin.000001", False),
        (first_kept, False),
    ]
    # (every file the server kept, up to the one this run closed)
    assert [s.file for s in segments[1:]] == kept
    assert all(s.continues for s in segments[2:])


def test_the_check_says_log_bin_is_off_on_the_shared_server(archive: Archive) -> None:
    # Given the private server with binary logging: the check is satisfied
    ok = archive.invoke({"action": "check", "archiveIntervalMinutes": 5})
    assert ok == {"ok": True, "problems": []}
    # When the secret points at the shared server, which logs nothing
    shared = {"host": "127.0.0.1", "port": 3306, "username": "root", "password": ""}
    archive.system.client("secretsmanager").put_secret_value(
        SecretId=archive.system.settings.db_secret_arn, SecretString=json.dumps(shared)
    )
    found = archive.invoke({"action": "check", "planId": archive.plan_id})
    # Then it names log_bin
    assert found["ok"] is False
    assert [p["setting"] for p in found["problems"]] == ["log_bin"]


@pytest.fixture
def remote(archive: Archive) -> str:
    """The plan also syncs to a remote storage (the stack's remote bucket: versioned, Object
    Lock on): its id."""
    created = archive.system.api.post(
        "/v1/storages",
        {
            "name": "offsite",
            "role": "remote",
            "bucket": REMOTE_BUCKET,
            "region": "us-east-1",
            "prefix": "dr/",
            "capacityBytes": 10**11,
        },
    )
    assert created.status == 201, created.body
    plan = archive.system.api.get(f"/v1/plans/{archive.plan_id}").body
    body = {k: plan[k] for k in ("name", "localStorageIds", "policy", "retention", "pointInTime")}
    body["remoteSync"] = True
    body["remoteStorageId"] = created.body["id"]
    body["retention"]["remote"] = {"mode": "permanent"}
    replaced = archive.system.api.put(f"/v1/plans/{archive.plan_id}", body)
    assert replaced.status == 200, replaced.body
    return str(created.body["id"])


def _remote_copies_are_whole(archive: Archive, remote: str) -> None:
    s3 = archive.system.client("s3")
    for segment in archive.segments():
        copy = segment.copy("remote")
        assert copy is not None, segment.copies
        assert (copy.storage_id, copy.bucket, copy.region) == (remote, REMOTE_BUCKET, "us-east-1")
        assert copy.key == f"dr/binlog/{archive.plan_id}/7/{segment.file}.zst"
        body = s3.get_object(Bucket=REMOTE_BUCKET, Key=copy.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == segment.sha256
        assert _decompressed(body) == archive.server_file(segment.file)


def test_a_syncing_plan_copies_each_segment_to_the_remote_storage(
    archive: Archive, remote: str
) -> None:
    # Given writes between two runs of a plan that syncs
    for minute in range(2):
        archive.write(30)
        assert archive.fire(f"2026-12-01T10:0{minute}:00Z")["status"] == "archived"
    # Then every segment has its local and its remote copy, both holding the server's file
    assert [s.file for s in archive.segments()] == ["mysql-bin.000001", "mysql-bin.000002"]
    assert all(s.copy("local") is not None for s in archive.segments())
    _remote_copies_are_whole(archive, remote)


def test_a_failed_remote_copy_is_recorded_and_made_by_the_next_run(
    archive: Archive, remote: str
) -> None:
    # Given the remote bucket is gone when a run copies
    s3 = archive.system.client("s3")
    s3.delete_bucket(Bucket=REMOTE_BUCKET)
    archive.write(30)
    first = archive.fire("2026-12-01T10:00:00Z")
    # Then the segment is archived locally and its remote copy recorded as failed, with why
    assert first["status"] == "archived"
    (segment,) = archive.segments()
    assert segment.copy("local") is not None and segment.copy("remote") is None
    (failed,) = [c for c in segment.copies if c.role == "remote"]
    assert failed.status == "failed" and failed.error and REMOTE_BUCKET in failed.error
    # When the bucket is back and the next run comes
    s3.create_bucket(Bucket=REMOTE_BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_bucket_versioning(Bucket=REMOTE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    archive.write(30)
    assert archive.fire("2026-12-01T10:01:00Z")["status"] == "archived"
    # Then both segments have their verified remote copy, and no failed one is left
    segments = archive.segments()
    assert [s.file for s in segments] == ["mysql-bin.000001", "mysql-bin.000002"]
    assert [c.status for s in segments for c in s.copies if c.role == "remote"] == [
        "available",
        "available",
    ]
    _remote_copies_are_whole(archive, remote)


@pytest.fixture
def shared_server() -> Iterator[System]:
    """The stack with the shared server (binary logging off) as the platform database, and a
    plan without point-in-time recovery."""
    with running_system(["app"], database=DatabaseAccess()) as system:
        yield system


def test_turning_it_on_for_the_shared_server_is_refused_naming_log_bin(
    shared_server: System,
) -> None:
    api, plan_id = shared_server.api, shared_server.plan_id
    before = api.get(f"/v1/plans/{plan_id}").body
    body = {k: before[k] for k in ("name", "localStorageIds", "policy", "retention")}
    pitr = {"enabled": True, "archiveIntervalMinutes": 5}
    # When point-in-time recovery is turned on for the plan, or a new plan is made with it
    for refused in (
        api.put(f"/v1/plans/{plan_id}", {**body, "pointInTime": pitr}),
        api.post("/v1/plans", {**body, "name": "another", "pointInTime": pitr}),
    ):
        # Then the archiver's look at the server refuses it, naming the field and the setting
        assert refused.status == 422, refused.body
        assert refused.error_fields == ["pointInTime.enabled"]
        assert "log_bin" in refused.body["error"]["message"]
    # And nothing was stored: the one plan, as it was, with no archive schedule
    assert [p["id"] for p in api.get("/v1/plans").body["items"]] == [plan_id]
    assert api.get(f"/v1/plans/{plan_id}").body == before
    scheduler = shared_server.client("scheduler")
    listed = scheduler.list_schedules(GroupName=shared_server.settings.schedule_group)
    assert [s["Name"] for s in listed["Schedules"] if s["Name"].startswith("pdb-archive-")] == []
