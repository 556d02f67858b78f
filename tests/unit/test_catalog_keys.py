"""The keys the service owns (what the reconcile may delete and the rebuild reads) and the
record a manifest gives back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from platform_backup.domain.catalog import (
    KeyOwner,
    ManifestRefused,
    backup_from_manifest,
    backup_key,
    key_owner,
)
from platform_backup.domain.storage import Storage

PLAN = "0" * 31 + "a"
BACKUP = "f" * 32
STARTED = datetime(2026, 11, 25, 10, 5, 7, tzinfo=UTC)


def storage(prefix: str = "platform-db/") -> Storage:
    return Storage(
        id="s1",
        name="primary",
        role="local",
        bucket="pdb-primary",
        region="us-east-1",
        prefix=prefix,
        capacityBytes=10**9,
        createdAt=STARTED,
    )


def test_the_keys_the_executor_writes_are_the_plans() -> None:
    key = backup_key("platform-db/", PLAN, BACKUP, STARTED)
    assert key == f"platform-db/pdb/{PLAN}/2026/11/25/100507Z-{BACKUP}.sql.zst"
    assert key_owner("platform-db/", key) == KeyOwner(PLAN, BACKUP, False)
    manifest = key_owner("platform-db/", key + ".manifest.json")
    assert manifest == KeyOwner(PLAN, BACKUP, True)
    assert manifest.dump_key(key + ".manifest.json") == key


@pytest.mark.parametrize(
    "key",
    [
        f"other/pdb/{PLAN}/2026/11/25/100507Z-{BACKUP}.sql.zst",  # another storage's prefix
        f"platform-db/pdb/{PLAN}/notes.txt",
        f"platform-db/pdb/{PLAN}/2026/11/25/100507Z-{BACKUP}.sql.zst.part",
        f"platform-db/pdb/{PLAN}/2026/11/25/100507Z-{BACKUP.upper()}.sql.zst",
        f"platform-db/pdb/{PLAN}/x/2026/11/25/100507Z-{BACKUP}.sql.zst",
        f"platform-db/binlog/{PLAN}/1/mysql-bin.000001.zst",
    ],
)
def test_anything_else_is_nobodys(key: str) -> None:
    assert key_owner("platform-db/", key) is None


def manifest(**changes: Any) -> dict[str, Any]:
    return {
        "backupId": BACKUP,
        "planId": PLAN,
        "executionId": "e1",
        "trigger": "pre-restore",
        "startedAt": "2026-11-25T10:05:07+00:00",
        "dumpFinishedAt": "2026-11-25T10:05:19.500000+00:00",
        "databases": ["zstack"],
        "rawBytes": 1000,
        "compressedBytes": 200,
        "sha256": "a" * 64,
        "compression": {"algorithm": "zstd", "level": 3},
        "binlog": None,
        **changes,
    }


def test_a_manifest_gives_back_the_record() -> None:
    key = backup_key("platform-db/", PLAN, BACKUP, STARTED)
    owner = key_owner("platform-db/", key)
    assert owner is not None
    backup = backup_from_manifest(manifest(), owner, storage(), key, 200)
    assert (backup.id, backup.planId, backup.executionId, backup.trigger) == (
        BACKUP,
        PLAN,
        "e1",
        "pre-restore",
    )
    assert backup.durationSeconds == 12.5
    assert backup.createdAt == datetime(2026, 11, 25, 10, 5, 19, 500000, tzinfo=UTC)
    [copy] = backup.copies
    assert (copy.storageId, copy.key, copy.manifestKey, copy.bytes) == (
        "s1",
        key,
        key + ".manifest.json",
        200,
    )
    # A manifest from before it named its run: a scheduled backup of an unknown execution.
    old = manifest(executionId=None, trigger=None)
    assert backup_from_manifest(old, owner, storage(), key, 200).trigger == "schedule"


@pytest.mark.parametrize(
    ("changes", "size", "reason"),
    [
        ({"backupId": "e" * 32}, 200, "is not the one its key names"),
        ({"sha256": None}, 200, "no SHA-256"),
        ({}, 201, "the object holds 201"),
        ({"dumpFinishedAt": "yesterday"}, 200, "dumpFinishedAt is not a time"),
    ],
)
def test_a_manifest_that_cannot_describe_its_dump_is_refused(
    changes: dict[str, Any], size: int, reason: str
) -> None:
    key = backup_key("platform-db/", PLAN, BACKUP, STARTED)
    owner = key_owner("platform-db/", key)
    assert owner is not None
    with pytest.raises(ManifestRefused, match=reason):
        backup_from_manifest(manifest(**changes), owner, storage(), key, size)
