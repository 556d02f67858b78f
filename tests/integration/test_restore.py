"""Restores end to end on the local stack: the real API and restore functions in their worker
processes, as their template roles, the real MariaDB and client tools, and the embedded AWS's
Step Functions engine running the real workflow definition (statemachines/restore.asl.json)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_backup.adapters.lease import DynamoLeases
from platform_backup.domain.progress import TIME_MARGIN_SECONDS
from platform_backup.services.lease_keeper import LEASE_TTL_SECONDS
from platform_backup.settings import RESTORE_APPLY_RATE
from tests.support.databases import sql
from tests.support.schedule_times import on_time
from tests.support.system import EXECUTOR, RESTORE, System, fails_once, running_system

pytestmark = pytest.mark.integration


@pytest.fixture
def system(platform_dbs: list[str]) -> Iterator[System]:
    with running_system(platform_dbs) as running:
        yield running


def checksums(database: str) -> dict[str, str]:
    tables = sql(
        "SELECT TABLE_NAME FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE'"
    ).split()
    if not tables:
        return {}
    rows = sql(f"CHECKSUM TABLE {', '.join(f'`{database}`.`{t}`' for t in tables)}")
    return {line.split("\t")[0].split(".", 1)[1]: line.split("\t")[1] for line in rows.splitlines()}


def definitions(database: str) -> dict[str, str]:
    """SHOW CREATE of every view, routine and trigger, with the database's name taken out."""
    found: dict[str, str] = {}
    queries = {
        "VIEW": f"SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA='{database}'",
        "PROCEDURE": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES"
        f" WHERE ROUTINE_SCHEMA='{database}' AND ROUTINE_TYPE='PROCEDURE'",
        "FUNCTION": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES"
        f" WHERE ROUTINE_SCHEMA='{database}' AND ROUTINE_TYPE='FUNCTION'",
        "TRIGGER": "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
        f" WHERE TRIGGER_SCHEMA='{database}'",
    }
    for kind, query in queries.items():
        for name in sql(query).split():
            shown = sql(f"SHOW CREATE {kind} `{database}`.`{name}`").rstrip("\n")
            if kind == "TRIGGER":
                shown = shown.rsplit("\t", 1)[0]  # its last column is when it was created
            found[f"{kind} {name}"] = shown.replace(database, "<db>")
    return found


def existing(names: list[str]) -> str:
    """Which of these databases exist on the server (empty: none)."""
    listed = ", ".join(f"'{n}'" for n in names)
    return sql(
        f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({listed})"
    )


def drop(*databases: str) -> None:
    sql("".join(f"DROP DATABASE IF EXISTS `{name}`;" for name in databases))


def test_a_backup_restored_into_new_databases_is_identical(system: System) -> None:
    # Given a backup of the platform databases
    backup = system.backup(on_time(20))
    before = {db: (checksums(db), definitions(db)) for db in system.databases}
    # When it is restored into new databases through the API and the workflow
    started = system.api.post(
        f"/v1/backups/{backup['id']}/restores",
        {"target": {"mode": "new-database", "databaseSuffix": "_verify"}},
    )
    assert started.status == 202, started.body
    restored = {db: f"{db}_verify" for db in system.databases}
    try:
        done = system.wait(started.body["id"])
        # Then it succeeded, verified, with the row counts of every table
        assert done["status"] == "succeeded", done
        assert done["databases"] == restored
        assert done["progress"]["percent"] == 100.0
        assert done["progress"]["bytesApplied"] == backup["rawBytes"]
        assert system.workflow_status(done["id"]) == "SUCCEEDED"
        for source, target in restored.items():
            # every table's checksum and every view, routine and trigger are the same
            assert checksums(target) == before[source][0]
            assert definitions(target) == before[source][1]
            assert any(int(c) > 0 for c in checksums(target).values() if c != "NULL")
            counted = {k for k in done["rowCounts"] if k.startswith(f"{target}.")}
            assert len(counted) == len(before[source][0])
            # and the sources are unchanged
            assert (checksums(source), definitions(source)) == before[source]
        # And the plan is free again: the lease was released
        assert DynamoLeases().holder(system.plan_id) is None
    finally:
        drop(*restored.values())


def test_in_place_brings_the_databases_back_and_keeps_a_safety_backup(system: System) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(19))
    before = (checksums(zstack), definitions(zstack))
    # Given rows changed and deleted, a table and a routine added after the backup
    sql(
        "UPDATE ResourceVO SET resourceName = 'changed' LIMIT 10; DELETE FROM GlobalConfigVO;"
        " CREATE TABLE AddedLater (id INT PRIMARY KEY);"
        " CREATE PROCEDURE added_later() SELECT 1;",
        zstack,
    )
    changed = checksums(zstack)
    in_place = f"/v1/backups/{backup['id']}/in-place-restores"
    # When the restore is asked without the confirmation, or with the wrong one
    for body in ({}, {"confirm": "another-plan"}):
        refused = system.api.post(in_place, {"target": {"mode": "in-place"}, **body})
        # Then it is refused and nothing is touched
        assert refused.status == 400, refused.body
        assert refused.error_fields == ["confirm"]
    # When it is asked without the safety backup
    refused = system.api.post(in_place, {"confirm": "platform-db", "safetyBackup": False})
    # Then it is refused: in place over the platform database always takes one
    assert refused.status == 400, refused.body
    assert refused.error_fields == ["safetyBackup"]
    # When it is asked in the old form, on the route of restores into new databases
    refused = system.api.post(
        f"/v1/backups/{backup['id']}/restores",
        {"target": {"mode": "in-place"}, "confirm": "platform-db"},
    )
    # Then it is refused naming the in-place route
    assert refused.status == 400, refused.body
    assert refused.error_fields == ["target.mode"]
    assert in_place in refused.body["error"]["message"]
    assert checksums(zstack) == changed
    assert system.api.get("/v1/restores").body["items"] == []
    # When it is confirmed with the plan's name (target.mode may be left out)
    started = system.api.post(in_place, {"confirm": "platform-db"})
    assert started.status == 202, started.body
    done = system.wait(started.body["id"])
    # Then the rows are back, the added table and routine are gone
    assert done["status"] == "succeeded", done
    assert done["requestedBy"]
    assert (checksums(zstack), definitions(zstack)) == before
    # And a pre-restore safety backup of the changed state exists
    safety = system.api.get(f"/v1/backups/{done['safetyBackupId']}").body
    assert safety["trigger"] == "pre-restore"
    executions = system.api.get(f"/v1/executions?planId={system.plan_id}").body["items"]
    assert executions[0]["trigger"] == "pre-restore"


def test_a_backup_whose_plan_is_gone_is_restored_in_place_confirmed_by_its_id(
    system: System,
) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(7))
    before = (checksums(zstack), definitions(zstack))
    # Given the plan deleted (its backups stay) and the live database changed since
    assert system.api.delete(f"/v1/plans/{system.plan_id}").status == 204
    sql("UPDATE ResourceVO SET resourceName = 'changed' LIMIT 10", zstack)
    changed = checksums(zstack)
    in_place = f"/v1/backups/{backup['id']}/in-place-restores"
    # When it is confirmed with the gone plan's name
    refused = system.api.post(in_place, {"confirm": "platform-db"})
    # Then it is refused, naming what confirms it
    assert refused.status == 400, refused.body
    assert refused.error_fields == ["confirm"]
    assert "the backup's id" in refused.body["error"]["message"]
    assert checksums(zstack) == changed
    # When it is confirmed with the backup's id
    started = system.api.post(in_place, {"confirm": backup["id"]})
    assert started.status == 202, started.body
    done = system.wait(started.body["id"])
    # Then the databases are back as backed up
    assert done["status"] == "succeeded", done
    assert (checksums(zstack), definitions(zstack)) == before
    # And the changed state was kept first, in the backup's own storage
    safety = system.api.get(f"/v1/backups/{done['safetyBackupId']}").body
    assert safety["trigger"] == "pre-restore"
    assert [c["storageId"] for c in safety["copies"]] == [c["storageId"] for c in backup["copies"]]


def test_a_corrupted_dump_fails_at_validate_and_touches_nothing(system: System) -> None:
    # Given a backup whose object has one byte flipped
    backup = system.backup(on_time(18))
    [copy] = backup["copies"]
    s3 = system.client("s3")
    body = bytearray(s3.get_object(Bucket=copy["bucket"], Key=copy["key"])["Body"].read())
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=copy["bucket"], Key=copy["key"], Body=bytes(body))
    assert hashlib.sha256(body).hexdigest() != backup["sha256"]
    zstack = system.databases[0]
    before = checksums(zstack)
    # When it is restored in place
    started = system.api.post(
        f"/v1/backups/{backup['id']}/in-place-restores",
        {"target": {"mode": "in-place"}, "confirm": "platform-db"},
    )
    done = system.wait(started.body["id"])
    # Then it failed at Validate, saying why, and the target is untouched
    assert (done["status"], done["phase"]) == ("failed", "validate"), done
    assert "corrupted or truncated" in done["error"]
    assert checksums(zstack) == before
    assert system.workflow_status(done["id"]) == "FAILED"
    assert DynamoLeases().holder(system.plan_id) is None


def test_a_failure_in_the_middle_of_a_new_database_restore_drops_them(
    platform_dbs: list[str], tmp_path: Path
) -> None:
    with running_system(platform_dbs, environment=fails_once(tmp_path)) as system:
        backup = system.backup(on_time(17))
        started = system.api.post(
            f"/v1/backups/{backup['id']}/restores",
            {"target": {"mode": "new-database", "databaseSuffix": "_half"}},
        )
        targets = [f"{db}_half" for db in system.databases]
        try:
            done = system.wait(started.body["id"])
            assert (done["status"], done["phase"]) == ("rolled-back", "rollback"), done
            assert "exit 7" in done["error"]
            assert existing(targets) == ""
        finally:
            drop(*targets)


def test_a_failure_in_the_middle_of_an_in_place_restore_rolls_back(
    platform_dbs: list[str], tmp_path: Path
) -> None:
    zstack = platform_dbs[0]
    with running_system(platform_dbs, environment=fails_once(tmp_path)) as system:
        backup = system.backup(on_time(16))
        sql(
            "CREATE TABLE IF NOT EXISTS AddedLater2 (id INT PRIMARY KEY);"
            " INSERT INTO AddedLater2 VALUES (1);",
            zstack,
        )
        before = (checksums(zstack), definitions(zstack))
        try:
            started = system.api.post(
                f"/v1/backups/{backup['id']}/in-place-restores",
                {"target": {"mode": "in-place"}, "confirm": "platform-db"},
            )
            done = system.wait(started.body["id"])
            # Then it is rolled back from the safety backup: as it was before the restore
            assert done["status"] == "rolled-back", done
            assert done["safetyBackupId"]
            assert (checksums(zstack), definitions(zstack)) == before
        finally:
            sql("DROP TABLE IF EXISTS AddedLater2", zstack)


def test_a_restore_is_refused_while_the_plan_is_busy_and_blocks_backups(system: System) -> None:
    backup = system.backup(on_time(15))
    leases = DynamoLeases()
    # Given a backup holding the plan's lease
    assert leases.acquire(system.plan_id, "run-1", "backup", "schedule backup", time.time(), 300)[0]
    # When a restore is asked: 409 with the reason
    refused = system.api.post(
        f"/v1/backups/{backup['id']}/restores", {"target": {"mode": "new-database"}}
    )
    assert refused.status == 409, refused.body
    assert "backup run-1" in refused.body["error"]["message"]
    leases.release(system.plan_id, "run-1")


def test_a_scheduled_backup_firing_during_a_restore_is_skipped(system: System) -> None:
    # Given the newest backup before a time, restored through the plan's route
    backup = system.backup(on_time(14))
    started = system.api.post(
        f"/v1/plans/{system.plan_id}/restores",
        {
            "target": {"mode": "new-database", "databaseSuffix": "_during"},
            "before": "2099-01-01T00:00:00Z",
        },
    )
    assert started.status == 202, started.body
    assert started.body["backupId"] == backup["id"]
    targets = [f"{db}_during" for db in system.databases]
    try:
        # When the schedule fires while the restore holds the plan's lease
        event = {"planId": system.plan_id, "scheduledTime": on_time(13)}
        outcome = json.loads(system.invoke(EXECUTOR, event).payload)
        # Then that run is skipped, naming the restore
        assert outcome["status"] == "skipped"
        skipped = system.api.get(f"/v1/executions/{outcome['executionId']}").body
        assert f"restore {started.body['id']}" in skipped["reason"]
        assert system.wait(started.body["id"])["status"] == "succeeded"
    finally:
        drop(*targets)


# -- time: a restore that cannot finish is refused before anything is touched -----------------


def _changed_since_backup(zstack: str) -> dict[str, str]:
    """Rows changed after the backup, so a restore that ran would show."""
    sql("UPDATE ResourceVO SET resourceName = 'after the backup' LIMIT 5", zstack)
    return checksums(zstack)


def test_a_restore_that_cannot_fit_the_restore_step_is_refused_by_the_api(
    system: System,
) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(6))
    live = _changed_since_backup(zstack)
    # Given an apply rate at which this backup needs 1000 s, and a restore step of 900 s
    rate = backup["rawBytes"] / 1000
    system.configure("pdb-api", environment={RESTORE_APPLY_RATE: str(rate)})
    # When an in-place restore is asked
    refused = system.api.post(
        f"/v1/backups/{backup['id']}/in-place-restores",
        {"target": {"mode": "in-place"}, "confirm": "platform-db"},
    )
    # Then it is refused with the figures, naming the backup
    assert refused.status == 422, refused.body
    assert refused.error_fields == ["backupId"]
    message = refused.body["error"]["message"]
    assert f"backup {backup['id']}" in message
    assert f"estimated 1000 s to apply {backup['rawBytes'] / 1e6:.1f} MB at" in message
    assert "the restore step has 870 s (900 s less a 30 s margin)" in message
    # And nothing was started or touched: no restore, the plan free, the live data as it was
    assert system.api.get("/v1/restores").body["items"] == []
    assert DynamoLeases().holder(system.plan_id) is None
    assert checksums(zstack) == live


def test_validate_refuses_a_restore_that_cannot_fit_the_restore_step(system: System) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(5))
    live = _changed_since_backup(zstack)
    # Given the restore function reads a rate at which this backup needs 2000 s, and the API
    # the default (the rate changed between the two)
    system.configure(RESTORE, environment={RESTORE_APPLY_RATE: str(backup["rawBytes"] / 2000)})
    started = system.api.post(
        f"/v1/backups/{backup['id']}/in-place-restores",
        {"target": {"mode": "in-place"}, "confirm": "platform-db"},
    )
    assert started.status == 202, started.body
    done = system.wait(started.body["id"])
    # Then Validate refused it with the figures, before the safety backup and any statement
    assert (done["status"], done["phase"]) == ("failed", "validate"), done
    assert "estimated 2000 s to apply" in done["error"]
    assert "Nothing was touched" in done["error"]
    assert done["safetyBackupId"] is None and done["targetTouched"] is False
    assert checksums(zstack) == live
    assert DynamoLeases().holder(system.plan_id) is None


def test_a_restore_without_the_time_left_is_not_started(system: System) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(4))
    live = checksums(zstack)
    # Given a restore function whose Lambda timeout leaves no time beyond the margin
    system.configure(RESTORE, timeout_seconds=int(TIME_MARGIN_SECONDS))
    # When a restore into new databases runs (in place, the safety backup would need the time
    # too: that case is the next test's)
    started = system.api.post(
        f"/v1/backups/{backup['id']}/restores",
        {"target": {"mode": "new-database", "databaseSuffix": "_notime"}},
    )
    assert started.status == 202, started.body
    done = system.wait(started.body["id"])
    # Then the Restore step refused before creating anything: failed, no database made
    assert (done["status"], done["phase"]) == ("failed", "restore"), done
    assert "was not started" in done["error"] and "Nothing was touched" in done["error"]
    assert done["targetTouched"] is False
    made = ", ".join(f"'{name}'" for name in done["databases"].values())
    assert (
        sql(f"SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ({made})")
        == ""
    )
    assert checksums(zstack) == live
    assert DynamoLeases().holder(system.plan_id) is None


def test_an_in_place_restore_whose_rollback_could_not_fit_is_not_started(
    system: System,
) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(3))
    # Given live databases grown to well over twice the backup since it was taken
    sql("CREATE TABLE GrownLater (id INT PRIMARY KEY, body LONGTEXT)", zstack)
    try:
        rows = backup["rawBytes"] * 3 // 1_000_000 + 1
        sql(
            f"INSERT INTO GrownLater SELECT seq, repeat(md5(seq), 31250) FROM seq_1_to_{rows}",
            zstack,
        )
        live = (checksums(zstack), definitions(zstack))
        # And an apply rate at which the backup needs 435 s of the restore step's 870 s, so the
        # safety backup of the grown databases would need over 870 s to roll back
        rate = backup["rawBytes"] / 435
        system.configure(RESTORE, environment={RESTORE_APPLY_RATE: str(rate)})
        started = system.api.post(
            f"/v1/backups/{backup['id']}/in-place-restores",
            {"target": {"mode": "in-place"}, "confirm": "platform-db"},
        )
        done = system.wait(started.body["id"])
        # Then the safety backup was taken, and the Restore step refused before touching
        # anything, saying the rollback would not fit: never a rollback that runs out of time
        assert (done["status"], done["phase"]) == ("failed", "restore"), done
        assert done["safetyBackupId"]
        assert "a rollback to the safety backup" in done["error"]
        assert "The live databases were not touched" in done["error"]
        assert done["targetTouched"] is False
        assert (checksums(zstack), definitions(zstack)) == live
        assert DynamoLeases().holder(system.plan_id) is None
    finally:
        sql("DROP TABLE IF EXISTS GrownLater", zstack)


# -- the lease across the workflow's steps -------------------------------------------------------


@pytest.fixture
def stepped(platform_dbs: list[str]) -> Iterator[System]:
    """The workflow is started but its steps are run here, one invocation each, as its tasks do."""
    with running_system(platform_dbs, run_workflows=False) as running:
        yield running


def test_the_restore_keeps_the_plan_between_its_steps(stepped: System) -> None:
    backup = stepped.backup(on_time(2))
    started = stepped.api.post(
        f"/v1/backups/{backup['id']}/restores",
        {"target": {"mode": "new-database", "databaseSuffix": "_steps"}},
    )
    assert started.status == 202, started.body
    restore_id = started.body["id"]
    restored = [f"{db}_steps" for db in stepped.databases]
    leases = DynamoLeases()
    try:
        for minute, step in enumerate(("validate", "safety-backup", "restore", "replay", "verify")):
            outcome = stepped.invoke(RESTORE, {"step": step, "restoreId": restore_id})
            assert outcome.function_error is None, outcome.payload.decode()
            # After each step the lease is held for longer than one lease period, so a slow
            # transition (a retry's backoff, a cold start) does not free the plan
            holder = leases.holder(stepped.plan_id)
            assert holder is not None and holder.owner == restore_id, step
            assert holder.expires_at - time.time() > 2 * LEASE_TTL_SECONDS, step
            # and a backup fired between two steps is skipped, naming the restore
            scheduled = f"2026-11-26T15:0{minute}:00Z"
            fired = stepped.invoke(
                EXECUTOR, {"planId": stepped.plan_id, "scheduledTime": scheduled}
            )
            skipped = json.loads(fired.payload)
            assert skipped["status"] == "skipped", (step, skipped)
        outcome = stepped.invoke(RESTORE, {"step": "finalize", "restoreId": restore_id})
        assert json.loads(outcome.payload)["status"] == "succeeded", outcome.payload.decode()
        # And the last step frees the plan
        assert leases.holder(stepped.plan_id) is None
    finally:
        drop(*restored)


def test_a_rollback_keeps_the_plan_while_it_runs(platform_dbs: list[str], tmp_path: Path) -> None:
    # Given a client whose first apply fails halfway and whose second (the rollback's) starts
    # only after more than one lease period
    slow_rollback = fails_once(tmp_path, then=f"sleep {LEASE_TTL_SECONDS + 10:.0f};")
    with running_system(platform_dbs, environment=slow_rollback) as system:
        backup = system.backup(on_time(1))
        started = system.api.post(
            f"/v1/backups/{backup['id']}/in-place-restores",
            {"target": {"mode": "in-place"}, "confirm": "platform-db"},
        )
        restore_id = started.body["id"]
        # When a backup fires while the rollback runs, more than one lease period into it
        while system.api.get(f"/v1/restores/{restore_id}").body["phase"] != "rollback":
            time.sleep(0.1)
        time.sleep(LEASE_TTL_SECONDS + 3)
        assert system.api.get(f"/v1/restores/{restore_id}").body["status"] == "running"
        skipped = system.fire(on_time(0))
        # Then it is skipped, naming the restore: the rollback kept the plan
        assert skipped["status"] == "skipped", skipped
        reason = system.api.get(f"/v1/executions/{skipped['executionId']}").body["reason"]
        assert f"restore {restore_id}" in reason
        # And the rollback finished
        assert system.wait(restore_id)["status"] == "rolled-back"
