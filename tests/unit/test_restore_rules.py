"""Restore rules: target names, the in-place confirmation, the safety backup, which copies are
read, and the warnings about definitions naming an original database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.restore import (
    RestoreRequest,
    RestoreTarget,
    check_confirmation,
    copies_for,
    target_names,
    wants_safety_backup,
)
from platform_backup.errors import ValidationFailed
from platform_backup.services.restore_verify import expected_objects, foreign_references

NOW = datetime(2026, 11, 25, 10, 5, 7, tzinfo=UTC)


def _request(**fields: object) -> RestoreRequest:
    return RestoreRequest.model_validate(fields)


def test_new_databases_get_the_default_suffix_with_the_utc_time() -> None:
    names = target_names(["zstack", "zstack_rest"], RestoreTarget(mode="new-database"), NOW)
    assert names == {
        "zstack": "zstack_restored_20261125100507",
        "zstack_rest": "zstack_rest_restored_20261125100507",
    }


def test_a_suffix_making_a_name_too_long_is_refused() -> None:
    target = RestoreTarget(mode="new-database", databaseSuffix="_" + "x" * 39)
    with pytest.raises(ValidationFailed) as refused:
        target_names(["a" * 30], target, NOW)
    assert refused.value.details[0].field == "target.databaseSuffix"


def test_in_place_needs_the_plans_name() -> None:
    for confirm in (None, "", "other", "b1"):
        with pytest.raises(ValidationFailed) as refused:
            check_confirmation(_request(target={"mode": "in-place"}, confirm=confirm), "pdb", "b1")
        assert refused.value.details[0].field == "confirm"
    check_confirmation(_request(target={"mode": "in-place"}, confirm="pdb"), "pdb", "b1")
    check_confirmation(_request(target={"mode": "new-database"}), "pdb", "b1")


def test_in_place_of_a_backup_whose_plan_is_gone_needs_the_backups_id() -> None:
    for confirm in (None, "", "pdb"):
        with pytest.raises(ValidationFailed) as refused:
            check_confirmation(_request(target={"mode": "in-place"}, confirm=confirm), None, "b1")
        assert refused.value.details[0].field == "confirm"
        assert "the backup's id" in refused.value.message
    check_confirmation(_request(target={"mode": "in-place"}, confirm="b1"), None, "b1")


def test_in_place_over_the_platform_database_always_takes_the_safety_backup() -> None:
    assert wants_safety_backup(_request(target={"mode": "in-place"}))
    assert wants_safety_backup(_request(target={"mode": "in-place"}, safetyBackup=True))
    with pytest.raises(ValidationFailed) as refused:
        wants_safety_backup(_request(target={"mode": "in-place"}, safetyBackup=False))
    assert refused.value.details[0].field == "safetyBackup"
    assert not wants_safety_backup(_request(target={"mode": "new-database"}))


def test_in_place_onto_another_server_takes_no_safety_backup_and_says_so() -> None:
    with pytest.raises(ValidationFailed) as refused:
        wants_safety_backup(_request(target={"mode": "in-place"}, targetSecretArn="arn:x"))
    assert refused.value.details[0].field == "safetyBackup"
    other = _request(target={"mode": "in-place"}, targetSecretArn="arn:x", safetyBackup=False)
    assert not wants_safety_backup(other)


def _copy(role: str, status: str = "available") -> BackupCopy:
    return BackupCopy.model_validate(
        {
            "storageId": role,
            "role": role,
            "bucket": "b",
            "key": role,
            "manifestKey": "m",
            "status": status,
        }
    )


def test_auto_reads_the_local_copy_first_and_the_remote_once_local_is_gone() -> None:
    backup = Backup(
        id="b", planId="p", executionId="e", createdAt=NOW, copies=[_copy("remote"), _copy("local")]
    )
    assert [c.role for c in copies_for(backup, "auto")] == ["local", "remote"]
    assert [c.role for c in copies_for(backup, "remote")] == ["remote"]
    pruned = backup.model_copy(update={"copies": [_copy("local", "deleted"), _copy("remote")]})
    assert [c.role for c in copies_for(pruned, "auto")] == ["remote"]
    assert copies_for(pruned, "local") == []


def test_definitions_naming_an_original_database_are_warned_about() -> None:
    definitions = {
        "routine zstack_v.ADD_COLUMN": "SET @s = CONCAT('ALTER TABLE zstack.', tb)",
        "routine zstack_v.cleanup": "SELECT uuid FROM `zstack`.`UsedIpVO`",
        "view zstack_v.v": "select `zstack_v`.`t`.`a` from `zstack_v`.`t`",
        "trigger zstack_v.t": "UPDATE zstack_v.ResourceVO SET name = 'zstack_rest'",
    }
    warnings = foreign_references(definitions, {"zstack": "zstack_v"})
    assert [w.split(" names")[0] for w in warnings] == [
        "routine zstack_v.ADD_COLUMN",
        "routine zstack_v.cleanup",
    ]
    assert foreign_references(definitions, {"zstack": "zstack"}) == []


def test_the_manifest_objects_are_expected_under_their_new_names() -> None:
    manifest = {
        "tables": [{"database": "zstack", "name": "VmVO", "engine": "InnoDB"}],
        "routines": [{"database": "zstack", "name": "ADD_COLUMN"}],
    }
    expected, kinds = expected_objects(manifest, {"zstack": "zstack_v"})
    assert expected == [("table", "zstack_v.VmVO"), ("routine", "zstack_v.ADD_COLUMN")]
    assert kinds == {"table", "routine"}
