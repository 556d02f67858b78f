"""Keeps, of ``mariadb-binlog``'s text, only what writes into the restored databases.

``mariadb-binlog`` filters one database at most; a restore covers several, and a replay must
never write into a database outside it. The text comes in blocks, one per event (``# at N``);
the event index (adapters/binlog_event_index.py) says what event N is and which database it names.
A transaction's opening (its GTID block) is held until something of it is kept; a row
statement is kept when all of its tables are restored, dropped when none is, and refused when
it mixes both. Query events count in their default database, as MariaDB's own replication
filters do. ``use`` lines are written by the filter itself, for the restored databases only.
Row data (the bulk) passes as whole blocks, never line by line.
"""

from __future__ import annotations

from collections.abc import Mapping

from platform_backup.adapters.binlog_event_index import (
    ANNOTATE_ROWS,
    GTID,
    QUERY_TYPES,
    ROWS_TYPES,
    TABLE_MAP,
    XID,
    Event,
    EventIndex,
)
from platform_backup.errors import ClientFailed

BOUNDARY = b"\n# at "
TRAILER = b"DELIMITER ;\n"
# Blocks longer than this pass on in pieces once it is known whether they are kept.
FLUSH_BYTES = 1 << 20

EMIT, SKIP, HOLD_GTID, HOLD_STATEMENT, QUERY_KEEP, QUERY_DROP = range(6)


class ReplayRefused(ClientFailed):
    """The binary log holds something the replay cannot apply safely."""

    code = "ReplayRefused"


def _session_lines(block: bytes) -> bytes:
    """The lines of a dropped block that only set the session (kept, so that the client's
    session stays what ``mariadb-binlog`` assumes it is when it omits unchanged settings)."""
    kept = [
        line
        for line in block.splitlines(keepends=True)
        if line.rstrip().endswith(b"/*!*/;")
        and (b"SET @@session." in line or line.startswith((b"SET TIMESTAMP=", b"/*!\\C ")))
        and not line.startswith(b"use ")
    ]
    return b"".join(kept)


def _use(name: str) -> bytes:
    return b"use `" + name.replace("`", "``").encode() + b"`/*!*/;\n"


class BinlogTextFilter:
    """Fed the text of one file's replay in order; returns what goes to the client."""

    def __init__(self, index: EventIndex, names: Mapping[str, str]) -> None:
        self._index = index
        self._names = dict(names)
        self._buffer = bytearray()
        self._searched = 0  # no boundary starts before this offset of the buffer
        self._mode = EMIT  # the text before the first event passes
        self._trailer = False
        self._in_group = False
        self._group_kept = False
        self._held = bytearray()
        self._statement: bytearray | None = None
        self._statement_dbs: set[str] = set()
        self._statement_kept: bool | None = None
        self._end_statement = False
        self._session_db: str | None = None
        self._event: Event | None = None

    def feed(self, text: bytes) -> bytes:
        out = bytearray()
        buffer = self._buffer
        buffer += text
        while True:
            # The buffer always starts at a line: an event right after another starts it.
            if buffer.startswith(BOUNDARY[1:]):
                cut = -1
            else:
                # Searched from where the last search stopped: a statement's row data (one
                # BINLOG block, megabytes) comes in many pieces and is scanned once.
                cut = buffer.find(BOUNDARY, self._searched)
                if cut < 0:
                    self._searched = max(0, len(buffer) - len(BOUNDARY) + 1)
                    break
            head_end = buffer.find(b"\n", cut + 1)
            if head_end < 0:
                self._searched = max(cut, 0)
                break
            out += self._block(bytes(buffer[: max(cut + 1, 0)]), complete=True)
            position = int(buffer[cut + len(BOUNDARY) : head_end])
            line = bytes(buffer[cut + 1 : head_end + 1])
            del buffer[: head_end + 1]
            self._searched = 0
            out += self._start(position)
            out += self._block(line, complete=False)
        if len(buffer) > FLUSH_BYTES and self._mode in (EMIT, SKIP):
            keep = 32  # a boundary or the trailer may be cut at the end
            passed = len(buffer) - keep
            out += self._block(bytes(buffer[:passed]), complete=False)
            del buffer[:passed]
            self._searched = max(0, self._searched - passed)
        return bytes(out)

    def finish(self) -> bytes:
        out = self._block(bytes(self._buffer), complete=True)
        self._buffer.clear()
        self._searched = 0
        return out

    # -- one event's block ----------------------------------------------------------------

    def _start(self, position: int) -> bytes:
        """Chooses what happens to the block of the event at ``position``."""
        event = self._index.pop(position)
        if event is None:
            raise ReplayRefused(f"the binary log's text names an event at {position} not read")
        if self._end_statement:
            self._close_statement()
        out = b""
        kind = event.kind
        if kind == GTID:
            out = self._drop_group()
            self._in_group, self._group_kept = True, False
            self._mode = HOLD_GTID
        elif kind in QUERY_TYPES and event.control:
            self._mode = EMIT if self._group_kept or not self._in_group else SKIP
        elif kind in QUERY_TYPES:
            if event.database in self._names and event.on_database:
                # CREATE/ALTER/DROP DATABASE names the original database in its text.
                if self._names[event.database] != event.database:
                    raise ReplayRefused(
                        f"the binary log creates, alters or drops the database "
                        f"{event.database} itself: restore it in place, or to an instant "
                        "before that statement"
                    )
                out = self._keep_group()
                self._mode = QUERY_KEEP
            elif event.database in self._names:
                out = self._keep_group()
                target = self._names[event.database]
                if self._session_db != target:
                    out += _use(target)
                    self._session_db = target
                self._mode = QUERY_KEEP
            else:
                self._mode = QUERY_DROP
        elif kind in (ANNOTATE_ROWS, TABLE_MAP):
            if self._statement is None or self._statement_kept is not None:
                self._close_statement()
                self._statement = bytearray()
            if kind == TABLE_MAP and event.database is not None:
                self._statement_dbs.add(event.database)
            self._mode = HOLD_STATEMENT
        elif kind in ROWS_TYPES:
            out = self._decide_statement()
            self._mode = EMIT if self._statement_kept else SKIP
            self._end_statement = event.statement_end
        elif kind == XID:
            self._mode = EMIT if self._group_kept or not self._in_group else SKIP
        else:
            self._mode = EMIT
        self._event = event
        return out

    def _block(self, text: bytes, complete: bool) -> bytes:
        if not text:
            return b""
        if self._trailer:
            return text
        mode = self._mode
        if mode == EMIT:
            if TRAILER in text:
                self._trailer = True
            return text
        if mode == HOLD_GTID:
            self._held += text
        elif mode == HOLD_STATEMENT and self._statement is not None:
            self._statement += text
        elif mode == QUERY_KEEP:
            return b"".join(
                line for line in text.splitlines(keepends=True) if not line.startswith(b"use ")
            ) + self._trailer_of(text)
        elif mode == QUERY_DROP:
            return _session_lines(text) + self._trailer_of(text)
        if mode == SKIP:
            return self._trailer_of(text)
        return self._trailer_of(text) if complete else b""

    def _trailer_of(self, text: bytes) -> bytes:
        """What ends the file's text (the delimiter reset and the final ROLLBACK) always
        passes, whatever happens to the event block it follows."""
        at = text.find(TRAILER)
        if at < 0 or (at > 0 and text[at - 1 : at] != b"\n"):
            return b""
        self._trailer = True
        return text[at:]

    # -- transactions and statements ------------------------------------------------------

    def _keep_group(self) -> bytes:
        if self._in_group and not self._group_kept:
            self._group_kept = True
            held = bytes(self._held)
            self._held.clear()
            return held
        return b""

    def _drop_group(self) -> bytes:
        held = bytes(self._held)
        self._held.clear()
        return _session_lines(held) if held and not self._group_kept else b""

    def _decide_statement(self) -> bytes:
        if self._statement_kept is not None:
            return b""
        dbs = self._statement_dbs
        inside = {db for db in dbs if db in self._names}
        if inside and inside != dbs:
            raise ReplayRefused(
                "a row statement of the binary log writes both restored and other databases "
                f"({', '.join(sorted(dbs))}): it cannot be replayed without the others"
            )
        self._statement_kept = bool(inside)
        held = bytes(self._statement or b"")
        self._statement = bytearray()
        if not inside:
            return b""
        return self._keep_group() + held

    def _close_statement(self) -> None:
        self._statement = None
        self._statement_dbs = set()
        self._statement_kept = None
        self._end_statement = False
