"""Retention of the archived binary log, through the real retention handler on moto: after a
backup succeeds, the segments no kept full backup needs go (only the keys they record, every
version), the newest needed one and all after it stay, and nothing goes while no kept backup
opens a window."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.domain.plan import Plan
from platform_backup.domain.recovery import BREAK_PURGED, HistoryBreak, Segment, SegmentCopy
from platform_backup.domain.storage import Storage
from tests.support.archive_records import (
    record_backup,
    record_break,
    record_segments,
    segment,
    segment_key,
)
from tests.support.moto_env import LOCAL_BUCKETS, REGION, REMOTE_BUCKET, MotoEnv

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


@pytest.fixture
def s3(aws: MotoEnv) -> Any:
    client = aws.client("s3")
    for bucket in (*LOCAL_BUCKETS, REMOTE_BUCKET):
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for storage_id, role, bucket in (
        ("primary", "local", LOCAL_BUCKETS[0]),
        ("remote", "remote", REMOTE_BUCKET),
    ):
        DynamoStorageRepository().create(
            Storage(
                id=storage_id,
                name=storage_id,
                role=role,
                bucket=bucket,
                region=REGION,
                capacityBytes=10**9,
                createdAt=BASE,
            )
        )
    return client


def make_plan(keep: int) -> Plan:
    plan = Plan.model_validate(
        {
            "id": uuid.uuid4().hex,
            "name": "platform-db",
            "localStorageIds": ["primary"],
            "policy": {"cycle": "hourly", "startTime": BASE.isoformat()},
            "retention": {"local": {"mode": "count", "value": keep}},
            "pointInTime": {"enabled": True, "archiveIntervalMinutes": 5},
            "createdAt": BASE,
            "updatedAt": BASE,
        }
    )
    DynamoPlanRepository().create(plan)
    return plan


def archive(s3: Any, plan_id: str, count: int) -> list[Segment]:
    """``count`` ten-minute files, each stored twice (two versions) locally and remotely (the
    plan synced then)."""
    segments = []
    for index in range(1, count + 1):
        key = segment_key(plan_id, f"mysql-bin.{index:06d}")
        copies = (
            SegmentCopy("primary", "local", LOCAL_BUCKETS[0], REGION, key),
            SegmentCopy("remote", "remote", REMOTE_BUCKET, REGION, key),
        )
        for copy in copies:
            for body in (b"first", b"second"):
                s3.put_object(Bucket=copy.bucket, Key=copy.key, Body=body)
        segments.append(
            segment(plan_id, index, index, at(10 * (index - 1)), at(10 * index), copies=copies)
        )
    record_segments(segments)
    return segments


def keys(s3: Any, bucket: str) -> list[str]:
    listing = s3.list_object_versions(Bucket=bucket)
    return sorted({v["Key"] for v in listing.get("Versions", [])})


def run_retention(aws: MotoEnv, plan_id: str) -> dict[str, Any]:
    event = json.loads(
        json.dumps({"detail-type": "Backup Succeeded", "detail": {"planId": plan_id}})
    )
    outcome = aws.invoker.invoke("pdb-retention", event)
    assert outcome.function_error is None, outcome.payload
    return dict(json.loads(outcome.payload))


def test_segments_before_the_oldest_kept_backup_go_with_every_version(
    aws: MotoEnv, s3: Any
) -> None:
    # Given five archived files, a backup in files 1, 3 and 4 and a plan keeping two backups
    plan = make_plan(keep=2)
    archive(s3, plan.id, 5)
    record_backup(plan.id, "b1", 1, at(1))
    record_backup(plan.id, "b2", 3, at(21))
    record_backup(plan.id, "b3", 4, at(31))
    # And a break older than any file kept, and objects the segments do not record under the
    # same prefix (an upload's leftover, another plan's file)
    record_break(HistoryBreak(plan.id, at(-5), BREAK_PURGED, "mysql-bin.000000 was purged"))
    stray = segment_key(plan.id, "mysql-bin.000001") + ".part"
    other = segment_key("another-plan", "mysql-bin.000001")
    for key in (stray, other):
        s3.put_object(Bucket=LOCAL_BUCKETS[0], Key=key, Body=b"not ours to delete")

    # When retention runs after a backup
    summary = run_retention(aws, plan.id)

    # Then the oldest backup is pruned, and with it the files only it needed, both copies,
    # every version; file 3 (where the oldest kept backup starts) and after stay
    assert summary["segmentsPruned"] == ["1:mysql-bin.000001", "2:mysql-bin.000002"]
    kept = [segment_key(plan.id, f"mysql-bin.{i:06d}") for i in (3, 4, 5)]
    assert keys(s3, REMOTE_BUCKET) == sorted(kept)
    assert keys(s3, LOCAL_BUCKETS[0]) == sorted([*kept, stray, other])
    assert [s.sequence for s in DynamoArchiveRepository().segments(plan.id)] == [3, 4, 5]
    # And the break before them is gone, as it ends no window any more
    assert summary["breaksRemoved"] == 1
    assert DynamoArchiveRepository().breaks(plan.id) == []


def test_pruned_segments_give_their_room_back_to_their_storages(aws: MotoEnv, s3: Any) -> None:
    # Given storages holding five archived files (as the archiver counted them)
    plan = make_plan(keep=1)
    segments = archive(s3, plan.id, 5)
    storages = DynamoStorageRepository()
    used = sum(s.compressed_bytes for s in segments)
    for storage_id, role, bucket in (
        ("primary", "local", LOCAL_BUCKETS[0]),
        ("remote", "remote", REMOTE_BUCKET),
    ):
        if storages.find(storage_id) is None:
            storages.create(
                Storage(
                    id=storage_id,
                    name=storage_id,
                    role=role,
                    bucket=bucket,
                    region=REGION,
                    capacityBytes=10**9,
                    createdAt=BASE,
                )
            )
        storages.add_usage(storage_id, used - storages.get(storage_id).usedBytes, 0)
    record_backup(plan.id, "b1", 4, at(31))

    # When retention prunes the files before the kept backup's
    summary = run_retention(aws, plan.id)

    # Then each storage's usage drops by exactly the pruned files' bytes
    pruned = sum(s.compressed_bytes for s in segments[:3])
    assert len(summary["segmentsPruned"]) == 3
    left = sum(s.compressed_bytes for s in segments) - pruned
    assert storages.get("primary").usedBytes == left
    assert storages.get("remote").usedBytes == left


def test_nothing_is_pruned_while_no_kept_backup_opens_a_window(aws: MotoEnv, s3: Any) -> None:
    # Given archived files, but the only backups were taken before archiving began (no position
    # in any archived file)
    plan = make_plan(keep=2)
    archive(s3, plan.id, 3)
    record_backup(plan.id, "b1", 9, at(25))

    # When retention runs
    summary = run_retention(aws, plan.id)

    # Then every segment and object stays
    assert summary["segmentsPruned"] == []
    assert len(DynamoArchiveRepository().segments(plan.id)) == 3
    assert len(keys(s3, REMOTE_BUCKET)) == 3


def test_a_deleted_plans_archive_stays_as_its_backups_do(aws: MotoEnv, s3: Any) -> None:
    # Given a plan with archived files and backups, then deleted
    plan = make_plan(keep=1)
    archive(s3, plan.id, 3)
    record_backup(plan.id, "b1", 1, at(1))
    record_backup(plan.id, "b2", 3, at(21))
    DynamoPlanRepository().delete(plan)

    # When retention runs for it
    summary = run_retention(aws, plan.id)

    # Then nothing is pruned by policy: backups and segments stay restorable
    assert summary["skipped"] and summary["segmentsPruned"] == []
    assert len(DynamoArchiveRepository().segments(plan.id)) == 3
