"""Restores onto another database server (disaster recovery: a second, private MariaDB server
started here, reached with a password through a secret in the RDS format) and from the remote
copy once retention has pruned the local one. The same system as tests/integration/
test_restore.py: the real API and workflow on moto's Step Functions engine, the real MariaDB."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.iam_setup import TARGET_SECRET_PREFIX
from devstack.private_server import PrivateServer, private_server
from platform_backup.adapters.lease import DynamoLeases
from tests.integration.test_restore import drop, system
from tests.support.databases import RUN_ID, sql
from tests.support.schedule_times import on_time
from tests.support.system import System

pytestmark = pytest.mark.integration

__all__ = ["system"]  # the restore system fixture, shared with test_restore.py

Run = Callable[[str], str]


@dataclass(frozen=True)
class Server:
    """A private MariaDB server (devstack.private_server): root over its own socket for the test's
    checks, and a user with a password over TCP for the restore."""

    private: PrivateServer
    username: str
    password: str

    @property
    def port(self) -> int:
        return self.private.port

    def sql(self, statement: str) -> str:
        return self.private.sql(statement)

    def secret(self, system: System) -> str:
        """Its connection as a Secrets Manager secret in the RDS format; the secret's ARN."""
        value = {
            "engine": "mariadb",
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "dbInstanceIdentifier": "platform-db-dr",
        }
        created = system.client("secretsmanager").create_secret(
            Name=f"{TARGET_SECRET_PREFIX}dr-{self.port}", SecretString=json.dumps(value)
        )
        return str(created["ARN"])


@pytest.fixture
def second_server() -> Iterator[Server]:
    """Started in a temporary directory on a free port; stopped and removed whatever happens."""
    password = f"Dr#{RUN_ID} \"q\" 'x' \\ $HOME ;"
    with private_server() as private:
        server = Server(private, f"pdbt_dr_{RUN_ID}", password)
        # What a restore onto a new server needs: creating databases and, for the dump's
        # DEFINER clauses, objects on behalf of another user.
        private.create_user(server.username, password)
        yield server


def checksums(run: Run, database: str) -> dict[str, str]:
    """CHECKSUM TABLE of every table of ``database``, on the server ``run`` talks to."""
    tables = run(
        "SELECT TABLE_NAME FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE'"
    ).split()
    if not tables:
        return {}
    rows = run(f"CHECKSUM TABLE {', '.join(f'`{database}`.`{t}`' for t in tables)}")
    return {line.split("\t")[0].split(".", 1)[1]: line.split("\t")[1] for line in rows.splitlines()}


def objects(run: Run, database: str) -> set[str]:
    """The views, routines and triggers of ``database``."""
    listed = run(
        f"SELECT CONCAT('view ', TABLE_NAME) FROM information_schema.VIEWS"
        f" WHERE TABLE_SCHEMA = '{database}' UNION ALL"
        f" SELECT CONCAT('routine ', ROUTINE_NAME) FROM information_schema.ROUTINES"
        f" WHERE ROUTINE_SCHEMA = '{database}' UNION ALL"
        f" SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS"
        f" WHERE TRIGGER_SCHEMA = '{database}'"
    )
    return set(listed.splitlines())


def snapshot(run: Run, database: str) -> tuple[dict[str, str], set[str]]:
    return checksums(run, database), objects(run, database)


def restore(system: System, backup_id: str, body: dict[str, Any]) -> dict[str, Any]:
    mode = (body.get("target") or {}).get("mode")
    route = "in-place-restores" if mode == "in-place" else "restores"
    started = system.api.post(f"/v1/backups/{backup_id}/{route}", body)
    assert started.status == 202, started.body
    return system.wait(started.body["id"])


def test_a_backup_restored_into_new_databases_on_another_server_is_identical(
    system: System, second_server: Server
) -> None:
    # Given a backup of the platform databases, and another server known by its secret
    backup = system.backup(on_time(20))
    before = {db: snapshot(sql, db) for db in system.databases}
    secret_arn = second_server.secret(system)
    # When the backup is restored into new databases on that server
    done = restore(
        system,
        backup["id"],
        {
            "target": {"mode": "new-database", "databaseSuffix": "_dr"},
            "targetSecretArn": secret_arn,
        },
    )
    # Then it succeeded, and every table, view, routine and trigger is there as backed up
    assert done["status"] == "succeeded", done
    assert done["targetSecretArn"] == secret_arn
    for source in system.databases:
        assert snapshot(second_server.sql, f"{source}_dr") == before[source]
        assert any(c not in ("0", "NULL") for c in before[source][0].values())
    # And the platform database's server got nothing and is unchanged
    names = ", ".join(f"'{db}_dr'" for db in system.databases)
    assert (
        sql(f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({names})")
        == ""
    )
    assert {db: snapshot(sql, db) for db in system.databases} == before


def test_in_place_onto_another_server_replaces_what_it_holds(
    system: System, second_server: Server
) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(19))
    before = {db: snapshot(sql, db) for db in system.databases}
    secret_arn = second_server.secret(system)
    # Given the other server holds an older state of the platform database: a table since gone
    second_server.sql(f"CREATE DATABASE `{zstack}`; CREATE TABLE `{zstack}`.Stale (id INT)")
    in_place = {"target": {"mode": "in-place"}, "confirm": "platform-db"}
    # When asked in place there with the safety backup on (the default)
    refused = system.api.post(
        f"/v1/backups/{backup['id']}/in-place-restores", {**in_place, "targetSecretArn": secret_arn}
    )
    # Then it is refused: a safety backup can only be taken of the platform database
    assert refused.status == 400, refused.body
    assert refused.error_fields == ["safetyBackup"]
    # When asked with the safety backup off
    done = restore(
        system,
        backup["id"],
        {**in_place, "targetSecretArn": secret_arn, "safetyBackup": False},
    )
    # Then the other server holds the databases as backed up, the stale table gone
    assert done["status"] == "succeeded", done
    assert done["safetyBackupId"] is None
    for source in system.databases:
        assert snapshot(second_server.sql, source) == before[source]
    # And the platform databases themselves were not touched
    assert {db: snapshot(sql, db) for db in system.databases} == before


@pytest.fixture
def synced(system: System) -> System:
    """The plan syncs to a remote storage in another region and keeps one local copy."""
    system.client("s3").create_bucket(
        Bucket="pdb-offsite", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    system.client("s3").put_bucket_versioning(
        Bucket="pdb-offsite", VersioningConfiguration={"Status": "Enabled"}
    )
    remote = system.api.post(
        "/v1/storages",
        {
            "name": "offsite",
            "role": "remote",
            "bucket": "pdb-offsite",
            "region": "eu-west-1",
            "prefix": "dr/",
            "capacityBytes": 10**11,
        },
    )
    assert remote.status == 201, remote.body
    plan = system.api.get(f"/v1/plans/{system.plan_id}").body
    body = {k: plan[k] for k in ("name", "localStorageIds", "policy")}
    body |= {
        "remoteSync": True,
        "remoteStorageId": remote.body["id"],
        "retention": {"local": {"mode": "count", "value": 1}, "remote": {"mode": "permanent"}},
    }
    updated = system.api.put(f"/v1/plans/{system.plan_id}", body)
    assert updated.status == 200, updated.body
    return system


def test_a_backup_whose_local_copy_was_pruned_is_restored_from_its_remote_copy(
    synced: System,
) -> None:
    system = synced
    zstack = system.databases[0]
    # Given an older backup, a change, and a newer backup, both synced to the remote storage
    older = system.backup(on_time(18))
    at_older = {db: snapshot(sql, db) for db in system.databases}
    restored: list[str] = []
    sql("CREATE TABLE AddedAfter (id INT PRIMARY KEY); INSERT INTO AddedAfter VALUES (1);", zstack)
    try:
        system.backup(on_time(17))
        # And retention pruned the older backup's local copy
        pruned = system.invoke("pdb-retention", {"planId": system.plan_id})
        assert pruned.function_error is None, pruned.payload.decode()
        copies = system.api.get(f"/v1/backups/{older['id']}").body["copies"]
        assert [(c["role"], c["status"]) for c in copies] == [("remote", "available")]
        # When it is restored from its local copy
        refused = system.api.post(
            f"/v1/backups/{older['id']}/restores",
            {"target": {"mode": "new-database"}, "source": "local"},
        )
        # Then it is refused, saying why, and nothing started
        assert refused.status == 422, refused.body
        assert "no available local copy" in refused.body["error"]["message"]
        assert system.api.get("/v1/restores").body["items"] == []
        assert DynamoLeases().holder(system.plan_id) is None
        for source in ("auto", "remote"):
            # When it is restored with the source automatic, or remote
            suffix = f"_{source}"
            restored += [db + suffix for db in system.databases]
            done = restore(
                system,
                older["id"],
                {"target": {"mode": "new-database", "databaseSuffix": suffix}, "source": source},
            )
            # Then it is read from the remote copy and is the older backup's state
            assert done["status"] == "succeeded", done
            assert (done["sourceCopy"]["role"], done["sourceCopy"]["bucket"]) == (
                "remote",
                "pdb-offsite",
            )
            for db in system.databases:
                assert snapshot(sql, db + suffix) == at_older[db]
    finally:
        sql("DROP TABLE IF EXISTS AddedAfter", zstack)
        drop(*restored)


def test_in_place_onto_the_platform_server_by_another_secret_is_refused_untouched(
    system: System,
) -> None:
    zstack = system.databases[0]
    backup = system.backup(on_time(1))
    sql("UPDATE ResourceVO SET resourceName = 'changed' LIMIT 10", zstack)
    before = {db: snapshot(sql, db) for db in system.databases}
    # Given a second secret that reaches the platform database's own server
    value = {"host": "127.0.0.1", "port": 3306, "username": "root", "password": ""}
    created = system.client("secretsmanager").create_secret(
        Name=f"{TARGET_SECRET_PREFIX}same-{RUN_ID}", SecretString=json.dumps(value)
    )
    # When it is named as another server, to restore in place without a safety backup
    done = restore(
        system,
        backup["id"],
        {
            "target": {"mode": "in-place"},
            "confirm": "platform-db",
            "targetSecretArn": created["ARN"],
            "safetyBackup": False,
        },
    )
    # Then the restore fails at validation, naming the secret, and nothing was touched
    assert (done["status"], done["phase"]) == ("failed", "validate"), done
    assert "targetSecretArn reaches the platform database's own server" in done["error"]
    assert {db: snapshot(sql, db) for db in system.databases} == before
