"""The restore applies only what mariadb-dump writes for the recorded databases: a backup whose
dump was made to carry something else (a grant, another database, the system schema) fails at
Validate with the statement's line, and nothing reaches the server. Real dumps of the fixtures
pass the same check. The same system as tests/integration/test_restore.py: the real API and
workflow on moto's Step Functions engine, the real MariaDB and client tools."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

import pytest
import zstandard

from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.adapters.dump_process import DUMP_OPTIONS
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.domain.dump_statements import DumpStatementCheck
from tests.integration.test_restore import System, checksums, drop, system
from tests.support.databases import ROOT, RUN_ID, sql
from tests.support.schedule_times import on_time

pytestmark = pytest.mark.integration

__all__ = ["system"]  # the restore system fixture, shared with test_restore.py


def forge(system: System, backup: dict[str, Any], after_use: bytes) -> int:
    """Rewrites the backup's object (and, as someone holding the bucket and the table could,
    its manifest and record) so its dump carries ``after_use`` after its first USE line; the
    line number it lands on."""
    [copy] = backup["copies"]
    s3 = system.client("s3")
    body = s3.get_object(Bucket=copy["bucket"], Key=copy["key"])["Body"].read()
    # (a framed backup is many frames: all of them)
    text = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(body)
    use = text.index(b"\nUSE `") + 1
    at = text.index(b"\n", use) + 1
    forged_text = text[:at] + after_use + b"\n" + text[at:]
    forged = zstandard.ZstdCompressor().compress(forged_text)
    sha256 = hashlib.sha256(forged).hexdigest()
    s3.put_object(Bucket=copy["bucket"], Key=copy["key"], Body=forged)
    manifest_key = copy["key"] + ".manifest.json"
    manifest = json.loads(s3.get_object(Bucket=copy["bucket"], Key=manifest_key)["Body"].read())
    manifest["sha256"] = sha256
    # One frame now: the forger drops the table index, as a backup made before it would have none
    manifest.pop("frameIndex", None)
    s3.put_object(Bucket=copy["bucket"], Key=manifest_key, Body=json.dumps(manifest).encode())
    repo = DynamoBackupRepository()
    current = repo.find_stored(backup["id"])
    assert current is not None
    changed = {"sha256": sha256, "compressedBytes": len(forged), "rawBytes": len(forged_text)}
    assert repo.replace(current, current.value.model_copy(update=changed)) is not None
    return text[:at].count(b"\n") + 1


ATTACKS = [
    (b"GRANT ALL ON *.* TO 'pdbt_intruder'@'%' IDENTIFIED BY 'x';", "GRANT ALL", "in-place"),
    (b"use mysql;", "uses database `mysql`", "new-database"),
    (
        b"INSERT INTO mysql.user (Host, User) VALUES ('%', 'pdbt_intruder');",
        "INSERT INTO mysql",
        "new-database",
    ),
    (f"DROP DATABASE `pdbt_{RUN_ID}_other`;".encode(), "DROP DATABASE", "in-place"),
    (f"DROP DATABASE `pdbt_{RUN_ID}_other`;".encode(), "DROP DATABASE", "new-database"),
    (b"SET GLOBAL read_only = 1;", "global or account state", "new-database"),
    (b"CREATE USER 'pdbt_intruder'@'%';", "CREATE USER", "new-database"),
]


@pytest.mark.parametrize(
    ("statement", "named", "mode"), ATTACKS, ids=[f"{a[1]}-{a[2]}" for a in ATTACKS]
)
def test_a_dump_carrying_what_no_backup_holds_is_refused_with_nothing_applied(
    system: System, statement: bytes, named: str, mode: str
) -> None:
    other = f"pdbt_{RUN_ID}_other"
    sql(f"CREATE DATABASE IF NOT EXISTS `{other}`; CREATE TABLE IF NOT EXISTS `{other}`.t (a INT)")
    try:
        # Given a backup whose dump was made to carry a statement no backup of it holds
        backup = system.backup(on_time(20))
        line = forge(system, backup, statement)
        zstack = system.databases[0]
        before = checksums(zstack)
        # When it is restored (into new databases, or in place over the live ones)
        body: dict[str, Any] = {"target": {"mode": "new-database", "databaseSuffix": "_bad"}}
        route = "restores"
        if mode == "in-place":
            body = {"target": {"mode": "in-place"}, "confirm": "platform-db"}
            route = "in-place-restores"
        started = system.api.post(f"/v1/backups/{backup['id']}/{route}", body)
        assert started.status == 202, started.body
        done = system.wait(started.body["id"])
        # Then it failed at Validate, naming the statement's line and what it does
        assert (done["status"], done["phase"]) == ("failed", "validate"), done
        assert f"line {line}: " in done["error"], done["error"]
        assert named in done["error"], done["error"]
        assert "nothing was applied" in done["error"]
        assert not done.get("targetTouched")
        # And nothing reached the server: no new database, the live ones and the other unchanged
        assert sql(f"SHOW DATABASES LIKE '{zstack}\\_bad'") == ""
        assert checksums(zstack) == before
        assert sql(f"SHOW DATABASES LIKE '{other}'").strip() == other
        assert sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'pdbt_intruder'").strip() == "0"
        assert sql("SELECT @@GLOBAL.read_only").strip() == "0"
        assert DynamoLeases().holder(system.plan_id) is None
    finally:
        drop(other, *(f"{db}_bad" for db in system.databases))


def test_real_dumps_of_both_fixtures_pass_the_check(platform_dbs: list[str]) -> None:
    # Given the real mariadb-dump of the ZStack schema and Sakila, with the service's options
    server = ROOT[1:7]  # host, port, user of the shared server
    dumped = subprocess.run(
        ["mariadb-dump", *server, *DUMP_OPTIONS, "--databases", *platform_dbs],
        capture_output=True,
        check=True,
    ).stdout
    # When it is checked as a restore checks it, in chunks as it streams
    checker = DumpStatementCheck(platform_dbs)
    for at in range(0, len(dumped), 1 << 16):
        checker.feed(dumped[at : at + (1 << 16)])
    # Then every statement passes: rows, tables, views, routines, triggers
    assert checker.finish() is None
    assert dumped.count(b"\nINSERT INTO ") > 20 and b"CREATE DEFINER=" in dumped
    assert b"TRIGGER" in dumped and b"VIEW" in dumped
