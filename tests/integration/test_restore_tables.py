"""Restoring chosen tables (``tables`` on a restore request) end to end, on the System of
test_restore.py: the real API and workflow, the real MariaDB and client, moto's S3 answering
the ranged reads."""

from __future__ import annotations

import json

import pytest

from tests.integration import test_restore
from tests.integration.test_restore import System, checksums, drop
from tests.support.databases import sql
from tests.support.schedule_times import on_time

pytestmark = pytest.mark.integration
system = test_restore.system  # the same System fixture


def made(database: str) -> dict[str, list[str]]:
    """Every object in ``database``, by kind."""
    return {
        "tables": sql(
            f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{database}'"
            " ORDER BY 1"
        ).split(),
        "routines": sql(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES"
            f" WHERE ROUTINE_SCHEMA='{database}'"
        ).split(),
        "events": sql(
            f"SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA='{database}'"
        ).split(),
        "triggers": sql(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
            f" WHERE TRIGGER_SCHEMA='{database}' ORDER BY 1"
        ).split(),
    }


def test_chosen_tables_are_restored_alone_reading_a_small_part_of_the_backup(
    system: System,
) -> None:
    zstack, sakila = system.databases
    backup = system.backup(on_time(2))
    chosen = [f"{zstack}.GlobalConfigVO", f"{zstack}.VolumeEO"]
    before = {name: checksums(zstack)[name.split(".", 1)[1]] for name in chosen}
    triggers = sql(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
        f" WHERE TRIGGER_SCHEMA='{zstack}' AND EVENT_OBJECT_TABLE='VolumeEO' ORDER BY 1"
    ).split()
    # When two tables of one database are restored into new databases
    started = system.api.post(
        f"/v1/backups/{backup['id']}/restores",
        {"target": {"mode": "new-database", "databaseSuffix": "_one"}, "tables": chosen},
    )
    assert started.status == 202, started.body
    target = f"{zstack}_one"
    try:
        done = system.wait(started.body["id"])
        # Then it succeeded with only that database, the tables identical to the source's
        assert done["status"] == "succeeded", done
        assert done["databases"] == {zstack: target}
        assert done["tables"] == chosen
        restored = checksums(target)
        assert {f"{zstack}.{t}": c for t, c in restored.items()} == before
        assert int(sql("SELECT COUNT(*) FROM GlobalConfigVO", target)) >= 400
        # and nothing else was made: no other table, view, routine or event, and of the
        # triggers only the chosen table's
        assert made(target) == {
            "tables": ["GlobalConfigVO", "VolumeEO"],
            "routines": [],
            "events": [],
            "triggers": triggers,
        }
        assert sql(f"SHOW DATABASES LIKE '{sakila}_one'") == ""
        # and it read under 1% of the backup's object, and says how much
        assert 0 < done["bytesRead"] < backup["compressedBytes"] / 100
        # and its progress counted, from the start, the chosen tables' SQL, not the whole dump
        total = started.body["progress"]["bytesTotal"]
        assert total == done["progress"]["bytesTotal"] == done["progress"]["bytesApplied"]
        assert 0 < total < backup["rawBytes"] / 10
        assert done["rowCounts"] == {
            f"{target}.GlobalConfigVO": int(sql("SELECT COUNT(*) FROM GlobalConfigVO", zstack)),
            f"{target}.VolumeEO": int(sql("SELECT COUNT(*) FROM VolumeEO", zstack)),
        }
    finally:
        drop(target)


def test_a_chosen_table_restored_in_place_is_the_backups_and_nothing_else_changes(
    system: System,
) -> None:
    zstack, sakila = system.databases
    backup = system.backup(on_time(3))
    before = checksums(zstack)
    # Given a bad DELETE on one table and rows changed in another since the backup
    sql(
        "DELETE FROM GlobalConfigVO WHERE category <> 'vm';"
        " UPDATE ResourceVO SET resourceName = 'changed since' LIMIT 10;",
        zstack,
    )
    changed = checksums(zstack)
    assert changed["GlobalConfigVO"] != before["GlobalConfigVO"]
    assert changed["ResourceVO"] != before["ResourceVO"]
    sakila_before = checksums(sakila)
    in_place = f"/v1/backups/{backup['id']}/in-place-restores"
    body = {"target": {"mode": "in-place"}, "tables": [f"{zstack}.GlobalConfigVO"]}
    # When it is asked unconfirmed, it is refused as any in-place restore
    refused = system.api.post(in_place, body)
    assert refused.status == 400, refused.body
    assert refused.error_fields == ["confirm"]
    # When the one table is restored in place, confirmed with the plan's name
    started = system.api.post(in_place, {**body, "confirm": "platform-db"})
    assert started.status == 202, started.body
    done = system.wait(started.body["id"])
    # Then that table is the backup's again, and every other table keeps its live state
    assert done["status"] == "succeeded", done
    assert done["databases"] == {zstack: zstack}
    after = checksums(zstack)
    assert after["GlobalConfigVO"] == before["GlobalConfigVO"]
    assert {t: c for t, c in after.items() if t != "GlobalConfigVO"} == {
        t: c for t, c in changed.items() if t != "GlobalConfigVO"
    }
    assert checksums(sakila) == sakila_before
    # and a safety backup of the live databases was taken first, and under 1% was read
    safety = system.api.get(f"/v1/backups/{done['safetyBackupId']}").body
    assert safety["trigger"] == "pre-restore"
    assert 0 < done["bytesRead"] < backup["compressedBytes"] / 100


def test_a_chosen_view_is_restored_with_the_table_it_reads_and_nothing_else(
    system: System,
) -> None:
    # Given a backup of the platform database, whose VmInstanceVO is a view of VmInstanceEO
    zstack = system.databases[0]
    backup = system.backup(on_time(2))
    before = checksums(zstack)["VmInstanceEO"]
    rows = sql("SELECT * FROM VmInstanceVO ORDER BY uuid", zstack)
    triggers = sql(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
        f" WHERE TRIGGER_SCHEMA='{zstack}' AND EVENT_OBJECT_TABLE='VmInstanceEO' ORDER BY 1"
    ).split()
    # When the view is restored into a new database
    started = system.api.post(
        f"/v1/backups/{backup['id']}/restores",
        {
            "target": {"mode": "new-database", "databaseSuffix": "_view"},
            "tables": [f"{zstack}.VmInstanceVO"],
        },
    )
    assert started.status == 202, started.body
    target = f"{zstack}_view"
    try:
        done = system.wait(started.body["id"])
        # Then it succeeded, making the view and the table it reads, identical to the source's,
        # and nothing else
        assert done["status"] == "succeeded", done
        assert done["databases"] == {zstack: target}
        assert made(target) == {
            "tables": ["VmInstanceEO", "VmInstanceVO"],
            "routines": [],
            "events": [],
            "triggers": triggers,
        }
        assert checksums(target)["VmInstanceEO"] == before
        assert sql("SELECT * FROM VmInstanceVO ORDER BY uuid", target) == rows
        assert sql("SHOW CREATE VIEW VmInstanceVO", target) == sql(
            "SHOW CREATE VIEW VmInstanceVO", zstack
        )
        # and the view reads the restored table, not the source's
        definition = sql(
            "SELECT VIEW_DEFINITION FROM information_schema.VIEWS"
            f" WHERE TABLE_SCHEMA='{target}' AND TABLE_NAME='VmInstanceVO'"
        )
        assert f"from `{target}`.`VmInstanceEO`" in definition
        assert f"`{zstack}`." not in definition
        # and it says what came with the view, and read under 1% of the backup
        assert any(f"{zstack}.VmInstanceEO" in w for w in done["warnings"]), done["warnings"]
        assert 0 < done["bytesRead"] < backup["compressedBytes"] / 100
    finally:
        drop(target)


def test_chosen_tables_the_backup_cannot_give_are_refused_naming_tables(system: System) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(1))
    path = f"/v1/backups/{backup['id']}/restores"
    new = {"mode": "new-database", "databaseSuffix": "_no"}
    # A table the backup does not have is refused, in place too
    for body in (
        {"target": new, "tables": [f"{zstack}.NoSuchTable"]},
        {"target": new, "tables": ["not-qualified"]},
        {
            "target": {"mode": "in-place"},
            "confirm": "platform-db",
            "tables": [f"{zstack}.NoSuchTable"],
        },
    ):
        in_place = body["target"] == {"mode": "in-place"}
        refused = system.api.post(
            path.replace("/restores", "/in-place-restores") if in_place else path, body
        )
        assert refused.status == 400, refused.body
        assert [f.split(".")[0] for f in refused.error_fields] == ["tables"], refused.body
    # A view (ZStack's VmInstanceVO) of a backup made before views' reads were recorded is
    # refused naming the table it reads
    [copy] = backup["copies"]
    s3 = system.client("s3")
    manifest = json.loads(
        s3.get_object(Bucket=copy["bucket"], Key=copy["manifestKey"])["Body"].read()
    )
    del manifest["frameIndex"]["viewReads"]
    s3.put_object(Bucket=copy["bucket"], Key=copy["manifestKey"], Body=json.dumps(manifest))
    refused = system.api.post(path, {"target": new, "tables": [f"{zstack}.VmInstanceVO"]})
    assert refused.status == 400, refused.body
    assert refused.error_fields == ["tables"]
    assert f"choose the tables they read ({zstack}.VmInstanceEO)" in json.dumps(refused.body)
    # And a backup made before table indexes (its manifest has none) is refused too
    del manifest["frameIndex"]
    s3.put_object(Bucket=copy["bucket"], Key=copy["manifestKey"], Body=json.dumps(manifest))
    refused = system.api.post(path, {"target": new, "tables": [f"{zstack}.VolumeEO"]})
    assert refused.status == 400, refused.body
    assert refused.error_fields == ["tables"]
    assert "no table index" in json.dumps(refused.body)
    # but restores whole as before
    started = system.api.post(path, {"target": new})
    try:
        done = system.wait(started.body["id"])
        assert done["status"] == "succeeded", done
        assert checksums(f"{zstack}_no") == checksums(zstack)
    finally:
        drop(*(f"{db}_no" for db in system.databases))
    assert system.api.get("/v1/restores").body["items"][0]["id"] == started.body["id"]
