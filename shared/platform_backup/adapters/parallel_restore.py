"""Applying a framed backup on several connections at once (domain/frame_index.py's phases).

Each connection is one ``mariadb`` client, as a whole restore uses, that first runs the dump's
header (its session settings: character set, time zone, unique and foreign-key checks off,
sql_mode), then frames, each after a ``USE`` of its (renamed) database. Rows frames lose their
``LOCK TABLES``/``UNLOCK TABLES`` (a table's chunks go to any connection; a write lock would
shut the others out). Work that waits for a table's earlier work (its last rows with its trigger,
its deferred keys) waits until a marker written after that work comes back from the client that
ran it: written to a client's pipe is not yet run. A phase ends when every client of it has
exited 0; the first client that fails stops the restore (the others are killed) and its error is
the restore's.

A big table (``defer_keys_from`` bytes of rows or more) is made without its deferrable secondary
keys, which are added once every row is in, before the objects (adapters/deferred_keys.py).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil

# B404: the MariaDB client runs as an argv list, never through a shell.
import subprocess  # nosec B404
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from functools import partial
from itertools import pairwise
from typing import Any, NamedTuple

from platform_backup.adapters.deferred_keys import defer_keys, referenced_columns
from platform_backup.adapters.dump_rewrite import DumpRewriter, quote
from platform_backup.adapters.mariadb import DbConnection, Session, session
from platform_backup.domain.frame_index import Frame, Phase
from platform_backup.services.ports import Applied, Existing

_LOCK = re.compile(rb"^LOCK TABLES `(?:[^`]|``)+` WRITE;\n", re.M)
_UNLOCK = b"\nUNLOCK TABLES;\n"
# How far into a rows frame its LOCK TABLES, and from its end its UNLOCK TABLES, may be.
_EDGE = 64 << 10
# A rows frame is applied in pieces of about this much SQL, each on any free connection: the
# last 64 MiB frames of a restore would otherwise keep one connection busy while others idle.
_PIECE = 8 << 20
# What a client prints once it has run a piece of work of a table (``_Client.mark``).
_MARKER = b"pdb-ran-"

ReadFrames = Callable[[Sequence[Frame]], Iterator[bytes]]


class _ClientFailed(Exception):
    pass


class _Client:
    """One ``mariadb`` client fed on its stdin. A marker written after a piece of work comes back
    on its stdout once the server has run everything before it (``ran``); ``ended`` is called
    once the client has exited and its output is read."""

    def __init__(
        self,
        db: Session,
        binary: str,
        options: Sequence[str],
        number: int,
        ran: Callable[[_Client, int], None],
        ended: Callable[[_Client], None],
    ) -> None:
        self.err_path = db.workdir / f"client-{number}.err"
        with self.err_path.open("wb") as stderr:
            # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
            self.proc = subprocess.Popen(  # nosec B603
                db.argv(binary, *options, "--skip-column-names", "--unbuffered"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=db.child_env(),
            )
        # Per marker written and not yet back: the work it follows and the bytes it accounts for.
        self.pending: dict[int, tuple[_Work, int]] = {}
        self._reader = threading.Thread(target=self._read, args=(ran, ended), daemon=True)
        self._reader.start()

    def _read(self, ran: Callable[[_Client, int], None], ended: Callable[[_Client], None]) -> None:
        assert self.proc.stdout is not None  # nosec B101  # narrows a type, not a check
        # A dump's statements print nothing; anything but a marker is read and dropped.
        for line in self.proc.stdout:
            if line.startswith(_MARKER):
                ran(self, int(line[len(_MARKER) :]))
        self.proc.wait()
        ended(self)

    def write(self, data: Any) -> None:
        assert self.proc.stdin is not None  # nosec B101  # narrows a type, not a check
        try:
            self.proc.stdin.write(data)
        except BrokenPipeError:
            raise _ClientFailed from None

    def mark(self, number: int) -> None:
        """A marker after what was written, sent to the client now (not left in our buffer)."""
        assert self.proc.stdin is not None  # nosec B101  # narrows a type, not a check
        try:
            self.proc.stdin.write(b"SELECT '%s%d';\n" % (_MARKER, number))
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise _ClientFailed from None

    def close(self) -> int:
        with contextlib.suppress(BrokenPipeError):
            assert self.proc.stdin is not None  # nosec B101  # narrows a type, not a check
            self.proc.stdin.close()
        code = self.proc.wait()
        self._reader.join()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(BrokenPipeError):
            assert self.proc.stdin is not None  # nosec B101  # narrows a type, not a check
            self.proc.stdin.close()
        self._reader.join()

    def error(self) -> str:
        return self.err_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()


def _use(database: str) -> bytes:
    return b"USE " + quote(database).encode() + b";\n"


def _statement(database: str, sql: bytes) -> list[Any]:
    return [_use(database), sql]


def _pieces(
    frame: Frame,
    text: bytes,
    names: Mapping[str, str],
    existing: Existing,
    keys: Callable[[bytes], bytes] | None = None,
) -> list[Any]:
    """A frame other than rows as a connection of its own runs it: after a USE of its
    database, database names rewritten; a definition through ``keys`` when its table's keys
    wait (rows: ``ParallelApply._rows``)."""
    database = frame.section.database
    use: list[Any] = (
        [] if database is None or frame.section.kind == "database" else [_use(names[database])]
    )
    rewriter = DumpRewriter(names, existing)
    rewritten = rewriter.feed(text) + rewriter.flush()
    return [*use, keys(rewritten) if keys else rewritten]


def _rows_bounds(text: bytes) -> tuple[int, int, int, int]:
    """Where, in a rows frame's text, its table lock begins, its statements begin and end, and
    what follows its UNLOCK TABLES begins (the lock and the unlock are left out)."""
    pre = start = 0
    if lock := _LOCK.search(text, 0, _EDGE):
        pre, start = lock.start(), lock.end()
    unlock = text.rfind(_UNLOCK, max(start, len(text) - _EDGE))
    if unlock < 0:
        return pre, start, len(text), len(text)
    return pre, start, unlock + 1, unlock + len(_UNLOCK)


def _cuts(text: bytes, start: int, end: int, every: int) -> list[int]:
    """Offsets between ``start`` and ``end`` where an INSERT begins, ``every`` bytes or more
    apart (a dump writes a line break inside a value as ``\\n``: a line that starts with
    INSERT INTO is a statement)."""
    cuts: list[int] = []
    at = start + every
    while at < end and (found := text.find(b"\nINSERT INTO ", at - 1, end)) >= 0:
        cuts.append(found + 1)
        at = found + 1 + every
    return cuts


class _Work(NamedTuple):
    """One piece of work for a connection: what makes its SQL (run on that connection's thread,
    where it decompresses in parallel with the others), the bytes of the dump it accounts for,
    and the table it belongs to, when it must wait for that table's earlier work (``after``)."""

    pieces: Callable[[], list[Any]]
    raw_length: int
    table: str | None = None
    after: bool = False


class _Schedule:
    """The work in the order it was fed, to any free connection, except that work ``after`` its
    table waits until everything fed before it for that table is done; a connection meanwhile
    takes the next work, so no connection idles while another finishes a table."""

    def __init__(self, width: int) -> None:
        self._width = width
        self._cond = threading.Condition()
        self._ready: deque[_Work] = deque()
        self._parked: dict[str, deque[_Work]] = {}
        # Per table: fed and not yet done (parked included).
        self._open: dict[str, int] = {}
        self._fed = False
        self.stopped = False

    def feed(self, work: _Work) -> None:
        with self._cond:
            self._cond.wait_for(lambda: len(self._ready) < self._width or self.stopped)
            if work.table is not None:
                waiting = work.after and self._open.get(work.table, 0) > 0
                self._open[work.table] = self._open.get(work.table, 0) + 1
                if waiting:
                    self._parked.setdefault(work.table, deque()).append(work)
                    return
            self._ready.append(work)
            self._cond.notify_all()

    def add(self, table: str | None, works: Sequence[_Work]) -> None:
        """Work split from work of ``table`` that is running: it goes first (that waiting for its
        table ahead of anything parked, which was fed later)."""
        with self._cond:
            if table is not None:
                self._open[table] = self._open.get(table, 0) + len(works)
            for work in reversed(works):
                if work.after and table is not None:
                    self._parked.setdefault(table, deque()).appendleft(work)
                else:
                    self._ready.appendleft(work)
            self._cond.notify_all()

    def fed(self) -> None:
        with self._cond:
            self._fed = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def take(self) -> _Work | None:
        """The next work; None once there is none left (or the schedule stopped)."""
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._ready
                    or self.stopped
                    or (self._fed and not any(self._parked.values()) and not self._ready)
                )
            )
            if self.stopped or not self._ready:
                return None
            work = self._ready.popleft()
            self._cond.notify_all()
            return work

    def done(self, work: _Work) -> None:
        if work.table is None:
            return
        with self._cond:
            left = self._open[work.table] = self._open[work.table] - 1
            parked = self._parked.get(work.table)
            if parked and left == len(parked):
                # Everything fed before the first parked work is done: it goes next.
                self._ready.appendleft(parked.popleft())
            self._cond.notify_all()


class ParallelApply:
    def __init__(
        self,
        db: Session,
        binary: str,
        options: Sequence[str],
        header: bytes,
        names: Mapping[str, str],
        existing: Existing,
        progress: Callable[[int], None],
    ) -> None:
        self._existing = existing
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
        # reference, and per table the statement adding its keys back (database, ALTER TABLE).
        self.defer_keys_of: frozenset[str] = frozenset()
        self.referenced: dict[bytes, set[bytes]] = {}
        self.deferred: dict[str, tuple[str, bytes]] = {}

    def _client(
        self, ran: Callable[[_Client, int], None], ended: Callable[[_Client], None]
    ) -> _Client:
        self._clients += 1
        client = _Client(self._db, self._binary, self._options, self._clients, ran, ended)
        client.write(self._header)
        return client

    def _frame_work(
        self, frame: Frame, data: bytes, after: bool = False, last: bool = False
    ) -> _Work:
        """``after``: the frame waits for its table's earlier frames; ``last``: it is the table's
        last, whose end (keys enabled again, triggers) must run after all its rows."""
        table = frame.table
        if frame.section.kind == "rows":
            return _Work(partial(self._rows, frame, data, last), frame.raw_length, table, after)
        keys = None
        if frame.section.kind == "table" and table in self.defer_keys_of:
            database = self._names[frame.section.database or ""]

            def keys(text: bytes) -> bytes:
                stripped, statements = defer_keys(text, self.referenced)
                if statements:
                    with self._lock:
                        self.deferred[table] = (database, b"".join(statements))
                return stripped

        return _Work(
            lambda: _pieces(frame, data, self._names, self._existing, keys), frame.raw_length
        )

    def _rows(self, frame: Frame, text: bytes, last: bool) -> list[Any]:
        """A rows frame's SQL without its table lock: its first piece, then the work of its other
        pieces for any connection (the final one after the others when the frame is its table's
        last)."""
        pre, start, end, tail = _rows_bounds(text)
        view = memoryview(text)
        use = _use(self._names[frame.section.database or ""])
        bounds = [start, *_cuts(text, start, end, _PIECE), end]
        split: list[_Work] = []
        for a, b in pairwise(bounds[1:]):
            final = b == end
            chunk = [use, view[a:b], view[tail:]] if final else [use, view[a:b]]
            size = b - a + (len(text) - tail if final else 0)
            split.append(_Work(partial(list, chunk), size, frame.table, final and last))
        if not split:
            return [use, view[:pre], view[start:end], view[tail:]]
        return [use, view[:pre], view[start : bounds[1]], *split]

    def run(self, phase: Phase, frames: Iterator[bytes], width: int) -> bool:
        """Applies the phase's frames on ``width`` connections (one unless it is parallel);
        False once a client failed (``error`` says how)."""
        work = (
            self._frame_work(frame, data) for frame, data in zip(phase.frames, frames, strict=True)
        )
        return self._run(work, len(phase.frames), width if phase.parallel else 1)

    def run_rows(self, phases: Sequence[Phase], read: ReadFrames, width: int) -> bool:
        """The rows phases as one schedule (``_reading_order``): a table's frame of a later phase
        (its last) waits only for that table's earlier frames, and its deferred keys, added after
        its last frame, only for its rows; other tables' rows go on meanwhile."""
        groups = _reading_order([f for phase in phases for f in phase.frames], self.deferred)
        later = {frame for phase in phases[1:] for frame in phase.frames}
        left = Counter(frame.table for group in groups for frame in group if frame.table)

        def work() -> Iterator[_Work]:
            for group in groups:
                for frame, data in zip(group, read(group), strict=True):
                    table = frame.table
                    if table is None:
                        yield self._frame_work(frame, data)
                        continue
                    left[table] -= 1
                    yield self._frame_work(frame, data, frame in later, not left[table])
                    if not left[table] and (keys := self.deferred.get(table)):
                        yield _Work(partial(_statement, *keys), 0, table, True)

        count = sum(len(group) for group in groups) + len(self.deferred)
        return self._run(work(), count, width)

    def _run(self, items: Iterator[_Work], count: int, width: int) -> bool:
        if not count:
            return True
        width = max(1, min(width, count))
        schedule = _Schedule(width)
        failed: list[_Client] = []
        # Anything else a consumer meets (a frame it cannot rename, a bug) is raised here, never
        # lost with its thread: a frame left out would otherwise pass for applied.
        crashed: list[BaseException] = []
        numbers = itertools.count(1)

        def ran(client: _Client, number: int) -> None:
            # Work of a table is done, and counted applied, once its connection has run it: what
            # waits for it (the table's trigger, its deferred keys) never meets its rows in flight.
            with self._lock:
                work, size = client.pending.pop(number)
                self.raw_bytes += size
            schedule.done(work)

        def ended(client: _Client) -> None:
            with self._lock:
                lost = bool(client.pending)
            if lost:
                # It exited before running work it was given: nothing waits for that work.
                failed.append(client)
                schedule.stop()

        clients = [self._client(ran, ended) for _ in range(width)]

        def serve(client: _Client) -> None:
            try:
                while (item := schedule.take()) is not None:
                    pieces = item.pieces()
                    split = [p for p in pieces if isinstance(p, _Work)]
                    if split:
                        schedule.add(item.table, split)
                    for piece in pieces:
                        if not isinstance(piece, _Work):
                            client.write(piece)
                    size = item.raw_length - sum(w.raw_length for w in split)
                    if item.table is None:
                        with self._lock:
                            self.raw_bytes += size
                        continue
                    number = next(numbers)
                    with self._lock:
                        client.pending[number] = (item, size)
                    client.mark(number)
            except BaseException as exc:
                if not isinstance(exc, _ClientFailed):
                    crashed.append(exc)
                failed.append(client)
                # The feeder and the other connections stop; nothing waits on a dead consumer.
                schedule.stop()

        threads = [threading.Thread(target=serve, args=(c,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        try:
            for item in items:
                if schedule.stopped:
                    break
                schedule.feed(item)
                self._progress(self.raw_bytes)
        except BaseException:
            schedule.stop()
            for client in clients:
                client.kill()
            raise
        finally:
            schedule.fed()
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


def _reading_order(frames: Sequence[Frame], deferred: Collection[str]) -> list[list[Frame]]:
    """The rows frames in the order they are fed, as groups each read in the object's order: the
    tables whose keys wait for their rows first, the biggest first, then every other table in the
    object's order. The ``ALTER`` adding a table's keys back runs on one connection for seconds;
    fed first, it overlaps the other tables' rows instead of ending the restore while the other
    connections idle."""
    waiting: dict[str, list[Frame]] = {}
    rest: list[Frame] = []
    for frame in sorted(frames, key=lambda f: f.offset):
        if frame.table is not None and frame.table in deferred:
            waiting.setdefault(frame.table, []).append(frame)
        else:
            rest.append(frame)
    groups = sorted(waiting.values(), key=lambda g: sum(f.raw_length for f in g), reverse=True)
    return [*groups, rest] if rest else groups


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
    existing: Existing,
    width: int,
    progress: Callable[[int], None],
    on_start: Callable[[], None],
    defer_keys_from: int,
) -> Applied:
    """Every phase in turn (the consecutive parallel ones, the rows, as one schedule: ``run_rows``);
    ``read(frames)`` gives the frames' checked SQL in their order."""
    with session(conn, tools) as db:
        binary = shutil.which(db.tools.client) or db.tools.client
        head = b"".join(read(header))
        applier = ParallelApply(db, binary, options, head, names, existing, progress)
        applier.defer_keys_of = _big_tables(phases, defer_keys_from)
        # Every connection runs the header; the dump holds it once.
        applier.raw_bytes = sum(frame.raw_length for frame in header)
        on_start()
        for together in _runs(phases):
            if together[0].parallel:
                ok = applier.run_rows(together, read, width)
            else:
                (phase,) = together
                frames = read(phase.frames)
                if applier.defer_keys_of and any(f.section.kind == "table" for f in phase.frames):
                    # The definitions are small: read at once and searched for the columns
                    # foreign keys reference before any table is made without a key they need.
                    held = list(frames)
                    applier.referenced = referenced_columns(held)
                    frames = iter(held)
                ok = applier.run(phase, frames, width)
            if not ok:
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


def _runs(phases: Sequence[Phase]) -> list[list[Phase]]:
    """The phases in order, consecutive parallel ones together."""
    runs: list[list[Phase]] = []
    for phase in phases:
        if phase.parallel and runs and runs[-1][0].parallel:
            runs[-1].append(phase)
        else:
            runs.append([phase])
    return runs
