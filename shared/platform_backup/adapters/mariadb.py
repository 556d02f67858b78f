"""The MariaDB client tools, driven without ever exposing the password.

The password goes into a 0600 option file inside a private 0700 directory that the caller owns
and removes; every tool gets ``--defaults-extra-file`` as its first argument (the client only
honours it there) and an environment that holds nothing from ours.
"""

from __future__ import annotations

import functools
import os
import shutil

# B404: the MariaDB tools run as argv lists, never through a shell.
import subprocess  # nosec B404
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from platform_backup.adapters import scratch
from platform_backup.errors import DependencyFailed, Unprocessable

# Engines whose tables a --single-transaction snapshot makes consistent; anything else (MyISAM,
# Aria, MEMORY, ...) is dumped as it is at the moment its turn comes.
TRANSACTIONAL_ENGINES = frozenset({"InnoDB", "RocksDB", "TokuDB"})


class DatabaseUnavailable(DependencyFailed):
    """The server could not be reached, refused the login, or failed a query."""

    code = "DatabaseUnavailable"


class DatabasesMissing(Unprocessable):
    """A database the plan protects does not exist on the server."""

    code = "DatabasesMissing"


@dataclass(frozen=True)
class DbConnection:
    host: str
    port: int
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class MariaDbTools:
    """Which client binaries to run (tests wrap them to watch their argv and environment)."""

    client: str = "mariadb"
    dump: str = "mariadb-dump"
    binlog: str = "mariadb-binlog"


@dataclass(frozen=True)
class TableInfo:
    database: str
    name: str
    engine: str
    rows_estimate: int
    size_bytes: int

    @property
    def transactional(self) -> bool:
        return self.engine in TRANSACTIONAL_ENGINES


@dataclass(frozen=True)
class ServerInfo:
    version: str
    binlog_enabled: bool
    tables: list[TableInfo]

    @property
    def size_bytes(self) -> int:
        return sum(table.size_bytes for table in self.tables)


@dataclass(frozen=True)
class Session:
    """A private directory holding the option file; every tool call goes through it."""

    workdir: Path
    defaults_file: Path
    password: str = field(repr=False)
    tools: MariaDbTools = MariaDbTools()

    def argv(self, binary: str, *args: str) -> list[str]:
        return [binary, f"--defaults-extra-file={self.defaults_file}", *args]

    def child_env(self) -> dict[str, str]:
        # HOME points at the private directory so no ~/.my.cnf of ours is read by accident.
        return {"HOME": str(self.workdir), "LC_ALL": "C.UTF-8"}

    def redact(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text

    def query(self, sql: str) -> list[list[str]]:
        """Rows of one statement, as text (NULL comes back as the string 'NULL')."""
        return self.query_many([sql])[0]

    def query_many(self, statements: Sequence[str]) -> list[list[list[str]]]:
        """The rows of each statement, run in one client process (each costs a few ms to start):
        a marker row no data can hold separates their results."""
        marker = f"--pdb-{uuid.uuid4().hex}--"
        script = "".join(f"{sql}; SELECT '{marker}';\n" for sql in statements)
        binary = shutil.which(self.tools.client) or self.tools.client
        try:
            # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
            done = subprocess.run(  # nosec B603
                self.argv(binary, "--batch", "--skip-column-names", "--raw", "-e", script),
                capture_output=True,
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatabaseUnavailable(f"cannot run {self.tools.client}: {exc}") from None
        if done.returncode != 0:
            reason = self.redact(done.stderr.decode("utf-8", "replace").strip())
            raise DatabaseUnavailable(f"database query failed: {reason}")
        results: list[list[list[str]]] = [[]]
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            if line == marker:
                results.append([])
            else:
                results[-1].append(line.split("\t"))
        return results[: len(statements)]


def _option_value(value: str) -> str:
    # Option files read a double-quoted value with backslash escapes; quoting keeps '#', spaces
    # and '=' in a password from being taken for comments or separators.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@contextmanager
def session(
    conn: DbConnection, tools: MariaDbTools | None = None, base_dir: str | None = None
) -> Iterator[Session]:
    """A private directory (adapters/scratch.py: the function's prefix, locked while in use) with
    the connection's option file; removed in every outcome."""
    with scratch.directory(base_dir) as workdir:
        defaults = workdir / "client.cnf"
        fd = os.open(defaults, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(
                "[client]\n"
                f"host={_option_value(conn.host)}\n"
                f"port={int(conn.port)}\n"
                f"user={_option_value(conn.username)}\n"
                f"password={_option_value(conn.password)}\n"
            )
        yield Session(workdir, defaults, conn.password, tools or MariaDbTools())


def in_list(names: Iterable[str]) -> str:
    """Names as a SQL list of string literals, for ``IN (...)``."""
    quoted = ("'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'" for name in names)
    return ", ".join(quoted)


def inspect_server(db: Session, databases: Sequence[str]) -> ServerInfo:
    """Version, binary logging and the base tables of ``databases``; fails before any dump when
    one of them does not exist."""
    if not databases:
        raise DatabasesMissing("no database to back up")
    names = in_list(databases)
    ((version, log_bin),), schemas, rows = db.query_many(
        [
            "SELECT VERSION(), @@log_bin",
            # B608: the names are quoted (in_list/_qualified), never raw input.
            f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({names})",  # nosec B608
            # B608: the names are quoted (in_list/_qualified), never raw input.
            "SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(ENGINE, ''), IFNULL(TABLE_ROWS, 0),"  # nosec B608
            " IFNULL(DATA_LENGTH, 0) + IFNULL(INDEX_LENGTH, 0) FROM information_schema.TABLES"
            f" WHERE TABLE_SCHEMA IN ({names}) AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE')"
            " ORDER BY TABLE_SCHEMA, TABLE_NAME",
        ]
    )
    present = {row[0] for row in schemas}
    missing = [name for name in databases if name not in present]
    if missing:
        raise DatabasesMissing(f"databases not found on the server: {', '.join(missing)}")
    tables = [TableInfo(s, n, e, int(r), int(b)) for s, n, e, r, b in rows]
    return ServerInfo(version=version, binlog_enabled=log_bin == "1", tables=tables)


def inspect(
    conn: DbConnection, databases: Sequence[str], tools: MariaDbTools | None = None
) -> ServerInfo:
    """inspect_server in a session of its own."""
    with session(conn, tools) as db:
        return inspect_server(db, databases)


def estimate_size(
    conn: DbConnection, databases: Sequence[str], tools: MariaDbTools | None = None
) -> int:
    """Bytes the databases occupy on the server (data + indexes): the first guess of a dump's
    size when no earlier backup says better. Raises DatabasesMissing like a dump would."""
    return inspect(conn, databases, tools).size_bytes


def client_version(tools: MariaDbTools | None = None) -> str:
    return _version_of((tools or MariaDbTools()).dump)


@functools.cache
def _version_of(binary: str) -> str:
    """The tool's version, asked once per process (a warm function keeps its binaries)."""
    # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
    done = subprocess.run(  # nosec B603
        [shutil.which(binary) or binary, "--version"],
        capture_output=True,
        env={"LC_ALL": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.stdout.decode("utf-8", "replace").strip()
