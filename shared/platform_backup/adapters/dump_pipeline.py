"""run_backup: one consistent dump of the platform databases, streamed into S3 with memory that
does not grow with the database, and completed only once the dump is known to be whole.

Threads: one drains the dump's pipe into a ring (adapters/dump_process.py); one, at a lower
priority than the dump tool's, compresses, hashes, spools and fills parts
(adapters/compression.py); one, lowered too, uploads them and fails over
(adapters/failover_upload.py); one reports progress on a clock, so a stalled dump still reports.
The caller's thread waits for them. Why each step is as it is: docs/decisions.md, "The pipeline".
"""

from __future__ import annotations

import hashlib
import os

# B404: the MariaDB tools run as argv lists, never through a shell.
import subprocess  # nosec B404
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from platform_backup.adapters.backup_manifest import (
    build_manifest,
    manifest_bytes,
    manifest_objects,
)
from platform_backup.adapters.compression import (
    CONTENT_TYPES,
    LEVELS,
    Compression,
    compressor,
    described,
)
from platform_backup.adapters.db_privileges import check_dump_rights
from platform_backup.adapters.dump_frames import FramedZstd, SectionCutter
from platform_backup.adapters.dump_process import (
    Drain,
    DumpFailed,
    DumpWatch,
    TableLog,
    dump_error,
    dump_options,
    start_dump,
)
from platform_backup.adapters.failover_upload import (
    Abandoned,
    Destination,
    FailoverUploader,
    Part,
    part_size_for,
)
from platform_backup.adapters.low_priority import run_yielding
from platform_backup.adapters.mariadb import (
    DbConnection,
    MariaDbTools,
    ServerInfo,
    Session,
    client_version,
    inspect_server,
    session,
)
from platform_backup.domain.frame_index import FrameIndex

PROGRESS_INTERVAL = 1.0


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

    @property
    def failover_reason(self) -> str | None:
        if not self.abandoned:
            return None
        return "; ".join(f"{a.destination.bucket}: {a.reason}" for a in self.abandoned)


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
    server: ServerInfo | None = None,
    framed: bool = True,
    execution_id: str | None = None,
    trigger: str | None = None,
) -> BackupResult:
    """Dumps ``databases`` once and stores the compressed dump and its manifest at the first of
    ``targets`` that takes them (the next one takes over, from the spool, when one fails).

    ``server``: the server as inspected moments ago for this run (else it is inspected here).
    ``framed`` (zstd only): the object is cut into frames at the dump's sections and the
    manifest gets their index (adapters/dump_frames.py); off, one frame as before.
    Raises DatabasesMissing, MissingPrivileges or DatabaseUnavailable before dumping, DumpFailed
    when the dump did not end whole, UploadFailed when no target took it (FailoverNeedsRedump
    when ``spool`` is off and a target failed mid-way), or whatever ``progress`` raised.
    Whatever the outcome, no incomplete multipart upload, no spool and no option file are left
    behind.
    """
    if not targets:
        raise ValueError("at least one destination")
    started_at = datetime.now(UTC)
    with session(conn, tools, base_dir=work_dir) as db:
        if server is None:
            server = inspect_server(db, databases)
        # Before any byte: mariadb-dump would leave out what it may not read, and exit 0.
        check_dump_rights(db, databases)
        run = _Run(db, list(databases), server, targets, compression, level, spool, started_at)
        run.framed = framed and compression == "zstd"
        return run.labelled(execution_id, trigger).execute(
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
        self.watch = DumpWatch()
        self.stderr_path = db.workdir / "dump.err"
        self.tables = TableLog(self.stderr_path)
        self.compressed_bytes = 0
        self.sha256 = hashlib.sha256()
        self.dump_whole = False
        self.options = dump_options(server)
        self.framed = False
        self.frame_index: FrameIndex | None = None
        # Listed before the dump, for the restore's verification (adapters/mysql_restore.py).
        self.objects = manifest_objects(db, databases)
        self.execution_id: str | None = None
        self.trigger: str | None = None

    def labelled(self, execution_id: str | None, trigger: str | None) -> _Run:
        """Which execution made the backup, and why: in the manifest, so a catalog rebuilt from
        storage knows them (services/catalog_rebuild.py)."""
        self.execution_id, self.trigger = execution_id, trigger
        return self

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

        uploader = FailoverUploader(
            self.targets,
            self.spool_path,
            CONTENT_TYPES[self.compression],
            lambda dest: manifest_bytes(manifest_for(dest)),
            part_size,
        )
        spool_fd = (
            os.open(self.spool_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            if self.spool_path
            else None
        )
        proc = start_dump(self.db, self.options, self.databases, self.stderr_path)
        ticker = _Ticker(progress, self.progress) if progress else None
        assert proc.stdout is not None  # nosec B101  # narrows a type, not a check
        drain = Drain(proc.stdout.fileno())
        try:
            drain.start()
            uploader.start()
            if ticker:
                ticker.on_error = proc.kill
                ticker.start()
            try:
                run_yielding(
                    lambda: self._stream(proc, drain, uploader, spool_fd, part_size),
                    "dump-compress",
                )
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
            # The last report, while a stop it raises can still abort the upload: once the
            # object is complete, the run records it.
            if progress:
                progress(self.progress())
            manifest.update(self._manifest(backup_id, plan_id, datetime.now(UTC)))
            uploader.finish()
            uploader.join()
            if uploader.error is not None:
                raise uploader.error
            assert uploader.result is not None  # nosec B101  # narrows a type, not a check
            return BackupResult(
                destination=uploader.result,
                abandoned=uploader.abandoned,
                raw_bytes=self.watch.raw_bytes,
                compressed_bytes=self.compressed_bytes,
                sha256=self.sha256.hexdigest(),
                compression=self.compression,
                manifest=manifest_for(uploader.result),
            )
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            drain.stop()
            uploader.release_buffers()
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
        drain: Drain,
        uploader: FailoverUploader,
        spool_fd: int | None,
        part_size: int,
    ) -> None:
        part = uploader.buffer()
        filled = 0
        part_offset = 0
        number = 0

        def ship() -> None:
            nonlocal part, filled, part_offset, number
            number += 1
            uploader.put(Part(number, part_offset, part, filled))
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

        if self.framed:
            cutter = SectionCutter(FramedZstd(self.level, emit))
            for chunk in drain.chunks():
                self.watch.feed(chunk)
                cutter.feed(chunk)
        else:
            compress = compressor(self.compression, self.level)
            for chunk in drain.chunks():
                self.watch.feed(chunk)
                if out := compress.compress(chunk):
                    emit(out)
        code = proc.wait()
        if code != 0:
            raise DumpFailed(
                f"mariadb-dump failed (exit {code}): {dump_error(self.db, self.stderr_path)}"
            )
        if not self.watch.completed:
            raise DumpFailed("the dump ended without mariadb-dump's completion line")
        self.dump_whole = True
        if self.framed:
            self.frame_index = cutter.finish()
        else:
            emit(compress.flush())
        if filled:
            ship()

    def _manifest(self, backup_id: str, plan_id: str, dumped_at: datetime) -> dict[str, Any]:
        return build_manifest(
            backup_id=backup_id,
            plan_id=plan_id,
            started_at=self.started_at,
            dump_finished_at=dumped_at,
            server=self.server,
            client_version=client_version(self.db.tools),
            databases=self.databases,
            raw_bytes=self.watch.raw_bytes,
            compressed_bytes=self.compressed_bytes,
            sha256=self.sha256.hexdigest(),
            compression=described(self.compression, self.level),
            binlog=self.watch.binlog(),
            dump_options=self.options,
            objects=self.objects,
            frame_index=self.frame_index,
            execution_id=self.execution_id,
            trigger=self.trigger,
        )
