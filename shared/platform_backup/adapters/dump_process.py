"""Running mariadb-dump: its options, the process, the pipe it writes, and what its output and
stderr say (the binlog position, whether the dump is whole, which table it has reached)."""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import queue
import re
import select
import shutil

# B404: the MariaDB tools run as argv lists, never through a shell.
import subprocess  # nosec B404
import termios
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from platform_backup.adapters.buffer_pool import RING
from platform_backup.adapters.mariadb import ServerInfo, Session
from platform_backup.errors import DependencyFailed

# A consistent InnoDB snapshot without a global lock; rows streamed, not buffered in the client;
# every object type; binary columns as hex so the SQL text survives any transcoding.
DUMP_OPTIONS: tuple[str, ...] = (
    "--single-transaction",
    "--quick",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    "--default-character-set=utf8mb4",
)
# Progress: mariadb-dump says on stderr when it starts on each table's rows ("-- Retrieving
# rows..."). It changes nothing in the dump itself.
PROGRESS_OPTIONS: tuple[str, ...] = ("--verbose",)
# 1 MiB stdio writes to the pipe instead of 4 KiB ones (docs/decisions.md, "The pipeline").
OUTPUT_BUFFER: tuple[str, ...] = ("stdbuf", "-o", "1M")
# Only with binary logging on (mariadb-dump refuses them otherwise): the position goes into the
# dump as comments, and MariaDB reads it from the snapshot, so no FLUSH TABLES WITH READ LOCK.
BINLOG_OPTIONS: tuple[str, ...] = ("--master-data=2", "--gtid")

READ_SIZE = 1 << 20
# Read buffers between the pipe and the compression (see Drain).
RING_BUFFERS = 16
PIPE_SIZE = 1 << 20
# A read waits until the pipe holds this much (or the dump ended), sleeping this long at a time.
GULP = 512 << 10
GULP_WAIT = 0.002

_ROWS_STARTED = b"-- Retrieving rows..."
_VERBOSE_PREFIX = "-- "
_COMPLETED = b"-- Dump completed"
_HEAD_BYTES = 64 << 10
_BINLOG_FILE = re.compile(rb"MASTER_LOG_FILE='([^']+)',\s*MASTER_LOG_POS=(\d+)")
_GTID = re.compile(rb"gtid_slave_pos='([^']*)'")


class DumpFailed(DependencyFailed):
    """mariadb-dump failed, was cut off, or its output is not a whole dump; nothing was kept."""

    code = "DumpFailed"


def dump_options(server: ServerInfo) -> list[str]:
    return [*DUMP_OPTIONS, *(BINLOG_OPTIONS if server.binlog_enabled else ())]


def start_dump(
    db: Session, options: Sequence[str], databases: Sequence[str], stderr_path: Path
) -> subprocess.Popen[bytes]:
    """mariadb-dump writing the dump to a pipe and its stderr (progress included) to a file."""
    binary = shutil.which(db.tools.dump) or db.tools.dump
    buffered = OUTPUT_BUFFER if shutil.which(OUTPUT_BUFFER[0]) else ()
    with stderr_path.open("wb") as stderr:
        # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
        return subprocess.Popen(  # nosec B603
            [
                *buffered,
                *db.argv(binary, *options, *PROGRESS_OPTIONS, "--databases", *databases),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=db.child_env(),
        )


def dump_error(db: Session, stderr_path: Path) -> str:
    """The end of mariadb-dump's stderr without its ``--verbose`` progress lines, redacted."""
    stderr = stderr_path.read_bytes().decode("utf-8", "replace")
    text = "\n".join(
        line for line in stderr.splitlines() if not line.startswith(_VERBOSE_PREFIX)
    ).strip()
    return db.redact(text[-2000:]) or "no error output"


class DumpWatch:
    """Keeps what the dump's text says at its ends: the binlog position (in the head) and
    whether the stream ended with mariadb-dump's completion line. The middle is only counted."""

    def __init__(self) -> None:
        self.raw_bytes = 0
        self._head = bytearray()
        self._tail = b""
        # When the dump's first bytes came: its snapshot (and binlog position) was taken before.
        self._first_at: datetime | None = None

    def feed(self, chunk: memoryview) -> None:
        if self._first_at is None:
            self._first_at = datetime.now(UTC)
        self.raw_bytes += len(chunk)
        if len(self._head) < _HEAD_BYTES:
            self._head += chunk[: _HEAD_BYTES - len(self._head)]
        if len(chunk) >= 256:
            self._tail = bytes(chunk[-256:])
        else:
            self._tail = (self._tail + bytes(chunk))[-256:]

    @property
    def completed(self) -> bool:
        last_line = self._tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return last_line.startswith(_COMPLETED)

    def binlog(self) -> dict[str, Any] | None:
        found = _BINLOG_FILE.search(self._head)
        gtid = _GTID.search(self._head)
        if not found and not gtid:
            return None
        return {
            "file": found.group(1).decode() if found else None,
            "position": int(found.group(2)) if found else None,
            "gtid": gtid.group(1).decode() if gtid else None,
            "observedAt": self._first_at.isoformat() if self._first_at else None,
        }


class _PipeReader:
    """Reads the dump's pipe in gulps of half a read rather than on every write of the dump
    tool (docs/decisions.md, "The pipeline")."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLHUP)
        self._available = array.array("i", [0])

    def _pending(self) -> int:
        fcntl.ioctl(self._fd, termios.FIONREAD, self._available)
        return self._available[0]

    def readinto(self, buffer: bytearray) -> int:
        if self._pending() < GULP:
            self._poll.poll()  # data, or the writer's end closed
            if self._pending() < GULP:
                time.sleep(GULP_WAIT)
        return os.readv(self._fd, [buffer])


class Drain(threading.Thread):
    """Empties the dump's pipe into a ring of RING_BUFFERS buffers at the caller's priority, so
    the dump tool does not block on a full pipe while the compression yields to it
    (docs/decisions.md, "The pipeline")."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="dump-read", daemon=True)
        self._reader = _PipeReader(fd)
        self._free: queue.Queue[bytearray] = queue.Queue()
        for buffer in RING.take(READ_SIZE, RING_BUFFERS):
            self._free.put(buffer)
        self._filled: queue.Queue[tuple[bytearray, int] | BaseException | None] = queue.Queue()
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                try:
                    buffer = self._free.get(timeout=0.2)
                except queue.Empty:
                    continue
                size = self._reader.readinto(buffer)
                if not size:
                    break
                self._filled.put((buffer, size))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._filled.put(exc)
            return
        self._filled.put(None)

    def chunks(self) -> Iterator[memoryview]:
        """The dump's bytes in the order they came; each chunk is valid until the next."""
        while (item := self._filled.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            buffer, size = item
            yield memoryview(buffer)[:size]
            self._free.put(buffer)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()
        kept: list[bytearray] = []
        for waiting in (self._free, self._filled):
            while not waiting.empty():
                item = waiting.get_nowait()
                if isinstance(item, bytearray):
                    kept.append(item)
                elif isinstance(item, tuple):
                    kept.append(item[0])
        RING.give(kept)


class TableLog:
    """Counts the tables mariadb-dump has started on, from what ``--verbose`` writes to its
    stderr file; read from wherever progress is asked for."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._rest = b""
        self._lock = threading.Lock()
        self.started = 0

    def poll(self) -> int:
        with self._lock:
            with contextlib.suppress(FileNotFoundError), self._path.open("rb") as log:
                log.seek(self._offset)
                data = self._rest + log.read()
                self._offset = log.tell()
                whole = data.rfind(b"\n") + 1
                self.started += data.count(_ROWS_STARTED, 0, whole)
                self._rest = data[whole:]
            return self.started
