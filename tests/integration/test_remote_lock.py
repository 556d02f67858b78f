"""Immutable off-site copies: a remote copy on a bucket with S3 Object Lock carries a retain-until
date from the plan's remote policy; neither a forced delete nor retention removes it before then.
The local stack's executor, API and retention functions, with moto's S3 enforcing the lock."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.adapters.tables import BackupItem
from platform_backup.domain.backup import Backup
from platform_backup.services.ports import Stored
from tests.integration import test_restore as base
from tests.support.schedule_times import on_time
from tests.support.system import System

pytestmark = pytest.mark.integration

# test_restore.py's fixture, registered here under its own name, "system".
system = base.system


@pytest.fixture
def locked(system: System) -> System:
    """The plan syncs to the Object-Lock bucket pdb-remote and keeps one remote copy."""
    remote = system.api.post(
        "/v1/storages",
        {
            "name": "offsite",
            "role": "remote",
            "bucket": "pdb-remote",
            "region": "us-east-1",
            "prefix": "dr/",
            "capacityBytes": 10**11,
        },
    )
    assert remote.status == 201, remote.body
    plan = system.api.get(f"/v1/plans/{system.plan_id}").body
    body = {k: plan[k] for k in ("name", "localStorageIds", "policy", "retention")}
    body["remoteSync"] = True
    body["remoteStorageId"] = remote.body["id"]
    body["retention"]["remote"] = {"mode": "count", "value": 1}
    assert system.api.put(f"/v1/plans/{system.plan_id}", body).status == 200
    return system


def _remote(backup: dict[str, Any]) -> dict[str, Any]:
    [remote] = [c for c in backup["copies"] if c["role"] == "remote"]
    return remote


def _versions(system: System, bucket: str, key: str) -> list[str]:
    listed = system.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]


def test_a_remote_copy_is_locked_for_the_policy_and_survives_a_forced_delete(
    locked: System,
) -> None:
    # Given a backup synced to the Object-Lock bucket (a plan keeping remote copies by count)
    before = datetime.now(UTC)
    backup = locked.backup(on_time(5))
    remote = _remote(backup)
    # Then the copy carries the lock S3 shows, governance mode, for the count's 30 days
    head = locked.client("s3").head_object(Bucket="pdb-remote", Key=remote["key"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert before + timedelta(days=30) <= until <= datetime.now(UTC) + timedelta(days=30)
    assert datetime.fromisoformat(remote["lockedUntil"]) == until
    manifest = locked.client("s3").head_object(Bucket="pdb-remote", Key=remote["manifestKey"])
    assert manifest["ObjectLockRetainUntilDate"] == until
    # When it is deleted by force through the API
    refused = locked.api.delete(f"/v1/backups/{backup['id']}?force=true")
    # Then 409 naming the date, and every copy is still there, recorded and in S3
    assert refused.status == 409, refused.body
    assert until.isoformat() in refused.body["error"]["message"]
    assert locked.api.get(f"/v1/backups/{backup['id']}").body["copies"] == backup["copies"]
    for copy in backup["copies"]:
        for key in (copy["key"], copy["manifestKey"]):
            assert _versions(locked, copy["bucket"], key), key


def _retention(system: System) -> dict[str, Any]:
    """The retention function's run for the plan (as after a plan's policy changed): its
    summary."""
    outcome = system.invoke("pdb-retention", {"planId": system.plan_id})
    assert outcome.function_error is None, outcome.payload.decode()
    return dict(json.loads(outcome.payload))


def _record_lock_until(backup_id: str, until: datetime) -> None:
    """The remote copy's recorded lock date set to ``until`` (as an administrator would, beside
    shortening S3's lock with the governance bypass)."""
    item = BackupItem.get(backup_id, consistent_read=True)
    current = Backup.model_validate(item.body)
    copies = [
        c.model_copy(update={"lockedUntil": until}) if c.role == "remote" else c
        for c in current.copies
    ]
    new = current.model_copy(update={"copies": copies})
    assert DynamoBackupRepository().replace(Stored(current, item.body), new) is not None


def test_retention_keeps_a_locked_remote_copy_until_its_date(locked: System) -> None:
    # Given two backups synced, the plan keeping one remote copy
    older = locked.backup(on_time(4))
    locked.backup(on_time(3))
    remote = _remote(older)
    until = datetime.fromisoformat(remote["lockedUntil"])
    # When retention runs before the older copy's date
    summary = _retention(locked)
    # Then it keeps the copy, saying why
    assert summary["pruned"] == []
    [why] = [p for p in summary["protected"] if "/remote/" in p]
    assert f"Object Lock keeps the copy until {until.isoformat()}" in why
    assert _versions(locked, "pdb-remote", remote["key"])
    assert _remote(locked.api.get(f"/v1/backups/{older['id']}").body) == remote
    # When its date has passed (S3's lock and the recorded date shortened by an administrator,
    # S3's with the governance bypass)
    s3 = locked.client("s3")
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    for key in (remote["key"], remote["manifestKey"]):
        s3.put_object_retention(
            Bucket="pdb-remote",
            Key=key,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon},
            BypassGovernanceRetention=True,
        )
    _record_lock_until(older["id"], soon)
    while datetime.now(UTC) <= soon + timedelta(seconds=1):
        time.sleep(0.2)
    summary = _retention(locked)
    # Then retention prunes it, objects and versions included
    assert summary["pruned"] == [f"{older['id']}/remote/{remote['storageId']}"]
    assert _versions(locked, "pdb-remote", remote["key"]) == []
    assert _versions(locked, "pdb-remote", remote["manifestKey"]) == []


def test_a_backup_with_no_lock_is_deleted_through_the_retention_function(system: System) -> None:
    # Given two backups, none with a locked copy
    older = system.backup(on_time(2))
    newest = system.backup(on_time(1))
    [copy] = older["copies"]
    # When the older is deleted through the API, and the newest without force
    deleted = system.api.delete(f"/v1/backups/{older['id']}")
    refused = system.api.delete(f"/v1/backups/{newest['id']}")
    # Then the older is gone with every version of its objects (the retention function's role
    # deleted them), and the newest is refused as the API said before
    assert deleted.status == 204, deleted.body
    assert system.api.get(f"/v1/backups/{older['id']}").status == 404
    assert _versions(system, copy["bucket"], copy["key"]) == []
    assert refused.status == 409, refused.body
    assert "force=true" in refused.body["error"]["message"]
    assert system.api.delete("/v1/backups/no-such-backup").status == 404
