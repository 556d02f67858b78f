"""``make bench``, retention: one run's wall time and items read over 100 and over 10,000 backups
of history, pruning the same copies. Items read are the service's own count (DynamoDB's
ScannedCount plus the reads by id): moto's consumed capacity measures nothing.

The real RetentionService (as the composition root builds it) against moto in-process, on the
tables made from the pynamodb models. As in tests/unit/test_retention_service.py, the steady
state is measured: the history is seeded, a first run reads it once to create the plan's cursor,
new backups arrive, and the next run is the one measured.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from devstack.local_settings import LOCAL_SETTINGS
from platform_backup.adapters.backup_repo import DynamoBackupRepository, _backup_item
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.s3_objects import S3Objects
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.adapters.tables import TABLES, BackupItem, bind_tables
from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.plan import Plan
from platform_backup.domain.storage import Storage
from platform_backup.services.retention import RetentionService, RetentionSummary
from platform_backup.settings import Settings, load

HISTORIES = (100, 10_000)
REMOTE_BUCKET = "pdb-bench-remote"
PREFIX = "platform-db/"
SIZE = 1 << 20
KEEP = 2  # the plan's local count
# Backups with a local copy when the cursor is made, and backups made after it: the measured run
# keeps the newest KEEP of them and prunes the rest.
BEFORE_CURSOR, AFTER_CURSOR = 2, 3
PRUNED = BEFORE_CURSOR + AFTER_CURSOR - KEEP


@dataclass(frozen=True)
class RetentionRun:
    history: int
    seconds: float
    moto_seconds: float
    items_read: int
    first_seconds: float
    first_items_read: int


class Container:
    """The benchmark's own settings bound to the tables, and the retention use case on them."""

    def __init__(self, settings: Settings) -> None:
        bind_tables(settings)
        self.settings = settings
        self.storage_repo = DynamoStorageRepository()
        self.plan_repo = DynamoPlanRepository()
        self.retention = RetentionService(
            plans=self.plan_repo,
            backups=DynamoBackupRepository(),
            objects=S3Objects(),
            clock=lambda: datetime.now(UTC),
            safety_days=settings.safety_backup_retention_days,
            default_region=settings.region,
        )


@dataclass
class _World:
    container: Container
    plan: Plan
    s3: Any
    buckets: dict[str, str]


@contextmanager
def _embedded_aws() -> Iterator[None]:
    """moto in this process. An endpoint another section set (its moto server, stopped by now)
    would take the calls past the mock, so it is hidden for the duration."""
    with mock.patch.dict(os.environ):
        for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
            del os.environ[name]
        with mock_aws():
            yield


def _world(settings: Settings) -> _World:
    container = Container(settings)  # binds the models to the settings' table names
    for model, _field in TABLES.values():
        model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    s3 = boto3.client("s3", region_name=settings.region)
    buckets = {
        "primary": settings.primary_bucket,
        "fallback": settings.fallback_bucket,
        "remote": REMOTE_BUCKET,
    }
    now = datetime.now(UTC)
    for storage_id, bucket in buckets.items():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        container.storage_repo.create(
            Storage(
                id=storage_id,
                name=storage_id,
                role="remote" if storage_id == "remote" else "local",
                bucket=bucket,
                region=settings.region,
                prefix=PREFIX,
                capacityBytes=1 << 50,
                createdAt=now,
            )
        )
    plan = Plan.model_validate(
        {
            "id": uuid.uuid4().hex,
            "name": "platform-db",
            "localStorageIds": ["primary", "fallback"],
            "remoteSync": True,
            "remoteStorageId": "remote",
            "policy": {"cycle": "daily", "executionTime": "00:00", "startTime": now.isoformat()},
            "retention": {
                "local": {"mode": "count", "value": KEEP},
                "remote": {"mode": "permanent"},
            },
            "createdAt": now,
            "updatedAt": now,
        }
    )
    container.plan_repo.create(plan)
    return _World(container, plan, s3, buckets)


def _backup(world: _World, age: timedelta, local: bool) -> Backup:
    """A backup as the executor leaves it; without ``local``, one whose local copy is long gone."""
    backup_id = uuid.uuid4().hex
    key = f"{PREFIX}pdb/{world.plan.id}/{backup_id}.sql.zst"
    copies = [
        BackupCopy(
            storageId=storage_id,
            role="remote" if storage_id == "remote" else "local",
            bucket=world.buckets[storage_id],
            region=world.container.settings.region,
            key=key,
            manifestKey=f"{key}.manifest.json",
            bytes=SIZE,
        )
        for storage_id in (("primary", "remote") if local else ("remote",))
    ]
    return Backup(
        id=backup_id,
        planId=world.plan.id,
        executionId=uuid.uuid4().hex,
        createdAt=datetime.now(UTC) - age,
        copies=copies,
    )


def _write_local_objects(world: _World, backups: list[Backup]) -> None:
    """Only the local copies the measured run prunes get objects: the rest are never read."""
    for backup in backups:
        copy = backup.copies[0]
        for key in (copy.key, copy.manifestKey):
            world.s3.put_object(Bucket=copy.bucket, Key=key, Body=b"dump")


@dataclass
class _Timed:
    seconds: float = 0.0
    moto_seconds: float = 0.0


@contextmanager
def _timed() -> Iterator[_Timed]:
    """Wall time, and the part of it moto spends answering: its index queries walk the whole
    table, which DynamoDB's do not, so that part grows with the history here and only here."""
    timed = _Timed()
    answer = BotocoreStubber.process_request

    def counted(self: BotocoreStubber, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return answer(self, request)
        finally:
            timed.moto_seconds += time.perf_counter() - started

    started = time.perf_counter()
    with mock.patch.object(BotocoreStubber, "process_request", counted):
        yield timed
    timed.seconds = time.perf_counter() - started


def _apply(world: _World) -> tuple[_Timed, RetentionSummary]:
    with _timed() as timed:
        summary = world.container.retention.apply(world.plan.id)
    return timed, summary


def measure(history: int) -> RetentionRun:
    with _embedded_aws():
        world = _world(load(Settings, LOCAL_SETTINGS))
        old = [_backup(world, timedelta(days=100 + i), local=False) for i in range(history)]
        recent = [_backup(world, timedelta(days=10 + i), local=True) for i in range(BEFORE_CURSOR)]
        with BackupItem.batch_write() as batch:
            for backup in (*old, *recent):
                batch.save(_backup_item(backup))
        _write_local_objects(world, recent)
        storages = world.container.storage_repo
        storages.add_usage("primary", SIZE * BEFORE_CURSOR, BEFORE_CURSOR)
        storages.add_usage("remote", SIZE * len(old + recent), len(old + recent))

        first_time, first = _apply(world)
        if first.pruned:
            raise SystemExit(f"retention: the cursor's run pruned {first.pruned}")
        new = [_backup(world, timedelta(days=1 + i), local=True) for i in range(AFTER_CURSOR)]
        for backup in new:
            DynamoBackupRepository().create(backup)
        _write_local_objects(world, new)
        storages.add_usage("primary", SIZE * AFTER_CURSOR, AFTER_CURSOR)
        storages.add_usage("remote", SIZE * AFTER_CURSOR, AFTER_CURSOR)

        timed, summary = _apply(world)
    if len(summary.pruned) != PRUNED:
        raise SystemExit(f"retention: expected {PRUNED} copies pruned, got {summary.pruned}")
    return RetentionRun(
        history=history,
        seconds=timed.seconds,
        moto_seconds=timed.moto_seconds,
        items_read=summary.itemsRead,
        first_seconds=first_time.seconds,
        first_items_read=first.itemsRead,
    )


def report() -> None:
    print(
        f"\nretention (RetentionService on moto in-process; local count {KEEP}, remote permanent;"
        f" {PRUNED} local copies pruned per run)",
        flush=True,
    )
    # Discarded: the process's first run pays the clients' creation and botocore's model loading,
    # a warm function's do not.
    measure(HISTORIES[0])
    runs = [measure(history) for history in HISTORIES]
    for run in runs:
        print(
            f"history {run.history:6d} backups: run {run.seconds:6.3f} s"
            f" (moto {run.moto_seconds:6.3f} s)   items read {run.items_read:5d}"
            f"   (first run, making the cursor: {run.first_seconds:.2f} s,"
            f" {run.first_items_read} items)"
        )
    small, large = runs[0], runs[-1]
    growth = large.items_read / small.items_read
    verdict = "met" if large.items_read <= small.items_read else "MISSED"
    label = f"{large.history} / {small.history} items read"
    print(f"{label:24s} {growth:5.2f}x  (target: items read must not grow with history: {verdict})")
    print(
        "(the wall time includes moto's answers, whose index queries walk the whole table where"
        " DynamoDB's read only the range: the target is on items read)"
    )
