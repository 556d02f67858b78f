"""Backup and restore as two database users created with exactly the grants the README gives
and nothing more: the dump user backs up (and takes the safety backup), the restore user applies;
both succeed and the restore is identical. With one grant taken away, the job fails before it
touches anything, naming the missing right. The same system as tests/integration/test_restore.py:
the local stack's API, executor and workflow, the real MariaDB and client tools."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.config import DatabaseAccess
from platform_backup.adapters.db_privileges import DUMP_RIGHTS, RESTORE_RIGHTS
from tests.integration.test_restore import checksums, definitions, drop
from tests.support.databases import RUN_ID, sql
from tests.support.schedule_times import on_time
from tests.support.system import EXECUTOR, System, running_system

pytestmark = pytest.mark.integration

HOSTS = ("127.0.0.1", "localhost")


def pattern(name: str) -> str:
    """A database name as a grant's pattern: its _ taken literally."""
    return name.replace("_", "\\_")


@dataclass(frozen=True)
class Users:
    dump: str
    restore: str


def grants(users: Users, databases: list[str]) -> dict[str, list[str]]:
    """The README's grants, for these databases (README, "Security")."""
    dump_rights, restore_rights = ", ".join(DUMP_RIGHTS), ", ".join(RESTORE_RIGHTS)
    return {
        users.dump: [
            *(f"GRANT {dump_rights} ON `{pattern(db)}`.*" for db in databases),
            "GRANT SELECT ON mysql.proc",
        ],
        users.restore: [
            *(f"GRANT {restore_rights} ON `{pattern(db)}`.*" for db in databases),
            *(f"GRANT {restore_rights} ON `{pattern(db)}\\_restored\\_%`.*" for db in databases),
            "GRANT SET USER ON *.*",
        ],
    }


@pytest.fixture
def users(platform_dbs: list[str]) -> Iterator[dict[str, DatabaseAccess]]:
    """The two users (dump, restore) with the README's grants; dropped after."""
    made = Users(f"pdbt_{RUN_ID}_dump", f"pdbt_{RUN_ID}_restore")
    logins = {}
    for name, statements in grants(made, platform_dbs).items():
        password = f"Pw#{secrets.token_hex(8)} ;"
        for host in HOSTS:
            sql(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY '{password}'")
            sql("".join(f"{grant} TO '{name}'@'{host}';" for grant in statements))
        logins[name] = DatabaseAccess(username=name, password=password)
    try:
        yield {"dump": logins[made.dump], "restore": logins[made.restore]}
    finally:
        for name in (made.dump, made.restore):
            for host in HOSTS:
                sql(f"DROP USER IF EXISTS '{name}'@'{host}'")


@pytest.fixture
def system(platform_dbs: list[str], users: dict[str, DatabaseAccess]) -> Iterator[System]:
    """The stack with the dump user's secret as the database secret (DatabaseSecretArn) and the
    restore user's in its own (RestoreDatabaseSecretArn)."""
    with running_system(
        platform_dbs, database=users["dump"], restore_database=users["restore"]
    ) as running:
        yield running


def run(system: System, scheduled_time: str) -> dict[str, object]:
    outcome = system.invoke(EXECUTOR, {"planId": system.plan_id, "scheduledTime": scheduled_time})
    assert outcome.function_error is None, outcome.payload.decode()
    result = json.loads(outcome.payload)
    return dict(system.api.get(f"/v1/executions/{result['executionId']}").body)


def restore(system: System, backup_id: str, body: dict[str, object]) -> dict[str, object]:
    in_place = body.get("target") == {"mode": "in-place"}
    route = "in-place-restores" if in_place else "restores"
    started = system.api.post(f"/v1/backups/{backup_id}/{route}", body)
    assert started.status == 202, started.body
    return system.wait(started.body["id"])


def test_backup_and_restore_with_exactly_the_readme_grants(system: System) -> None:
    # Given a backup made as the dump user
    backup = system.backup(on_time(20))
    before = {db: (checksums(db), definitions(db)) for db in system.databases}
    restored: list[str] = []
    try:
        # When the restore user restores it into new databases
        done = restore(system, backup["id"], {"target": {"mode": "new-database"}})
        restored = list(dict(done["databases"]).values())  # type: ignore[call-overload]
        # Then it succeeded and every table, view, routine and trigger is the same
        assert done["status"] == "succeeded", done
        for source, target in dict(done["databases"]).items():  # type: ignore[call-overload]
            assert target.startswith(f"{source}_restored_")
            assert (checksums(target), definitions(target)) == before[source]
        # And in place too: the safety backup taken as the dump user, the dump applied as the
        # restore user, the live databases as they were
        done = restore(
            system, backup["id"], {"target": {"mode": "in-place"}, "confirm": "platform-db"}
        )
        assert done["status"] == "succeeded", done
        assert done["safetyBackupId"]
        for db in system.databases:
            assert (checksums(db), definitions(db)) == before[db]
    finally:
        drop(*restored)


def test_a_dump_user_without_trigger_fails_naming_it_before_dumping(
    system: System, users: dict[str, DatabaseAccess]
) -> None:
    # Given the dump user without TRIGGER on the ZStack database (mariadb-dump would leave the
    # triggers out and exit 0)
    zstack = system.databases[0]
    for host in HOSTS:
        sql(f"REVOKE TRIGGER ON `{pattern(zstack)}`.* FROM '{users['dump'].username}'@'{host}'")
    # When a backup runs
    execution = run(system, on_time(19))
    # Then it failed naming the right, and no backup was made
    assert execution["status"] == "failed", execution
    assert f"TRIGGER on `{zstack}`" in str(execution["error"]), execution
    assert not execution.get("backupId")


def test_a_restore_user_without_create_routine_fails_naming_it_with_nothing_applied(
    system: System, users: dict[str, DatabaseAccess]
) -> None:
    # Given a backup, and the restore user without CREATE ROUTINE on the databases it would make
    backup = system.backup(on_time(18))
    sakila = system.databases[1]
    for host in HOSTS:
        sql(
            f"REVOKE CREATE ROUTINE ON `{pattern(sakila)}\\_restored\\_%`.*"
            f" FROM '{users['restore'].username}'@'{host}'"
        )
    # When it restores into new databases
    done = restore(
        system, backup["id"], {"target": {"mode": "new-database", "databaseSuffix": "_restored_x"}}
    )
    # Then it failed at Validate naming the right, and no database was created
    assert (done["status"], done["phase"]) == ("failed", "validate"), done
    assert f"CREATE ROUTINE on `{sakila}_restored_x`" in str(done["error"]), done
    for db in system.databases:
        assert sql(f"SHOW DATABASES LIKE '{pattern(db)}\\_restored\\_x'") == ""
