"""Applying a framed backup on several connections at once (domain/frame_index.py's phases).

Each connection is one ``mariadb`` client, as a whole restore uses, that first runs the dump's
header (its session settings: character set, time zone, unique and foreign-key checks off,
sql_mode), then frames, each after a ``USE`` of its (renamed) database. Rows frames lose their
``LOCK TABLES``/``UNLOCK TABLES`` (a table's chunks go to any connection; a write lock would
shut the others out). A phase ends when every client of it has exited 0; the first client that
fails stops the restore (the others are killed) and its error is the restore's.
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


def _pieces(frame: Frame, data: bytes, names: Mapping[str, str], replace: bool) -> list[Any]:
    """The frame's SQL as a connection of its own runs it, in pieces (no copy of a big frame):
    after a USE of its database, rows without their table lock, database names rewritten
    (rows never name one)."""
    text = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    database = frame.section.database
    use: list[Any] = (
        []
        if database is None or frame.section.kind == "database"
        else [b"USE " + quote(names[database]).encode() + b";\n"]
    )
    if frame.section.kind != "rows":
        rewriter = DumpRewriter(names, replace_existing=replace)
        return [*use, rewriter.feed(text) + rewriter.flush()]
    view = memoryview(text)
    start = 0
    if lock := _LOCK.search(text, 0, _EDGE):
        use.append(view[: lock.start()])
        start = lock.end()
    unlock = text.rfind(_UNLOCK, max(start, len(text) - _EDGE))
    if unlock < 0:
        return [*use, view[start:]]
    return [*use, view[start : unlock + 1], view[unlock + len(_UNLOCK) :]]


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

    def _client(self) -> _Client:
        self._clients += 1
        client = _Client(self._db, self._binary, self._options, self._clients)
        client.write(self._header)
        return client

    def run(self, phase: Phase, frames: Iterator[bytes], width: int) -> bool:
        """Applies the phase's frames on ``width`` connections (one unless it is parallel);
        False once a client failed (``error`` says how)."""
        width = max(1, min(width if phase.parallel else 1, len(phase.frames)))
        if not phase.frames:
            return True
        work: queue.Queue[tuple[Frame, bytes] | None] = queue.Queue(maxsize=width)
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
                    frame, data = item
                    for piece in _pieces(frame, data, self._names, self._replace):
                        client.write(piece)
                    with self._lock:
                        self.raw_bytes += frame.raw_length
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
            for frame, data in zip(phase.frames, frames, strict=True):
                if failed:
                    break
                work.put((frame, data))
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
        # Each client has all its frames: the phase is done when every one has run them.
        for client in clients:
            code = client.close()
            if code:
                for other in clients:
                    other.kill()
                self.error = (code, self._db.redact(client.error()) or "no output")
                return False
        return True


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
) -> Applied:
    """Every phase in turn; ``read(frames)`` gives the frames' checked bytes in their order."""
    with session(conn, tools) as db:
        binary = shutil.which(db.tools.client) or db.tools.client
        head = b"".join(
            zstandard.ZstdDecompressor().decompressobj().decompress(piece) for piece in read(header)
        )
        applier = ParallelApply(db, binary, options, head, names, replace_existing, progress)
        # Every connection runs the header; the dump holds it once.
        applier.raw_bytes = sum(frame.raw_length for frame in header)
        on_start()
        for phase in phases:
            if not applier.run(phase, read(phase.frames), width):
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
