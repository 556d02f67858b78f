"""One consistent dump of the platform databases, streamed into S3: mariadb-dump's output is
compressed, hashed, spooled and uploaded as it comes, with memory that does not grow with the
database, and completed only once the dump is known to be whole.

Threads: one empties the dump's pipe into a ring of reused buffers as fast as the dump tool
fills it; one, at a lower priority than the dump tool's, compresses (zstandard, zlib and hashlib
release the GIL on big buffers, so this overlaps with the upload); one, at that lower priority
too, uploads the parts and fails over; one reports progress on a clock, so a stalled dump still
reports. The caller's thread waits for them.

Per byte of SQL the pipeline does only what it must: one read into a reused buffer and one
compression. Progress comes from mariadb-dump itself (``--verbose`` names each table on stderr
as it starts on its rows), not from scanning the SQL. Per compressed byte: the SHA-256, the spool
write and one copy into a part buffer; the part buffers are a fixed pool, so memory is the same
for any size of database.
"""

from __future__ import annotations

import array
import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import queue
import re
import select
import shutil
import subprocess
import termios
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import zstandard
from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.mariadb import (
    DbConnection,
    MariaDbTools,
    ServerInfo,
    Session,
    client_version,
    inspect_server,
    session,
)
from platform_backup.adapters.mysql_restore import manifest_objects
from platform_backup.errors import DependencyFailed

Compression = Literal["zstd", "gzip"]

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
# mariadb-dump writes its stdout through stdio, which writes a pipe 4 KiB at a time: 285,000
# writes, and as many wake-ups of the reader, per GB. coreutils' stdbuf gives it a 1 MiB buffer
# (measured: 0.3 CPU-s less for the dump tool per GB, on cores it shares with the pipeline).
OUTPUT_BUFFER: tuple[str, ...] = ("stdbuf", "-o", "1M")
# Only with binary logging on (mariadb-dump refuses them otherwise): the position goes into the
# dump as comments, and MariaDB reads it from the snapshot, so no FLUSH TABLES WITH READ LOCK.
BINLOG_OPTIONS: tuple[str, ...] = ("--master-data=2", "--gtid")

# zstd -1 is about half the CPU of -3 for a 5% bigger object; on two cores shared with the dump
# tool and the server, CPU is what the backup's duration is made of.
LEVELS: dict[str, int] = {"zstd": 1, "gzip": 6}
# At the default level, a 128 KiB window and a 2 K-entry hash table: both stay in the core's
# cache. On make bench's SQL, 16% less CPU than plain -1 for a 0.3% bigger object; restoring
# needs only a 128 KiB window. Keys are python-zstandard's parameter names.
ZSTD_TUNING: dict[str, int] = {"window_log": 17, "hash_log": 11}
# The same, as the manifest records them (zstd's camel-cased names).
_TUNING_NAMES: dict[str, str] = {"window_log": "windowLog", "hash_log": "hashLog"}
CONTENT_TYPES: dict[str, str] = {"zstd": "application/zstd", "gzip": "application/gzip"}
SUFFIXES: dict[str, str] = {"zstd": ".sql.zst", "gzip": ".sql.gz"}

READ_SIZE = 1 << 20
# Read buffers between the pipe and the compression (see _Drain).
RING_BUFFERS = 16
PIPE_SIZE = 1 << 20
DEFAULT_PART_SIZE = 16 << 20
MAX_PARTS = 10_000
PROGRESS_INTERVAL = 1.0
# A read waits until the pipe holds this much (or the dump ended), sleeping this long at a time.
GULP = 512 << 10
GULP_WAIT = 0.002
# The compressing and uploading threads yield the CPU to the dump tool and the server (see
# _yielding).
COMPRESS_NICE = 19
# Part buffers: one being filled, one being uploaded, one ready to go.
POOL_PARTS = 3

_ROWS_STARTED = b"-- Retrieving rows..."
_VERBOSE_PREFIX = "-- "
_COMPLETED = b"-- Dump completed"
_HEAD_BYTES = 64 << 10
_BINLOG_FILE = re.compile(rb"MASTER_LOG_FILE='([^']+)',\s*MASTER_LOG_POS=(\d+)")
_GTID = re.compile(rb"gtid_slave_pos='([^']*)'")


class DumpFailed(DependencyFailed):
    """mariadb-dump failed, was cut off, or its output is not a whole dump; nothing was kept."""

    code = "DumpFailed"


class UploadFailed(DependencyFailed):
    """No destination could take the backup; each one's reason is in ``abandoned``."""

    code = "UploadFailed"

    def __init__(self, message: str, abandoned: list[Abandoned]) -> None:
        super().__init__(message)
        self.abandoned = abandoned


class FailoverNeedsRedump(UploadFailed):
    """The primary failed after parts left the stream and nothing was spooled to replay them:
    the fallback can only get the backup from a second dump."""

    code = "FailoverNeedsRedump"


@dataclass(frozen=True)
class Destination:
    """Where one copy may go. Each has its own client (its region, its credentials)."""

    bucket: str
    key: str
    client: Any = field(repr=False, compare=False)
    label: str = ""

    @property
    def manifest_key(self) -> str:
        return self.key + ".manifest.json"


@dataclass(frozen=True)
class Abandoned:
    """A destination given up on, and why (the S3 error code and message)."""

    destination: Destination
    reason: str
    cleanup_error: str | None = None


@dataclass(frozen=True)
class Progress:
    bytes_dumped: int
    compressed_bytes: int
    tables_done: int
    tables_total: int


@dataclass(frozen=True)
class BackupResult:
    destination: Destination
    abandoned: list[Abandoned]
    raw_bytes: int
    compressed_bytes: int
    sha256: str
    compression: Compression
    manifest: dict[str, Any]
    started_at: datetime
    finished_at: datetime

    @property
    def failover_reason(self) -> str | None:
        if not self.abandoned:
            return None
        return "; ".join(f"{a.destination.bucket}: {a.reason}" for a in self.abandoned)


def part_size_for(expected_bytes: int | None) -> int:
    """Parts big enough that S3's 10,000-part limit holds with room to spare."""
    if not expected_bytes:
        return DEFAULT_PART_SIZE
    needed = -(-expected_bytes * 2 // (MAX_PARTS // 2))
    return max(DEFAULT_PART_SIZE, (needed + (1 << 20) - 1) & ~((1 << 20) - 1))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


class _DumpWatch:
    """Keeps what the dump's text says at its ends: the binlog position (in the head) and
    whether the stream ended with mariadb-dump's completion line. The middle is only counted."""

    def __init__(self) -> None:
        self.raw_bytes = 0
        self._head = bytearray()
        self._tail = b""

    def feed(self, chunk: memoryview) -> None:
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
        }


class _PipeReader:
    """Reads the dump's pipe in gulps. A plain blocking read wakes up for every write of
    mariadb-dump (4 KiB without OUTPUT_BUFFER: 80,000 context switches per GB, measured, which
    cost the dump tool more system time than the compression took). Waiting until the pipe
    holds half a read takes the same bytes in about 2,500 reads, whatever the writes' size."""

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


class _Drain(threading.Thread):
    """Empties the dump's pipe into a ring of buffers as fast as the dump tool fills it, at the
    caller's priority, for the compression to take at its lower one. A pipe holds 1 MiB (more
    needs privileges Lambda does not give), so whenever the compression paused for the dump
    tool and the server, the dump tool blocked on a full pipe: 11% of its time (measured in
    make bench). The ring lets the compression fall behind by RING_BUFFERS MiB instead."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="dump-read", daemon=True)
        self._reader = _PipeReader(fd)
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(RING_BUFFERS):
            self._free.put(bytearray(READ_SIZE))
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


class _TableLog:
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


def _error_text(stderr: str) -> str:
    """mariadb-dump's stderr without the ``--verbose`` progress lines."""
    return "\n".join(
        line for line in stderr.splitlines() if not line.startswith(_VERBOSE_PREFIX)
    ).strip()


class _PartView(io.RawIOBase):
    """A part's bytes in a pooled buffer, read by botocore like a file (it seeks back to retry)
    without a copy into a new object."""

    def __init__(self, data: memoryview) -> None:
        super().__init__()
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), len(self._data) - self._pos)
        buffer[:size] = self._data[self._pos : self._pos + size]
        self._pos += size
        return size

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class _Part:
    number: int
    offset: int
    buffer: bytearray
    size: int

    @property
    def data(self) -> memoryview:
        return memoryview(self.buffer)[: self.size]


_FINISH = object()
_STOP = object()


class _FailoverUploader(threading.Thread):
    """Uploads parts to the first destination that takes them. When one fails, its multipart
    upload is aborted and the parts it had are replayed from the spool to the next. Runs at the
    compression's lower priority (see _yielding)."""

    def __init__(
        self,
        targets: Sequence[Destination],
        spool_path: Path | None,
        content_type: str,
        manifest_for: Callable[[Destination], bytes],
        part_size: int,
    ) -> None:
        super().__init__(name="dump-upload", daemon=True)
        self.targets = list(targets)
        self.queue: queue.Queue[object] = queue.Queue()
        # The producer fills these and the upload gives them back: the only part-sized memory.
        self.free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(POOL_PARTS):
            self.free.put(bytearray(part_size))
        self.error: BaseException | None = None
        self.result: Destination | None = None
        self.abandoned: list[Abandoned] = []
        self._content_type = content_type
        self._manifest_for = manifest_for
        self._spool_path = spool_path
        self._index = 0
        self._upload_id: str | None = None
        self._done: list[dict[str, Any]] = []
        self._layout: list[tuple[int, int]] = []
        self._stopping = threading.Event()

    # -- the producer's side

    def put(self, item: object) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def buffer(self) -> bytearray:
        """A free part buffer; waits while all of them are queued or uploading."""
        while True:
            if self.error is not None:
                raise self.error
            try:
                return self.free.get(timeout=0.2)
            except queue.Empty:
                continue

    def stop(self) -> None:
        """Abandon the upload: whatever is open is aborted, nothing is completed."""
        self._stopping.set()
        if self.is_alive():
            with contextlib.suppress(BaseException):
                self.put(_STOP)
            self.join()

    # -- the thread

    def run(self) -> None:
        _lower_priority()
        try:
            while True:
                item = self.queue.get()
                if item is _STOP or self._stopping.is_set():
                    break
                if item is _FINISH:
                    self._finish()
                    return
                assert isinstance(item, _Part)
                self._layout.append((item.offset, item.size))
                self._deliver(item)
                self.free.put(item.buffer)
        except BaseException as exc:
            self.error = exc
        self._abort_open()

    @property
    def _dest(self) -> Destination:
        return self.targets[self._index]

    def _deliver(self, part: _Part) -> None:
        while True:
            try:
                if self._upload_id is None:
                    self._open(part.number - 1)
                self._upload_part(part.number, part.data)
                return
            except (ClientError, BotoCoreError) as exc:
                self._abandon(exc)

    def _finish(self) -> None:
        while True:
            completed = False
            try:
                if self._upload_id is None:
                    self._open(len(self._layout))
                dest = self._dest
                dest.client.complete_multipart_upload(
                    Bucket=dest.bucket,
                    Key=dest.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._done},
                )
                self._upload_id = None
                completed = True
                dest.client.put_object(
                    Bucket=dest.bucket,
                    Key=dest.manifest_key,
                    Body=self._manifest_for(dest),
                    ContentType="application/json",
                    ChecksumAlgorithm="SHA256",
                )
                self.result = dest
                return
            except (ClientError, BotoCoreError) as exc:
                if completed:
                    # The object without its manifest is no backup: take it back, move on.
                    with contextlib.suppress(ClientError, BotoCoreError):
                        self._dest.client.delete_object(
                            Bucket=self._dest.bucket, Key=self._dest.key
                        )
                self._abandon(exc)

    def _open(self, replay_parts: int) -> None:
        dest = self._dest
        created = dest.client.create_multipart_upload(
            Bucket=dest.bucket,
            Key=dest.key,
            ContentType=self._content_type,
            ChecksumAlgorithm="CRC32",
        )
        self._upload_id = created["UploadId"]
        self._done = []
        if replay_parts and self._spool_path is None:
            raise FailoverNeedsRedump(
                f"{self.abandoned[-1].destination.bucket} failed after {replay_parts} parts and"
                " no spool holds them: the fallback needs a second dump",
                self.abandoned,
            )
        if not replay_parts:
            return
        assert self._spool_path is not None
        with self._spool_path.open("rb") as spool:
            for number in range(1, replay_parts + 1):
                offset, size = self._layout[number - 1]
                self._upload_part(number, os.pread(spool.fileno(), size, offset))

    def _upload_part(self, number: int, data: bytes | memoryview) -> None:
        dest = self._dest
        crc = zlib.crc32(data).to_bytes(4, "big")
        response = dest.client.upload_part(
            Bucket=dest.bucket,
            Key=dest.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=_PartView(memoryview(data)),
            ChecksumAlgorithm="CRC32",
            ChecksumCRC32=_b64(crc),
        )
        self._done.append(
            {"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32": _b64(crc)}
        )

    def _abandon(self, exc: BaseException) -> None:
        dest = self._dest
        cleanup_error = self._abort_open()
        self.abandoned.append(Abandoned(dest, _reason(exc), cleanup_error))
        self._index += 1
        if self._index >= len(self.targets):
            summary = "; ".join(f"{a.destination.bucket}: {a.reason}" for a in self.abandoned)
            raise UploadFailed(f"no storage could take the backup ({summary})", self.abandoned)

    def _abort_open(self) -> str | None:
        if self._upload_id is None:
            return None
        dest, upload_id = self._dest, self._upload_id
        self._upload_id = None
        try:
            dest.client.abort_multipart_upload(Bucket=dest.bucket, Key=dest.key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            return f"abort of the incomplete upload failed: {_reason(exc)}"
        return None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class _Ticker(threading.Thread):
    """Calls the progress callback on a clock. If the callback raises (the caller wants the run
    stopped: lease lost, out of time), the dump is killed and its error re-raised by the run."""

    def __init__(
        self, callback: Callable[[Progress], None], snapshot: Callable[[], Progress]
    ) -> None:
        super().__init__(name="dump-progress", daemon=True)
        self.callback = callback
        self.snapshot = snapshot
        self.error: BaseException | None = None
        self.on_error: Callable[[], None] = lambda: None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(PROGRESS_INTERVAL):
            try:
                self.callback(self.snapshot())
            except BaseException as exc:
                self.error = exc
                self.on_error()
                return

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()


def _zstd_tuning(kind: Compression, level: int) -> dict[str, int]:
    return ZSTD_TUNING if kind == "zstd" and level == LEVELS["zstd"] else {}


def _yielding(work: Callable[[], None]) -> None:
    """Runs ``work`` in a thread of its own at the lowest priority (nice 19); re-raises what
    it raised. The dump tool is the backup's critical path: it holds the snapshot open and the
    server feeds it, and on two cores compression that competes with them on equal terms slowed
    the dump by a second per GB (measured in make bench). At a lower priority, compression
    takes the CPU they leave; when it falls behind, the read ring (_Drain) fills, then the
    pipe, the dump tool waits, and the freed CPU comes back to it. The upload thread lowers
    itself the same way. Only these threads are lowered (a thread cannot raise its priority
    again), so the function's own thread keeps its priority for the next invocation."""
    with ThreadPoolExecutor(1, "dump-compress", initializer=_lower_priority) as worker:
        worker.submit(work).result()


def _lower_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMPRESS_NICE)


def _compressor(kind: Compression, level: int) -> Any:
    if kind == "zstd":
        params = zstandard.ZstdCompressionParameters.from_level(level, **_zstd_tuning(kind, level))
        return zstandard.ZstdCompressor(compression_params=params).compressobj()
    return zlib.compressobj(level, zlib.DEFLATED, 31)


def dump_options(server: ServerInfo) -> list[str]:
    return [*DUMP_OPTIONS, *(BINLOG_OPTIONS if server.binlog_enabled else ())]


def run_backup(
    conn: DbConnection,
    databases: Sequence[str],
    targets: Sequence[Destination],
    *,
    backup_id: str,
    plan_id: str,
    compression: Compression = "zstd",
    level: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    expected_bytes: int | None = None,
    part_size: int | None = None,
    spool: bool = True,
    work_dir: str | None = None,
    tools: MariaDbTools | None = None,
) -> BackupResult:
    """Dumps ``databases`` once and stores the compressed dump and its manifest at the first of
    ``targets`` that takes them (the next one takes over, from the spool, when one fails).

    Raises DatabasesMissing or DatabaseUnavailable before dumping, DumpFailed when the dump did
    not end whole, UploadFailed when no target took it (FailoverNeedsRedump when ``spool`` is
    off and a target failed mid-way), or whatever ``progress`` raised. Whatever the outcome, no
    incomplete multipart upload, no spool and no option file are left behind.
    """
    if not targets:
        raise ValueError("at least one destination")
    started_at = datetime.now(UTC)
    with session(conn, tools, base_dir=work_dir) as db:
        server = inspect_server(db, databases)
        return _Run(
            db, list(databases), server, targets, compression, level, spool, started_at
        ).execute(
            backup_id=backup_id,
            plan_id=plan_id,
            progress=progress,
            part_size=part_size or part_size_for(expected_bytes),
        )


class _Run:
    def __init__(
        self,
        db: Session,
        databases: list[str],
        server: ServerInfo,
        targets: Sequence[Destination],
        compression: Compression,
        level: int | None,
        spool: bool,
        started_at: datetime,
    ) -> None:
        self.db = db
        self.databases = databases
        self.server = server
        self.targets = targets
        self.compression = compression
        self.level = LEVELS[compression] if level is None else level
        self.spool_path = db.workdir / "spool" if spool else None
        self.started_at = started_at
        self.watch = _DumpWatch()
        self.stderr_path = db.workdir / "dump.err"
        self.tables = _TableLog(self.stderr_path)
        self.compressed_bytes = 0
        self.sha256 = hashlib.sha256()
        self.dump_whole = False
        self.options = dump_options(server)
        # Listed before the dump, for the restore's verification (adapters/mysql_restore.py).
        self.objects = manifest_objects(db, databases)

    def progress(self) -> Progress:
        total = len(self.server.tables)
        # A table is done once the next one has started; the last one once the dump is whole.
        started = self.tables.poll()
        done = total if self.dump_whole else min(max(started - 1, 0), total)
        return Progress(
            bytes_dumped=self.watch.raw_bytes,
            compressed_bytes=self.compressed_bytes,
            tables_done=done,
            tables_total=total,
        )

    def execute(
        self,
        *,
        backup_id: str,
        plan_id: str,
        progress: Callable[[Progress], None] | None,
        part_size: int,
    ) -> BackupResult:
        manifest: dict[str, Any] = {}

        def manifest_for(dest: Destination) -> dict[str, Any]:
            return {**manifest, "objectKey": dest.key}

        uploader = _FailoverUploader(
            self.targets,
            self.spool_path,
            CONTENT_TYPES[self.compression],
            lambda dest: json.dumps(manifest_for(dest), indent=1).encode(),
            part_size,
        )
        spool_fd = (
            os.open(self.spool_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            if self.spool_path
            else None
        )
        binary = shutil.which(self.db.tools.dump) or self.db.tools.dump
        buffered = OUTPUT_BUFFER if shutil.which(OUTPUT_BUFFER[0]) else ()
        with self.stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                [
                    *buffered,
                    *self.db.argv(
                        binary, *self.options, *PROGRESS_OPTIONS, "--databases", *self.databases
                    ),
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=self.db.child_env(),
            )
        ticker = _Ticker(progress, self.progress) if progress else None
        assert proc.stdout is not None
        drain = _Drain(proc.stdout.fileno())
        try:
            drain.start()
            uploader.start()
            if ticker:
                ticker.on_error = proc.kill
                ticker.start()
            try:
                _yielding(lambda: self._stream(proc, drain, uploader, spool_fd, part_size))
            except DumpFailed:
                # The dump was killed because the caller asked for a stop: its reason wins.
                if ticker and ticker.error is not None:
                    raise ticker.error from None
                raise
            finally:
                if ticker:
                    ticker.stop()
            if ticker and ticker.error is not None:
                raise ticker.error
            manifest.update(self._manifest(backup_id, plan_id, datetime.now(UTC)))
            uploader.put(_FINISH)
            uploader.join()
            if uploader.error is not None:
                raise uploader.error
            assert uploader.result is not None
            if progress:
                progress(self.progress())
            return BackupResult(
                destination=uploader.result,
                abandoned=uploader.abandoned,
                raw_bytes=self.watch.raw_bytes,
                compressed_bytes=self.compressed_bytes,
                sha256=self.sha256.hexdigest(),
                compression=self.compression,
                manifest=manifest_for(uploader.result),
                started_at=self.started_at,
                finished_at=datetime.now(UTC),
            )
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            drain.stop()
            if proc.stdout:
                proc.stdout.close()
            if ticker:
                ticker.stop()
            uploader.stop()
            if spool_fd is not None:
                os.close(spool_fd)

    def _stream(
        self,
        proc: subprocess.Popen[bytes],
        drain: _Drain,
        uploader: _FailoverUploader,
        spool_fd: int | None,
        part_size: int,
    ) -> None:
        compressor = _compressor(self.compression, self.level)
        part = uploader.buffer()
        filled = 0
        part_offset = 0
        number = 0

        def ship() -> None:
            nonlocal part, filled, part_offset, number
            number += 1
            uploader.put(_Part(number, part_offset, part, filled))
            part_offset += filled
            filled = 0

        def emit(data: bytes) -> None:
            nonlocal part, filled
            self.sha256.update(data)
            if spool_fd is not None:
                os.write(spool_fd, data)
            self.compressed_bytes += len(data)
            view, taken = memoryview(data), 0
            while taken < len(data):
                size = min(len(data) - taken, part_size - filled)
                part[filled : filled + size] = view[taken : taken + size]
                filled += size
                taken += size
                if filled == part_size:
                    ship()
                    part = uploader.buffer()

        for chunk in drain.chunks():
            self.watch.feed(chunk)
            if out := compressor.compress(chunk):
                emit(out)
        code = proc.wait()
        if code != 0:
            raise DumpFailed(f"mariadb-dump failed (exit {code}): {self._stderr_tail()}")
        if not self.watch.completed:
            raise DumpFailed("the dump ended without mariadb-dump's completion line")
        self.dump_whole = True
        emit(compressor.flush())
        if filled:
            ship()

    def _stderr_tail(self) -> str:
        text = _error_text(self.stderr_path.read_bytes().decode("utf-8", "replace"))
        return self.db.redact(text[-2000:]) or "no error output"

    def _manifest(self, backup_id: str, plan_id: str, dumped_at: datetime) -> dict[str, Any]:
        tables = self.server.tables
        return {
            "formatVersion": 1,
            "backupId": backup_id,
            "planId": plan_id,
            "startedAt": self.started_at.isoformat(),
            "dumpFinishedAt": dumped_at.isoformat(),
            "serverVersion": self.server.version,
            "clientVersion": client_version(self.db.tools),
            "databases": self.databases,
            "tables": [
                {
                    "database": t.database,
                    "name": t.name,
                    "engine": t.engine,
                    "rowsEstimate": t.rows_estimate,
                    "sizeBytes": t.size_bytes,
                    "consistent": t.transactional,
                }
                for t in tables
            ],
            "nonTransactionalTables": [
                f"{t.database}.{t.name}" for t in tables if not t.transactional
            ],
            "rawBytes": self.watch.raw_bytes,
            "compressedBytes": self.compressed_bytes,
            "sha256": self.sha256.hexdigest(),
            "compression": {
                "algorithm": self.compression,
                "level": self.level,
                **{
                    _TUNING_NAMES[name]: value
                    for name, value in _zstd_tuning(self.compression, self.level).items()
                },
            },
            "binlog": self.watch.binlog(),
            "dumpOptions": self.options,
            **self.objects,
        }
