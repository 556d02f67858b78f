"""The parallel restore of a framed backup, end to end on the local stack: every
table, view, routine, trigger and event of both fixtures comes back the same on several
connections (tables cut in many frames too), work after a table's rows waits until they have run,
and a connection killed in the middle fails the restore with nothing left."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from platform_backup.adapters.mariadb import DbConnection, session
from platform_backup.adapters.mysql_restore import CLIENT_OPTIONS, MariaDbTarget
from platform_backup.adapters.parallel_restore import ParallelApply, _Work
from platform_backup.adapters.restore_source import S3BackupSource
from platform_backup.domain.backup import BackupCopy
from platform_backup.domain.frame_index import FrameIndex, restore_phases
from tests.integration.conftest import SmallFrames
from tests.integration.test_restore import checksums, definitions, drop, existing
from tests.support.databases import ROOT, RUN_ID, sql
from tests.support.schedule_times import on_time
from tests.support.system import RESTORE, System, client_wrapper, running_system

pytestmark = pytest.mark.integration

EVENT = (
    "CREATE EVENT purge_old_audits ON SCHEDULE EVERY 1 DAY DISABLE"
    " DO DELETE FROM AuditsVO WHERE createTime < 0"
)


def events(database: str) -> dict[str, str]:
    found = {}
    for name in sql(
        f"SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA='{database}'"
    ).split():
        shown = sql(f"SHOW CREATE EVENT `{database}`.`{name}`").split("\t")[3]
        found[name] = shown.replace(database, "<db>")
    return found


def tables(database: str) -> dict[str, str]:
    """SHOW CREATE TABLE of every table: its keys in their order, its AUTO_INCREMENT."""
    names = sql(
        "SELECT TABLE_NAME FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA='{database}' AND TABLE_TYPE='BASE TABLE'"
    ).split()
    return {name: sql(f"SHOW CREATE TABLE `{database}`.`{name}`") for name in names}


def ignore(_: int) -> None:
    """A progress callback that keeps nothing."""


# Every table with rows gets its deferrable keys after them (16 MiB of rows deployed).
DEFER_EVERY_TABLE = {RESTORE: {"RESTORE_DEFER_KEYS_FROM_BYTES": "1"}}


def test_both_fixtures_come_back_the_same_through_the_parallel_restore(
    platform_dbs: list[str],
) -> None:
    with running_system(platform_dbs, environment=DEFER_EVERY_TABLE) as system:
        _both_fixtures_come_back_the_same(system)


# A table of about 30 MB of rows: the restore applies its frame in 8 MiB pieces on any
# connection, its trigger and its deferred key after them.
PIECES = (
    "CREATE TABLE PieceRowsVO (id INT PRIMARY KEY, uuid CHAR(32) NOT NULL,"
    " note VARCHAR(255) NOT NULL, KEY idxPieceRowsVOuuid (uuid)) ENGINE=InnoDB;"
    " INSERT INTO PieceRowsVO SELECT seq, MD5(seq), REPEAT(MD5(seq * 7), 7) FROM seq_1_to_120000;"
    " CREATE TRIGGER PieceRowsVOnote BEFORE INSERT ON PieceRowsVO"
    " FOR EACH ROW SET NEW.note = CONCAT('trigger ran: ', NEW.note);"
)


def _both_fixtures_come_back_the_same(system: System) -> None:
    zstack = system.databases[0]
    sql(EVENT, zstack)
    sql(PIECES, zstack)
    backup = system.backup(on_time(2))
    assert backup["rawBytes"] > 3 * (8 << 20)
    before = {
        db: (checksums(db), definitions(db), events(db), tables(db)) for db in system.databases
    }
    assert events(zstack)
    # When it is restored into new databases on three connections
    started = system.api.post(
        f"/v1/backups/{backup['id']}/restores",
        {"target": {"mode": "new-database", "databaseSuffix": "_par"}, "parallelism": 3},
    )
    assert started.status == 202, started.body
    restored = {db: f"{db}_par" for db in system.databases}
    try:
        done = system.wait(started.body["id"])
        # Then every table, view, routine, trigger and event is the same
        assert done["status"] == "succeeded", done
        assert done["parallelism"] == 3
        assert done["progress"]["bytesApplied"] == backup["rawBytes"]
        # (each phase reads its frames by range: some bytes between them twice)
        assert done["bytesRead"] >= backup["compressedBytes"]
        for source, target in restored.items():
            after = (checksums(target), definitions(target), events(target), tables(target))
            assert after == before[source]
    finally:
        drop(*restored.values())


def _held_client(tmp_path: Path, lock: str) -> dict[str, dict[str, str]]:
    """The client, but its second run (the first of the rows) waits first for a user lock the
    test holds, so that the test can find its connection and kill it."""
    counter, guard = tmp_path / "runs", tmp_path / "runs.lock"
    return client_wrapper(
        tmp_path,
        f'exec 9>"{guard}"; flock 9\n'
        f'n=$(( $(cat "{counter}" 2>/dev/null || echo 0) + 1 )); echo $n > "{counter}"\n'
        "exec 9>&-\n"
        'if [ "$n" = 2 ]; then\n'
        f'  {{ echo "SELECT GET_LOCK(\'{lock}\', 3600);"; cat; }} | "$CLIENT" "$@"\n'
        "  exit $?\n"
        "fi\n"
        'exec "$CLIENT" "$@"\n',
    )


def test_a_connection_killed_mid_restore_fails_it_with_nothing_left(
    platform_dbs: list[str], tmp_path: Path
) -> None:
    lock = f"pdbt_hold_{RUN_ID}"
    with running_system(platform_dbs, environment=_held_client(tmp_path, lock)) as system:
        _kill_a_connection_mid_restore(system, lock)


def _kill_a_connection_mid_restore(system: System, lock: str) -> None:
    backup = system.backup(on_time(1))
    # Given the lock the restore's first rows connection will wait for, held here
    holder = subprocess.Popen([*ROOT, "--batch"], stdin=subprocess.PIPE, text=True)
    assert holder.stdin is not None
    holder.stdin.write(f"SELECT GET_LOCK('{lock}', 0);\n")
    holder.stdin.flush()
    targets = [f"{db}_kill" for db in system.databases]
    killed: list[str] = []

    def kill_the_waiting_connection() -> None:
        query = (
            "SELECT ID FROM information_schema.PROCESSLIST"
            f" WHERE INFO = 'SELECT GET_LOCK(\\'{lock}\\', 3600)'"
        )
        while not (found := sql(query).split()):
            pass
        sql(f"KILL {found[0]}")
        killed.append(found[0])

    killer = threading.Thread(target=kill_the_waiting_connection, daemon=True)
    killer.start()
    try:
        # When the backup is restored and that connection is killed from another session
        started = system.api.post(
            f"/v1/backups/{backup['id']}/restores",
            {"target": {"mode": "new-database", "databaseSuffix": "_kill"}, "parallelism": 2},
        )
        done = system.wait(started.body["id"])
        killer.join()
        # Then the restore failed, saying the client failed, and no restored database is left
        assert killed
        assert (done["status"], done["phase"]) == ("rolled-back", "rollback"), done
        assert "the mariadb client failed" in done["error"]
        assert existing(targets) == ""
    finally:
        holder.stdin.close()
        holder.wait()
        drop(*targets)


def test_work_after_a_tables_rows_waits_until_they_have_run_not_only_been_handed_out(
    root_conn: DbConnection,
) -> None:
    """A table's trigger or deferred key waits until its rows have run on their connection, not
    only until they were written to it: a trigger made while rows are in flight rewrites them."""
    database = f"pdbt_{RUN_ID}_order"
    sql(
        f"CREATE DATABASE `{database}`; CREATE TABLE `{database}`.t (id INT PRIMARY KEY);"
        f" CREATE TABLE `{database}`.seen (count INT);"
    )
    # Work that keeps its connection busy for a while (its write blocks on the full pipe)
    busy = b"DO SLEEP(0.5);\n" + b"-- %s\n" % (b"x" * 2000) * 100

    def items() -> Iterator[_Work]:
        # Given a table's rows that take two seconds to run, then other work for both
        # connections, then (while the rows still run) the work that must come after them
        rows = b"INSERT INTO t VALUES (1); DO SLEEP(2); INSERT INTO t VALUES (2);\n"
        yield _Work(partial(list, [rows]), 1, "t")
        yield _Work(partial(list, [busy]), 1)
        yield _Work(partial(list, [busy]), 1)
        time.sleep(0.2)
        # (with what follows it in its frame, as a trigger's is: more than a write buffers)
        last = b"INSERT INTO seen SELECT COUNT(*) FROM t;\n-- %s\n" % (b"y" * 10000)
        yield _Work(partial(list, [last]), 1, "t", after=True)

    try:
        with session(root_conn) as db:
            header = f"USE `{database}`;\n".encode()
            apply = ParallelApply(db, "mariadb", CLIENT_OPTIONS, header, {}, "new", ignore)
            # When they run on two connections
            assert apply._run(items(), 4, 2), apply.error
        # Then the work after the rows saw both of them
        assert sql(f"SELECT count FROM `{database}`.seen").split() == ["2"]
    finally:
        drop(database)


def test_tables_cut_in_many_frames_come_back_the_same_through_the_parallel_restore(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    small_frames_backup: SmallFrames,
) -> None:
    # Given a backup of both fixtures in frames of at most 64 KiB of rows (a big table's rows in
    # several frames, as 64 MiB frames cut a big platform table), keys deferred for every table
    key = small_frames_backup.key
    copy = BackupCopy(
        storageId="st-mf",
        role="local",
        bucket=buckets[0],
        region="us-east-1",
        key=key,
        manifestKey=key + ".manifest.json",
    )
    source = S3BackupSource("us-east-1")
    index = FrameIndex.from_manifest(source.manifest(copy))
    assert index is not None
    audits = index.table_frames(f"{platform_dbs[0]}.AuditsVO")
    assert len([f for f in audits if f.section.kind == "rows"]) > 1
    names = {db: f"{db}_mf" for db in platform_dbs}
    before = {db: (checksums(db), definitions(db), tables(db)) for db in platform_dbs}
    try:
        # When it is restored into new databases on three connections
        applied = MariaDbTarget(1).apply_frames(
            root_conn,
            [f for f in index.frames if f.section.kind == "header"],
            restore_phases(index),
            lambda chosen: source.frames(copy, None, chosen, ignore, sql=True),
            names=names,
            existing="new",
            width=3,
            progress=ignore,
            on_start=lambda: None,
        )
        # Then every byte of the dump was applied and every table, view, routine and trigger
        # is the same
        assert applied.completed and applied.exit_code == 0, applied.stderr
        assert applied.raw_bytes == sum(f.raw_length for f in index.frames)
        for db, target in names.items():
            assert (checksums(target), definitions(target), tables(target)) == before[db]
    finally:
        drop(*names.values())
