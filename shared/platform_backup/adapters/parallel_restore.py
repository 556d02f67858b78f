"""Applying a framed backup on several connections at once (domain/frame_index.py's phases).

Each connection is one ``mariadb`` client, as a whole restore uses, that first runs the dump's
header (its session settings: character set, time zone, unique and foreign-key checks off,
sql_mode), then frames, each after a ``USE`` of its (renamed) database. Rows frames lose their
``LOCK TABLES``/``UNLOCK TABLES`` (a table's chunks go to any connection; a write lock would
shut the others out). A phase ends when every client of it has exited 0; the first client that
fails stops the restore (the others are killed) and its error is the restore's.

A big table (``defer_keys_from`` bytes of rows or more) is made without its deferrable secondary
keys, which are added once every row is in, before the objects (adapters/deferred_keys.py).
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil

# B404: the MariaDB client runs as an argv list, never through a shell.
import subprocess  # nosec B404
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import zstandard

from platform_backup.adapters.deferred_keys import defer_keys, referenced_columns
from platform_backup.adapters.dump_rewrite import DumpRewriter, quote
from platform_backup.adapters.mariadb import DbConnection, Session, session
from platform_backup.domain.frame_index import Frame, Phase
from platform_backup.services.ports import Applied

_LOCK = re.compile(rb"^LOCK TABLES `(?:[^`]|``)+` WRITE;\n", re.M)
_UNLOCK = b"\nUNLOCK TABLES;\n"
# How far into a rows frame its LOCK TABLES, and from its end its UNLOCK TABLES, may be.
_EDGE = 64 << 10

ReadFrames = Callable[[Sequence[Frame]], Iterator[bytes]]


class _ClientFailed(Exception):
    pass


class _Client:
    """One ``mariadb`` client fed on its stdin."""

    def __init__(self, db: Session, binary: str, options: Sequence[str], number: int) -> None:
        self.err_path = db.workdir / f"client-{number}.err"
        with self.err_path.open("wb") as stderr:
            # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
            self.proc = subprocess.Popen(  # nosec B603
                db.argv(binary, *options),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=db.child_env(),
            )

    def write(self, data: Any) -> None:
        assert self.proc.stdin is not None  # nosec B101  # narrows a type, not a check
        try:
            self.proc.stdin.write(data)
        except BrokenPipeError:
            raise _ClientFailed from None

    def close(self) -> int:
        with contextlib.suppress(BrokenPipeError):
            assert self.proc.stdin is not None  # nosec B101  # narrows a type, not a check
            self.proc.stdin.close()
        return self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(BrokenPipeError):
            assert self.proc.stdin is not None  # nosec B101  # narrows a type, not a check
            self.proc.stdin.close()

    def error(self) -> str:
        return self.err_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()


def _text(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def _use(database: str) -> bytes:
    return b"USE " + quote(database).encode() + b";\n"


def _pieces(
    frame: Frame,
    data: bytes,
    names: Mapping[str, str],
    replace: bool,
    keys: Callable[[bytes], bytes] | None = None,
) -> list[Any]:
    """The frame's SQL as a connection of its own runs it, in pieces (no copy of a big frame):
    after a USE of its database, rows without their table lock, database names rewritten
    (rows never name one); a definition through ``keys`` when its table's keys wait."""
    text = _text(data)
    database = frame.section.database
    use: list[Any] = (
        [] if database is None or frame.section.kind == "database" else [_use(names[database])]
    )
    if frame.section.kind != "rows":
        rewriter = DumpRewriter(names, replace_existing=replace)
        rewritten = rewriter.feed(text) + rewriter.flush()
        return [*use, keys(rewritten) if keys else rewritten]
    view = memoryview(text)
    start = 0
    if lock := _LOCK.search(text, 0, _EDGE):
        use.append(view[: lock.start()])
        start = lock.end()
    unlock = text.rfind(_UNLOCK, max(start, len(text) - _EDGE))
    if unlock < 0:
        return [*use, view[start:]]
    return [*use, view[start : unlock + 1], view[unlock + len(_UNLOCK) :]]


# One piece of work for a connection: what makes its SQL (run on that connection's thread, where
# it decompresses in parallel with the others), and the bytes of the dump it accounts for.
_Work = tuple[Callable[[], list[Any]], int]


class ParallelApply:
    def __init__(
        self,
        db: Session,
        binary: str,
        options: Sequence[str],
        header: bytes,
        names: Mapping[str, str],
        replace: bool,
        progress: Callable[[int], None],
    ) -> None:
        self._replace = replace
        self._db = db
        self._binary = binary
        self._options = options
        self._header = header
        self._names = names
        self._progress = progress
        self._clients = 0
        self._lock = threading.Lock()
        self.raw_bytes = 0
        self.error: tuple[int, str] | None = None
        # Tables whose deferrable keys wait for their rows, the first columns foreign keys
        # reference, and the statements adding the keys back (database, ALTER TABLE).
        self.defer_keys_of: frozenset[str] = frozenset()
        self.referenced: dict[bytes, set[bytes]] = {}
        self.deferred: list[tuple[str, bytes]] = []

    def _client(self) -> _Client:
        self._clients += 1
        client = _Client(self._db, self._binary, self._options, self._clients)
        client.write(self._header)
        return client

    def _frame_work(self, frame: Frame, data: bytes) -> _Work:
        keys = None
        if frame.section.kind == "table" and frame.table in self.defer_keys_of:
            database = self._names[frame.section.database or ""]

            def keys(text: bytes) -> bytes:
                stripped, statements = defer_keys(text, self.referenced)
                with self._lock:
                    self.deferred.extend((database, sql) for sql in statements)
                return stripped

        return (
            lambda: _pieces(frame, data, self._names, self._replace, keys),
            frame.raw_length,
        )

    def run(self, phase: Phase, frames: Iterator[bytes], width: int) -> bool:
        """Applies the phase's frames on ``width`` connections (one unless it is parallel);
        False once a client failed (``error`` says how)."""
        work = (
            self._frame_work(frame, data) for frame, data in zip(phase.frames, frames, strict=True)
        )
        return self._run(work, len(phase.frames), width if phase.parallel else 1)

    def add_deferred_keys(self, width: int) -> bool:
        """The keys the definitions left out, a table on each free connection."""
        work = ((lambda d=d, sql=sql: [_use(d), sql], 0) for d, sql in self.deferred)
        return self._run(work, len(self.deferred), width)

    def _run(self, items: Iterator[_Work], count: int, width: int) -> bool:
        if not count:
            return True
        width = max(1, min(width, count))
        work: queue.Queue[_Work | None] = queue.Queue(maxsize=width)
        clients = [self._client() for _ in range(width)]
        failed: list[_Client] = []
        # Anything else a consumer meets (a frame it cannot rename, a bug) is raised here, never
        # lost with its thread: a frame left out would otherwise pass for applied.
        crashed: list[BaseException] = []

        def serve(client: _Client) -> None:
            try:
                while (item := work.get()) is not None:
                    if failed:
                        continue
                    pieces, raw_length = item
                    for piece in pieces():
                        client.write(piece)
                    with self._lock:
                        self.raw_bytes += raw_length
            except BaseException as exc:
                if not isinstance(exc, _ClientFailed):
                    crashed.append(exc)
                failed.append(client)
                # Drains the queue so the feeder is never blocked on a dead consumer.
                while work.get() is not None:
                    pass

        threads = [threading.Thread(target=serve, args=(c,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        try:
            for item in items:
                if failed:
                    break
                work.put(item)
                self._progress(self.raw_bytes)
        except BaseException:
            for client in clients:
                client.kill()
            raise
        finally:
            for _ in threads:
                work.put(None)
            for thread in threads:
                thread.join()
        if crashed:
            for client in clients:
                client.kill()
            raise crashed[0]
        if failed:
            code = failed[0].proc.wait()
            for client in clients:
                client.kill()
            self.error = (code or 1, self._db.redact(failed[0].error()) or "the client stopped")
            return False
        # Each client has all its work: the phase is done when every one has run it.
        for client in clients:
            code = client.close()
            if code:
                for other in clients:
                    other.kill()
                self.error = (code, self._db.redact(client.error()) or "no output")
                return False
        return True


def _big_tables(phases: Sequence[Phase], at_least: int) -> frozenset[str]:
    rows: dict[str, int] = {}
    for phase in phases:
        for frame in phase.frames:
            if frame.section.kind == "rows" and frame.table:
                rows[frame.table] = rows.get(frame.table, 0) + frame.raw_length
    return frozenset(table for table, size in rows.items() if size >= at_least)


def apply_phases(
    conn: DbConnection,
    tools: Any,
    options: Sequence[str],
    header: tuple[Frame, ...],
    phases: Sequence[Phase],
    read: ReadFrames,
    names: Mapping[str, str],
    replace_existing: bool,
    width: int,
    progress: Callable[[int], None],
    on_start: Callable[[], None],
    defer_keys_from: int,
) -> Applied:
    """Every phase in turn; ``read(frames)`` gives the frames' checked bytes in their order.
    The deferred keys are added after the last phase of rows (``restore_phases``' order)."""
    with session(conn, tools) as db:
        binary = shutil.which(db.tools.client) or db.tools.client
        head = b"".join(_text(piece) for piece in read(header))
        applier = ParallelApply(db, binary, options, head, names, replace_existing, progress)
        applier.defer_keys_of = _big_tables(phases, defer_keys_from)
        # Every connection runs the header; the dump holds it once.
        applier.raw_bytes = sum(frame.raw_length for frame in header)
        on_start()
        last_rows = max(
            (i for i, p in enumerate(phases) if any(f.section.kind == "rows" for f in p.frames)),
            default=-1,
        )
        for i, phase in enumerate(phases):
            frames = read(phase.frames)
            if applier.defer_keys_of and any(f.section.kind == "table" for f in phase.frames):
                # The definitions are small: read at once and searched for the columns foreign
                # keys reference before any table is made without a key one of them needs.
                held = list(frames)
                applier.referenced = referenced_columns(_text(data) for data in held)
                frames = iter(held)
            if not applier.run(phase, frames, width) or (
                i == last_rows and not applier.add_deferred_keys(width)
            ):
                code, text = applier.error or (1, "")
                return Applied(applier.raw_bytes, code, False, text)
        progress(applier.raw_bytes)
        expected = sum(f.raw_length for f in header) + sum(
            f.raw_length for phase in phases for f in phase.frames
        )
        if applier.raw_bytes != expected:
            # Every client exited 0, yet not every frame went through one: never a success.
            return Applied(
                applier.raw_bytes,
                0,
                False,
                f"{applier.raw_bytes} of the index's {expected} bytes of SQL were applied",
            )
        return Applied(applier.raw_bytes, 0, True, "")
