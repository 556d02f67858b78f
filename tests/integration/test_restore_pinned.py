"""A restore reads the very object version it validated: an object replaced (or a version
removed) between Validate and Restore is never applied. The workflow's steps are run one by one
through the restore handler, so the object can be swapped between them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_restore import checksums, definitions, drop, existing
from tests.support.databases import sql
from tests.support.schedule_times import on_time
from tests.support.system import RESTORE, System, running_system

pytestmark = pytest.mark.integration


@pytest.fixture
def system(platform_dbs: list[str]) -> Iterator[System]:
    """The system with its workflows started but not run: the test runs the steps."""
    with running_system(platform_dbs, run_workflows=False) as running:
        yield running


def _step(system: System, step: str, restore_id: str) -> Any:
    return system.invoke(RESTORE, {"step": step, "restoreId": restore_id})


def _start_unrun(system: System, backup_id: str, suffix: str) -> str:
    """A restore whose workflow is started but not run: the test runs its steps."""
    started = system.api.post(
        f"/v1/backups/{backup_id}/restores",
        {"target": {"mode": "new-database", "databaseSuffix": suffix}},
    )
    assert started.status == 202, started.body
    return str(started.body["id"])


def test_an_object_replaced_after_validation_is_never_applied(system: System) -> None:
    zstack = system.databases[0]
    # Given a backup, and a second one of changed data (a valid dump to swap in)
    original = system.backup(on_time(4))
    before = {db: (checksums(db), definitions(db)) for db in system.databases}
    sql("UPDATE ResourceVO SET resourceName = 'swapped' LIMIT 50", zstack)
    other = system.backup(on_time(3))
    assert checksums(zstack) != before[zstack][0]
    [copy] = original["copies"]
    [other_copy] = other["copies"]
    targets = {db: f"{db}_pinned" for db in system.databases}
    restore_id = _start_unrun(system, original["id"], "_pinned")
    try:
        # When Validate has checked the object
        assert _step(system, "validate", restore_id).function_error is None
        # and the object is then replaced by the other backup's bytes
        s3 = system.client("s3")
        swapped = s3.get_object(Bucket=other_copy["bucket"], Key=other_copy["key"])["Body"].read()
        s3.put_object(Bucket=copy["bucket"], Key=copy["key"], Body=swapped)
        # and the remaining steps run
        for step in ("safety-backup", "restore", "replay", "verify", "finalize"):
            outcome = _step(system, step, restore_id)
            assert outcome.function_error is None, (step, outcome.payload.decode())
        # Then the restore applied the version it validated: identical to the original
        done = system.api.get(f"/v1/restores/{restore_id}").body
        assert done["status"] == "succeeded", done
        for source, target in targets.items():
            assert (checksums(target), definitions(target)) == before[source]
        assert "swapped" not in sql(
            f"SELECT DISTINCT resourceName FROM `{targets[zstack]}`.ResourceVO"
        )
    finally:
        drop(*targets.values())


def test_a_validated_version_that_is_gone_fails_the_restore_with_nothing_applied(
    system: System,
) -> None:
    # Given a backup validated for a restore
    backup = system.backup(on_time(2))
    [copy] = backup["copies"]
    targets = [f"{db}_gone" for db in system.databases]
    restore_id = _start_unrun(system, backup["id"], "_gone")
    try:
        assert _step(system, "validate", restore_id).function_error is None
        # When the validated version is deleted and another put in its place
        s3 = system.client("s3")
        validated = system.api.get(f"/v1/restores/{restore_id}").body
        versions = s3.list_object_versions(Bucket=copy["bucket"], Prefix=copy["key"])
        [version] = [v for v in versions["Versions"] if v["Key"] == copy["key"]]
        s3.put_object(Bucket=copy["bucket"], Key=copy["key"], Body=b"-- not the backup\n")
        s3.delete_object(Bucket=copy["bucket"], Key=copy["key"], VersionId=version["VersionId"])
        # Then the restore step fails saying the version is gone, and nothing was applied
        outcome = _step(system, "restore", restore_id)
        assert outcome.function_error is not None
        error = json.loads(outcome.payload)
        assert error["errorType"] == "SourceMissing", error
        assert "NoSuchVersion" in error["errorMessage"]
        assert validated["status"] == "running"
        assert existing(targets) == ""
    finally:
        drop(*targets)


def test_a_copy_that_cannot_be_pinned_is_refused_at_validation(system: System) -> None:
    # Given a backup whose bucket stopped keeping versions, its object rewritten (same bytes)
    backup = system.backup(on_time(1))
    [copy] = backup["copies"]
    s3 = system.client("s3")
    body = s3.get_object(Bucket=copy["bucket"], Key=copy["key"])["Body"].read()
    s3.put_bucket_versioning(Bucket=copy["bucket"], VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=copy["bucket"], Key=copy["key"], Body=body)
    targets = [f"{db}_unpinned" for db in system.databases]
    restore_id = _start_unrun(system, backup["id"], "_unpinned")
    try:
        # When Validate checks it
        outcome = _step(system, "validate", restore_id)
        # Then it refuses, naming versioning, and nothing was created
        assert outcome.function_error is not None
        error = json.loads(outcome.payload)
        assert "keeps no object versions" in error["errorMessage"], error
        assert existing(targets) == ""
    finally:
        s3.put_bucket_versioning(
            Bucket=copy["bucket"], VersioningConfiguration={"Status": "Enabled"}
        )
        drop(*targets)
