"""Replaying archived binary-log segments onto a server: each segment's stored bytes (zstd) are
decompressed into ``mariadb-binlog`` (stdin; ``--start-position`` on the first only; every event
before the stop time, read in UTC), its text filtered down to the restored databases
(adapters/binlog_filter.py) and fed to one ``mariadb`` session, the password in its option file.
Memory does not grow with the binary log."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil

# B404: the MariaDB tools run as argv lists, never through a shell.
import subprocess  # nosec B404
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO

import zstandard

from platform_backup.adapters.binlog_event_index import EventIndex
from platform_backup.adapters.binlog_filter import BinlogTextFilter, ReplayRefused
from platform_backup.adapters.mariadb import DbConnection, MariaDbTools, Session, session
from platform_backup.adapters.mysql_restore import CLIENT_OPTIONS
from platform_backup.services.ports import Replayed

READ = 1 << 20
# Pipes of 1 MiB (Linux's default ceiling for anyone) instead of 64 KiB: a 16th of the reads,
# writes and wake-ups for the text and binary log passing through this process.
PIPE_BYTES = 1 << 20
# Tests swap the tools for wrappers that fail mid-way.
DEFAULT_TOOLS = MariaDbTools()

SegmentReader = Callable[[], Iterable[bytes]]


def binlog_argv(
    binary: str, first: bool, start_position: int, stop_before: datetime, names: Mapping[str, str]
) -> list[str]:
    stop = stop_before.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return [
        binary,
        "--no-defaults",
        f"--stop-datetime={stop}",
        *([f"--start-position={start_position}"] if first else []),
        *(f"--rewrite-db={old}->{new}" for old, new in sorted(names.items()) if old != new),
        "-",
    ]


def _widen(pipe: IO[bytes]) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _offset(progress: Callable[[int], None], base: int) -> Callable[[int], None]:
    return lambda fed: progress(base + fed)


class _Feeder(threading.Thread):
    """Decompresses one segment into ``mariadb-binlog``'s stdin, indexing its events first."""

    def __init__(self, read: SegmentReader, index: EventIndex, stdin: IO[bytes]) -> None:
        super().__init__(name="binlog-feed", daemon=True)
        self._read, self._index, self._stdin = read, index, stdin
        self.raw_bytes = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        try:
            for chunk in self._read():
                if self.stop.is_set():
                    return
                raw = decompressor.decompress(chunk)
                self._index.feed(raw)
                self._stdin.write(raw)
                self.raw_bytes += len(raw)
        except BrokenPipeError:
            pass  # mariadb-binlog reached the stop time and stopped reading
        except BaseException as exc:
            self.error = exc
        finally:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._stdin.close()


def replay(
    conn: DbConnection,
    segments: Sequence[SegmentReader],
    *,
    start_position: int,
    stop_before: datetime,
    names: Mapping[str, str],
    progress: Callable[[int], None],
    on_start: Callable[[], None],
) -> Replayed:
    """Replays ``segments`` in order into one client session. ``progress`` gets the binary-log
    bytes read so far and may raise to stop (every process is killed)."""
    tools = DEFAULT_TOOLS
    with session(conn, tools) as db:
        stderr_path = db.workdir / "client.err"
        with stderr_path.open("wb") as stderr:
            # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
            client = subprocess.Popen(  # nosec B603
                db.argv(shutil.which(tools.client) or tools.client, *CLIENT_OPTIONS),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=db.child_env(),
            )
        assert client.stdin is not None  # nosec B101  # narrows a type, not a check
        _widen(client.stdin)
        done = 0
        started = False
        try:
            for number, read in enumerate(segments):

                def send(text: bytes) -> None:
                    nonlocal started
                    if not text:
                        return
                    if not started:
                        on_start()
                        started = True
                    assert client.stdin is not None  # nosec B101  # narrows a type, not a check
                    client.stdin.write(text)

                done += _one(
                    db,
                    tools,
                    read,
                    number == 0,
                    start_position,
                    stop_before,
                    names,
                    send,
                    _offset(progress, done),
                )
            client.stdin.close()
        except BrokenPipeError:
            pass  # the client stopped reading: its exit code and error output say why
        except BaseException:
            client.kill()
            client.wait()
            raise
        code = client.wait()
        text = stderr_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()
        return Replayed(done, code, db.redact(text))


def _one(
    db: Session,
    tools: MariaDbTools,
    read: SegmentReader,
    first: bool,
    start_position: int,
    stop_before: datetime,
    names: Mapping[str, str],
    send: Callable[[bytes], None],
    progress: Callable[[int], None],
) -> int:
    """One segment through ``mariadb-binlog`` and the filter; its raw bytes."""
    index = EventIndex()
    text_filter = BinlogTextFilter(index, names)
    errors = db.workdir / "binlog.err"
    binary = shutil.which(tools.binlog) or tools.binlog
    with errors.open("wb") as stderr:
        # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
        proc = subprocess.Popen(  # nosec B603
            binlog_argv(binary, first, start_position, stop_before, names),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={"TZ": "UTC", "LC_ALL": "C.UTF-8", "HOME": str(db.workdir)},
        )
    assert proc.stdin is not None and proc.stdout is not None  # nosec B101  # narrows a type, not a check
    _widen(proc.stdin)
    _widen(proc.stdout)
    feeder = _Feeder(read, index, proc.stdin)
    feeder.start()
    try:
        while True:
            text = os.read(proc.stdout.fileno(), READ)
            if not text:
                break
            send(text_filter.feed(text))
            progress(feeder.raw_bytes)
        send(text_filter.finish())
        code = proc.wait()
    finally:
        feeder.stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        feeder.join()
    if feeder.error is not None:
        raise feeder.error
    if code != 0:
        reason = errors.read_bytes()[-2000:].decode("utf-8", "replace").strip()
        raise ReplayRefused(f"mariadb-binlog failed (exit {code}): {reason or 'no output'}")
    progress(feeder.raw_bytes)
    return feeder.raw_bytes


class MariaDbBinlogReplayer:
    """The BinlogReplayer port over ``replay``."""

    def replay(
        self,
        conn: DbConnection,
        segments: Sequence[SegmentReader],
        *,
        start_position: int,
        stop_before: datetime,
        names: Mapping[str, str],
        progress: Callable[[int], None],
        on_start: Callable[[], None],
    ) -> Replayed:
        return replay(
            conn,
            segments,
            start_position=start_position,
            stop_before=stop_before,
            names=names,
            progress=progress,
            on_start=on_start,
        )
