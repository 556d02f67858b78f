"""Retention against moto: real records, real (versioned) objects, real conditional writes."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.s3_objects import S3Objects
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.plan import Plan
from platform_backup.domain.storage import Storage
from platform_backup.errors import Conflict
from platform_backup.services.retention import RetentionService, RetentionSummary
from tests.support.moto_env import LOCAL_BUCKETS, REGION, REMOTE_BUCKET, MotoEnv

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SIZE = 100
PREFIX = "platform-db/"


@dataclass
class World:
    s3: Any
    plans: DynamoPlanRepository
    storages: DynamoStorageRepository
    backups: DynamoBackupRepository
    service: RetentionService


@pytest.fixture
def world(aws: MotoEnv) -> World:
    s3 = aws.client("s3")
    storages = DynamoStorageRepository()
    for storage_id, role, bucket in (
        ("primary", "local", LOCAL_BUCKETS[0]),
        ("fallback", "local", LOCAL_BUCKETS[1]),
        ("remote", "remote", REMOTE_BUCKET),
    ):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        storages.create(
            Storage(
                id=storage_id,
                name=storage_id,
                role=role,
                bucket=bucket,
                region=REGION,
                prefix=PREFIX,
                capacityBytes=10**9,
                createdAt=NOW,
            )
        )
    plans = DynamoPlanRepository()
    backups = DynamoBackupRepository()
    service = RetentionService(
        plans=plans,
        backups=backups,
        objects=S3Objects(),
        clock=lambda: NOW,
        safety_days=7,
        default_region=REGION,
    )
    return World(s3, plans, storages, backups, service)


def make_plan(world: World, local: dict[str, Any], remote: dict[str, Any] | None = None) -> Plan:
    plan = Plan.model_validate(
        {
            "id": uuid.uuid4().hex,
            "name": "platform-db",
            "localStorageIds": ["primary", "fallback"],
            "remoteSync": remote is not None,
            "remoteStorageId": "remote" if remote is not None else None,
            "policy": {"cycle": "daily", "executionTime": "00:00", "startTime": NOW.isoformat()},
            "retention": {"local": local, "remote": remote},
            "createdAt": NOW,
            "updatedAt": NOW,
        }
    )
    world.plans.create(plan)
    return plan


def add_backup(
    world: World,
    plan: Plan,
    age: timedelta,
    local: str | None = "primary",
    remote: str | None = None,
    objects: bool = True,
) -> Backup:
    """A backup as the executor leaves it: objects written (twice, so two versions), the record,
    and the storages' usage."""
    backup_id = uuid.uuid4().hex
    copies = []
    for storage_id, status in ((local, "available"), ("remote", remote)):
        if storage_id is None or status is None:
            continue
        bucket = {"primary": LOCAL_BUCKETS[0], "fallback": LOCAL_BUCKETS[1]}.get(
            storage_id, REMOTE_BUCKET
        )
        key = f"{PREFIX}pdb/{plan.id}/{backup_id}.sql.zst"
        copy = BackupCopy(
            storageId=storage_id,
            role="remote" if storage_id == "remote" else "local",
            bucket=bucket,
            region=REGION,
            key=key,
            manifestKey=f"{key}.manifest.json",
            status=status,
            bytes=SIZE,
        )
        copies.append(copy)
        if objects:
            for object_key in (copy.key, copy.manifestKey):
                for body in (b"first", b"second"):
                    world.s3.put_object(Bucket=bucket, Key=object_key, Body=body)
        if status == "available":
            world.storages.add_usage(storage_id, SIZE, 1)
    backup = Backup(
        id=backup_id,
        planId=plan.id,
        executionId=uuid.uuid4().hex,
        createdAt=NOW - age,
        copies=copies,
    )
    world.backups.create(backup)
    return backup


def versions(world: World, bucket: str, key: str) -> int:
    listing = world.s3.list_object_versions(Bucket=bucket, Prefix=key)
    entries = [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
    return sum(1 for e in entries if e["Key"] == key)


def all_objects(world: World) -> dict[str, list[tuple[str, str]]]:
    found = {}
    for bucket in (*LOCAL_BUCKETS, REMOTE_BUCKET):
        listing = world.s3.list_object_versions(Bucket=bucket)
        found[bucket] = sorted((v["Key"], v["VersionId"]) for v in listing.get("Versions", []))
    return found


def listed(world: World, plan: Plan) -> list[Backup]:
    return world.backups.page(plan.id, 1000, None).items


def days(n: float) -> timedelta:
    return timedelta(days=n)


def test_count_prunes_the_oldest_local_copies_with_every_version(world: World) -> None:
    # Given local count 2, four backups, and objects the plan did not write under the same prefix
    plan = make_plan(world, {"mode": "count", "value": 2})
    made = [add_backup(world, plan, days(i)) for i in range(4)]
    foreign = [made[3].copies[0].key + ".foreign", f"{PREFIX}pdb/{plan.id}/not-a-backup"]
    for key in foreign:
        world.s3.put_object(Bucket=LOCAL_BUCKETS[0], Key=key, Body=b"not ours")
    # When retention runs
    summary = world.service.apply(plan.id)
    # Then the two oldest backups are gone: objects with every version, records, usage
    assert sorted(summary.pruned) == sorted(f"{b.id}/local/primary" for b in made[2:])
    for backup in made[2:]:
        copy = backup.copies[0]
        assert versions(world, copy.bucket, copy.key) == 0
        assert versions(world, copy.bucket, copy.manifestKey) == 0
        assert world.backups.find(backup.id) is None
    # And everything else is intact
    for backup in made[:2]:
        copy = backup.copies[0]
        assert versions(world, copy.bucket, copy.key) == 2
        assert versions(world, copy.bucket, copy.manifestKey) == 2
    for key in foreign:
        assert versions(world, LOCAL_BUCKETS[0], key) == 1
    assert [b.id for b in listed(world, plan)] == [b.id for b in made[:2]]
    assert world.storages.get("primary").usedBytes == 2 * SIZE


def test_local_copy_pruned_while_remote_kept_stays_listed_with_the_remote_copy(
    world: World,
) -> None:
    # Given local count 1, remote permanent, three synced backups
    plan = make_plan(world, {"mode": "count", "value": 1}, {"mode": "permanent"})
    made = [add_backup(world, plan, days(i), remote="available") for i in range(3)]
    # When retention runs
    world.service.apply(plan.id)
    # Then all three are listed; the older two with only their remote copy, still in its bucket
    backups = listed(world, plan)
    assert [b.id for b in backups] == [b.id for b in made]
    assert [c.role for c in backups[0].copies] == ["local", "remote"]
    for backup in backups[1:]:
        assert [(c.role, c.status) for c in backup.copies] == [("remote", "available")]
        assert [p.role for p in backup.pruned] == ["local"]
        remote = backup.copies[0]
        assert versions(world, remote.bucket, remote.key) == 2
    assert world.storages.get("primary").usedBytes == SIZE
    assert world.storages.get("remote").usedBytes == 3 * SIZE


def test_remote_days_deletes_the_record_of_a_backup_left_without_copies(world: World) -> None:
    # Given local count 1 and remote days 30
    plan = make_plan(world, {"mode": "count", "value": 1}, {"mode": "days", "value": 30})
    newest = add_backup(world, plan, days(1), remote="available")
    remote_only = add_backup(world, plan, days(40), local=None, remote="available")
    both_old = add_backup(world, plan, days(50), remote="available")
    # When retention runs
    world.service.apply(plan.id)
    # Then the two old backups lost every copy, and their records
    assert [b.id for b in listed(world, plan)] == [newest.id]
    for backup in (remote_only, both_old):
        for copy in backup.copies:
            assert versions(world, copy.bucket, copy.key) == 0
    assert world.storages.get("remote").usedBytes == SIZE


def test_backups_of_a_deleted_plan_are_never_pruned(world: World) -> None:
    # Given a plan with more backups than its count, then deleted
    plan = make_plan(world, {"mode": "count", "value": 1})
    for i in range(3):
        add_backup(world, plan, days(i))
    world.plans.delete(plan)
    before = all_objects(world)
    # When retention runs for it
    summary = world.service.apply(plan.id)
    # Then nothing is pruned
    assert summary.pruned == []
    assert summary.skipped is not None
    assert len(listed(world, plan)) == 3
    assert all_objects(world) == before


def test_two_runs_at_once_prune_each_copy_once(world: World) -> None:
    # Given local count 1 and six backups
    plan = make_plan(world, {"mode": "count", "value": 1})
    made = [add_backup(world, plan, days(i)) for i in range(6)]
    barrier = threading.Barrier(2)
    results: list[RetentionSummary] = []

    def run() -> None:
        barrier.wait()
        results.append(world.service.apply(plan.id))

    # When two runs are released together
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then each copy was pruned by exactly one of them and its bytes returned once
    pruned = [name for summary in results for name in summary.pruned]
    assert sorted(pruned) == sorted(f"{b.id}/local/primary" for b in made[1:])
    assert [b.id for b in listed(world, plan)] == [made[0].id]
    assert world.storages.get("primary").usedBytes == SIZE


def test_running_again_changes_nothing(world: World) -> None:
    plan = make_plan(world, {"mode": "count", "value": 1}, {"mode": "count", "value": 2})
    for i in range(4):
        add_backup(world, plan, days(i), remote="available")
    world.service.apply(plan.id)
    records = listed(world, plan)
    objects = all_objects(world)
    usage = [world.storages.get(s).usedBytes for s in ("primary", "remote")]
    # When it runs again
    summary = world.service.apply(plan.id)
    # Then nothing changes
    assert summary.pruned == []
    assert listed(world, plan) == records
    assert all_objects(world) == objects
    assert [world.storages.get(s).usedBytes for s in ("primary", "remote")] == usage


def test_local_copy_waits_for_its_remote_copy_then_goes(world: World) -> None:
    # Given local count 1 and an old backup whose remote copy failed
    plan = make_plan(world, {"mode": "count", "value": 1}, {"mode": "permanent"})
    lagging = add_backup(world, plan, days(10), remote="failed")
    # When several newer backups are pruned around it
    for age in (3, 2, 1):
        add_backup(world, plan, days(age), remote="available")
        world.service.apply(plan.id)
    # Then its local copy is still there
    assert world.backups.get(lagging.id).local_copy() is not None
    # When the executor catches up its remote copy and the next backup's retention runs
    stored = world.backups.find_stored(lagging.id)
    assert stored is not None
    caught_up = stored.value.model_copy(deep=True)
    caught_up.copies[1].status = "available"
    assert world.backups.replace(stored, caught_up) is not None
    add_backup(world, plan, days(0.5), remote="available")
    summary = world.service.apply(plan.id)
    # Then its local copy goes, though it sits far below the newest backups
    assert f"{lagging.id}/local/primary" in summary.pruned
    assert [c.role for c in world.backups.get(lagging.id).copies] == ["remote"]


def test_a_backup_a_restore_reads_is_not_pruned_until_it_is_done(world: World) -> None:
    plan = make_plan(world, {"mode": "count", "value": 1})
    add_backup(world, plan, days(0))
    old = add_backup(world, plan, days(1))
    world.backups.hold_for_read(old.id, "restore-1", NOW + timedelta(hours=1))
    assert world.service.apply(plan.id).pruned == []
    world.backups.release_read(old.id, "restore-1")
    assert world.service.apply(plan.id).pruned == [f"{old.id}/local/primary"]


def test_items_read_do_not_grow_with_history(world: World) -> None:
    # Given the same policy and the same new backups over 100 and over 1000 backups of history
    def measure(history: int) -> tuple[int, int]:
        plan = make_plan(world, {"mode": "count", "value": 2}, {"mode": "permanent"})
        for i in range(history):  # older backups: local copies pruned long ago
            add_backup(world, plan, days(100 + i), local=None, remote="available", objects=False)
        for i in range(2):
            add_backup(world, plan, days(10 + i), remote="available")
        world.service.apply(plan.id)
        for i in range(3):
            add_backup(world, plan, days(1 + i), remote="available")
        # When retention runs after them
        summary = world.service.apply(plan.id)
        world.plans.delete(plan)
        return len(summary.pruned), summary.itemsRead

    # Then it prunes and reads the same number of items
    small, large = measure(100), measure(1000)
    assert small[0] == 3
    assert small == large


def test_delete_by_hand_refuses_the_newest_backup_without_force(world: World) -> None:
    plan = make_plan(world, {"mode": "count", "value": 5})
    newest = add_backup(world, plan, days(0))
    older = add_backup(world, plan, days(1))
    with pytest.raises(Conflict):
        world.service.delete_backup(newest.id)
    world.service.delete_backup(older.id)
    world.service.delete_backup(newest.id, force=True)
    assert listed(world, plan) == []
    assert versions(world, LOCAL_BUCKETS[0], newest.copies[0].key) == 0
    assert world.storages.get("primary").usedBytes == 0


def test_delete_by_hand_refuses_a_backup_a_restore_reads(world: World) -> None:
    plan = make_plan(world, {"mode": "count", "value": 5})
    add_backup(world, plan, days(0))
    older = add_backup(world, plan, days(1))
    world.backups.hold_for_read(older.id, "restore-1", NOW + timedelta(hours=1))
    with pytest.raises(Conflict):
        world.service.delete_backup(older.id, force=True)
    assert world.backups.find(older.id) is not None
