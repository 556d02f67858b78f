"""The replay's filter (adapters/binlog_filter.py) on real ``mariadb-binlog`` text: binary-log
files written by a private server, each holding one case, turned into text by the same command
line the replay runs, filtered, and applied with the ``mariadb`` client. What counts is what the
client then writes: the restored databases exactly as their sources, nothing else touched."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from devstack.private_server import PrivateServer, private_server
from platform_backup.adapters.binlog_event_index import EventIndex
from platform_backup.adapters.binlog_filter import BinlogTextFilter, ReplayRefused
from platform_backup.adapters.binlog_replay import binlog_argv
from platform_backup.adapters.mysql_restore import CLIENT_OPTIONS
from tests.integration.test_point_in_time_restore import _copy
from tests.integration.test_restore_targets import checksums

pytestmark = pytest.mark.integration

NAMES = {"keep_a": "keep_a_r", "keep_b": "keep_b_r"}
# Small pieces: event blocks, boundaries and the trailer arrive cut anywhere.
PIECE = 97


@dataclass
class Files:
    server: PrivateServer
    workload: bytes  # writes into kept and other databases, DDL, a mixed transaction
    sources: dict[str, dict[str, str]]  # the kept databases' checksums once it was written
    mixed_statement: bytes  # one UPDATE of a kept and another database's tables
    on_database: bytes  # ALTER DATABASE of a kept database
    other_end: dict[str, str]  # the other database's checksums once every file was written


def _closed(server: PrivateServer, statements: str) -> bytes:
    """Runs the statements in a file of their own; that file's bytes."""
    server.sql("FLUSH BINARY LOGS")
    name = server.sql("SHOW MASTER STATUS").split("\t")[0]
    server.sql(statements)
    server.sql("FLUSH BINARY LOGS")
    return (server.binlog_dir / name).read_bytes()


@pytest.fixture(scope="module")
def files() -> Iterator[Files]:
    with private_server(binlog=True) as server:
        server.sql(
            "CREATE DATABASE keep_a; CREATE DATABASE keep_b; CREATE DATABASE other;"
            " CREATE TABLE keep_a.t (id INT PRIMARY KEY, v TEXT);"
            " CREATE TABLE keep_b.acc (id INT PRIMARY KEY, balance INT);"
            " CREATE TABLE other.t (id INT PRIMARY KEY, v TEXT);"
            " INSERT INTO keep_b.acc VALUES (1, 100), (2, 200);"
            " INSERT INTO other.t VALUES (1, 'before');"
        )
        # The targets start as the sources are when the workload's file opens.
        for source, target in NAMES.items():
            _copy(server, source, target)
        workload = _closed(
            server,
            "INSERT INTO keep_a.t VALUES (1, 'kept');"
            " BEGIN; INSERT INTO keep_a.t VALUES (2, 'kept, beside other');"
            " INSERT INTO other.t VALUES (2, 'dropped, beside kept'); COMMIT;"
            " INSERT INTO other.t VALUES (3, 'dropped');"
            " USE keep_b; CREATE TABLE added (id INT PRIMARY KEY, note TEXT);"
            " INSERT INTO added VALUES (1, 'after DDL');"
            " USE keep_a; ALTER TABLE t ADD COLUMN extra INT DEFAULT 7;"
            " USE other; CREATE TABLE more (id INT PRIMARY KEY);"
            " UPDATE keep_b.acc SET balance = balance - 10 WHERE id = 1;"
            " USE keep_a; INSERT INTO t (id, v) VALUES (3, 'after ALTER');"
            " INSERT INTO other.t VALUES (4, 'from keep_a''s session');",
        )
        sources = {name: checksums(server.sql, name) for name in NAMES}
        mixed = _closed(
            server,
            "UPDATE keep_a.t JOIN other.t ON keep_a.t.id = other.t.id"
            " SET keep_a.t.v = 'both', other.t.v = 'both';",
        )
        on_database = _closed(server, "ALTER DATABASE keep_a CHARACTER SET utf8mb4;")
        yield Files(server, workload, sources, mixed, on_database, checksums(server.sql, "other"))


def _text(raw: bytes) -> bytes:
    """The file's text as the replay makes it (the databases renamed, every event)."""
    binary = shutil.which("mariadb-binlog") or "mariadb-binlog"
    stop = datetime.now(UTC) + timedelta(hours=1)  # (mariadb-binlog stops nothing past 2038)
    argv = binlog_argv(binary, False, 4, stop, NAMES)
    done = subprocess.run(argv, input=raw, capture_output=True, check=True, env={"TZ": "UTC"})
    return done.stdout


def _filtered(raw: bytes) -> bytes:
    index = EventIndex()
    index.feed(raw)
    text_filter = BinlogTextFilter(index, NAMES)
    text = _text(raw)
    out = b"".join(text_filter.feed(text[i : i + PIECE]) for i in range(0, len(text), PIECE))
    return out + text_filter.finish()


def _apply(server: PrivateServer, text: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["mariadb", "--no-defaults", f"--socket={server.socket}", "-uroot", *CLIENT_OPTIONS],
        input=text,
        capture_output=True,
        check=False,
    )


def test_only_the_restored_databases_are_written_and_exactly_as_their_sources(
    files: Files,
) -> None:
    # Given the workload's text, which writes into the other database too
    assert b"`other`" in _text(files.workload)
    # When it is filtered and applied
    filtered = _filtered(files.workload)
    applied = _apply(files.server, filtered)
    # Then the client took all of it
    assert applied.returncode == 0, applied.stderr.decode()
    # and each restored database equals its source: rows, the new table, the ALTERed column
    for source, target in NAMES.items():
        assert checksums(files.server.sql, target) == files.sources[source]
    rows = files.server.sql("SELECT id, v, extra FROM keep_a_r.t ORDER BY id").splitlines()
    assert rows == ["1\tkept\t7", "2\tkept, beside other\t7", "3\tafter ALTER\t7"]
    # and nothing of the other database was replayed: it is as the workload left it
    assert b"`other`" not in filtered
    assert checksums(files.server.sql, "other") == files.other_end
    assert files.server.sql("SHOW TABLES FROM keep_a_r").split() == ["t"]


def test_a_row_statement_writing_both_kinds_of_database_is_refused(files: Files) -> None:
    with pytest.raises(ReplayRefused) as refused:
        _filtered(files.mixed_statement)
    assert "keep_a" in refused.value.message and "other" in refused.value.message


def test_a_statement_on_a_renamed_database_itself_is_refused(files: Files) -> None:
    with pytest.raises(ReplayRefused) as refused:
        _filtered(files.on_database)
    assert "database keep_a itself" in refused.value.message
