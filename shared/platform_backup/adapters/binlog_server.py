"""The protected server's binary log over the replication protocol: its status, closing the
current file, and one closed file's raw bytes (``mariadb-binlog --read-from-remote-server --raw``),
never the server's disk. Credentials go through the client's option file (adapters/mariadb.py).

``--raw`` writes to ``<result-file prefix><file name>``; that name is made a symlink to the tool's
own stdout, so the bytes stream through a pipe and never land on the function's disk. Given one
file and no ``--to-last-log``, the tool stops at that file's end (measured on 10.11).
"""

from __future__ import annotations

import contextlib
import shutil

# B404: the MariaDB tools run as argv lists, never through a shell.
import subprocess  # nosec B404
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from platform_backup.adapters.mariadb import DbConnection, MariaDbTools, Session, session
from platform_backup.errors import DependencyFailed
from platform_backup.services.ports import BinlogFile, BinlogServerStatus

BINLOG_TOOL = "mariadb-binlog"
CHUNK = 1 << 20


class BinlogFetchFailed(DependencyFailed):
    """A binary-log file could not be read whole from the server."""

    code = "BinlogFetchFailed"


def _files(rows: list[list[str]]) -> tuple[BinlogFile, ...]:
    return tuple(BinlogFile(row[0], int(row[1])) for row in rows if len(row) >= 2)


class MariaDbBinlogSource:
    def __init__(
        self,
        connection: Callable[[], DbConnection],
        tools: MariaDbTools | None = None,
        binlog_tool: str = BINLOG_TOOL,
    ) -> None:
        self._connection = connection
        self._tools = tools or MariaDbTools()
        self._binlog_tool = binlog_tool

    def status(self) -> BinlogServerStatus:
        with session(self._connection(), self._tools) as db:
            ((log_bin, fmt, server_id, expire, days),) = db.query(
                "SELECT @@log_bin, @@binlog_format, @@server_id,"
                " @@binlog_expire_logs_seconds, @@expire_logs_days"
            )
            files = _files(db.query("SHOW BINARY LOGS")) if log_bin == "1" else ()
        # The server keeps binary logs for binlog_expire_logs_seconds, or expire_logs_days when
        # only that is set (10.6+ keep the two in step; older servers know only the days).
        seconds = int(expire) or int(float(days) * 86400)
        return BinlogServerStatus(
            log_bin=log_bin == "1",
            binlog_format=fmt.upper(),
            server_id=int(server_id),
            files=files,
            expire_seconds=seconds,
        )

    def rotate(self) -> datetime:
        with session(self._connection(), self._tools) as db:
            # One client session: the time is read, then the file being written is closed.
            ((now,),) = db.query_many(["SELECT UTC_TIMESTAMP(6)", "FLUSH BINARY LOGS"])[0]
        return datetime.fromisoformat(now).replace(tzinfo=UTC)

    def fetch(self, file: str) -> Iterator[bytes]:
        with session(self._connection(), self._tools) as db:
            size = self._size(db, file)
            yield from self._stream(db, file, size)

    def _size(self, db: Session, file: str) -> int:
        for found in _files(db.query("SHOW BINARY LOGS")):
            if found.name == file:
                return found.size
        raise BinlogFetchFailed(f"binary log {file} is no longer on the server")

    def _stream(self, db: Session, file: str, size: int) -> Iterator[bytes]:
        if "/" in file or file.startswith("."):
            raise BinlogFetchFailed(f"'{file}' is not a binary log file name")
        out_dir = db.workdir / "binlog"
        out_dir.mkdir(mode=0o700)
        (out_dir / file).symlink_to("/dev/stdout")
        binary = shutil.which(self._binlog_tool) or self._binlog_tool
        argv = db.argv(
            binary,
            "--read-from-remote-server",
            "--raw",
            f"--result-file={out_dir}/",
            file,
        )
        # Its few lines of errors go to a file, so a full stderr pipe can never stall the stream.
        errors = db.workdir / "binlog.err"
        try:
            with errors.open("wb") as err:
                # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
                process = subprocess.Popen(  # nosec B603
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env=db.child_env(),
                )
        except OSError as exc:
            raise BinlogFetchFailed(f"cannot run {self._binlog_tool}: {exc}") from None
        received = 0
        try:
            assert process.stdout is not None  # nosec B101  # narrows a type, not a check
            while chunk := process.stdout.read(CHUNK):
                received += len(chunk)
                yield chunk
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                with contextlib.suppress(OSError):
                    process.stdout.close()
        if code != 0:
            reason = db.redact(errors.read_text("utf-8", "replace").strip())
            raise BinlogFetchFailed(f"{self._binlog_tool} failed reading {file}: {reason}")
        if received != size:
            raise BinlogFetchFailed(
                f"{file} came to {received} bytes but the server lists it at {size}: incomplete"
            )
