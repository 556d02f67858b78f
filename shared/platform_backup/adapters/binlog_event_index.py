"""What the replay filter needs to know of each event of a raw binary-log file, read from the
bytes as they pass on their way to ``mariadb-binlog``: its type and the database it names (a
Query event's default database, a Table_map's table). ``mariadb-binlog``'s text cannot tell a
statement without a default database from one in the previous event's database."""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\xfebin"
HEADER = 19

QUERY = 2
XID = 16
TABLE_MAP = 19
ANNOTATE_ROWS = 160
GTID = 162
QUERY_COMPRESSED = 165
QUERY_TYPES = frozenset({QUERY, QUERY_COMPRESSED})
# Write/Update/Delete rows, v0, v1, v2 and MariaDB's compressed forms.
ROWS_TYPES = frozenset({20, 21, 22, 23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171})
STMT_END = 0x0001
# A Query event's flag for CREATE/ALTER/DROP DATABASE: its database is the one it acts on.
SUPPRESS_USE = 0x0008
# Query events that only delimit a transaction: they touch no database.
CONTROL = (b"BEGIN", b"COMMIT", b"ROLLBACK", b"XA ", b"SAVEPOINT", b"ROLLBACK TO")


@dataclass(frozen=True, slots=True)
class Event:
    kind: int
    database: str | None = None  # Query (not a control one), Table_map
    control: bool = False  # a Query that only begins or ends a transaction
    statement_end: bool = False  # a rows event ending its statement
    on_database: bool = False  # CREATE/ALTER/DROP DATABASE of ``database``


class EventIndex:
    """Fed the file's bytes in order (from its first byte); ``pop(position)`` gives the event
    that starts there. Only the events the filter asks about are kept."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0  # file position of _buffer[0]
        self._skip = 0  # bytes of a long event still to pass without keeping them
        self._events: dict[int, Event] = {}

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        if self._skip:
            taken = min(self._skip, len(view))
            self._skip -= taken
            self._offset += taken
            view = view[taken:]
        self._buffer += view
        buffer, at = self._buffer, 0
        if self._offset == 0:
            if len(buffer) < len(MAGIC):
                return
            if bytes(buffer[:4]) != MAGIC:
                raise ValueError("not a binary log file (no magic header)")
            at = len(MAGIC)
        while len(buffer) - at >= HEADER:
            kind = buffer[at + 4]
            length = struct.unpack_from("<I", buffer, at + 9)[0]
            if length < HEADER:
                raise ValueError(f"a binary-log event at {self._offset + at} is {length} bytes")
            needs_body = kind in QUERY_TYPES or kind == TABLE_MAP
            available = len(buffer) - at
            if needs_body and available < length:
                break
            self._note(self._offset + at, kind, buffer, at, min(length, available))
            if available < length:
                self._skip = length - available
                at = len(buffer)
                break
            at += length
        del buffer[:at]
        self._offset += at

    def _note(self, position: int, kind: int, buffer: bytearray, at: int, length: int) -> None:
        body = at + HEADER
        if kind in QUERY_TYPES:
            db_len = buffer[body + 8]
            status_len = struct.unpack_from("<H", buffer, body + 11)[0]
            db_at = body + 13 + status_len
            database = bytes(buffer[db_at : db_at + db_len]).decode("utf-8", "replace")
            query = bytes(buffer[db_at + db_len + 1 : db_at + db_len + 13]).lstrip().upper()
            control = kind == QUERY and query.startswith(CONTROL)
            flags = struct.unpack_from("<H", buffer, at + 17)[0]
            self._events[position] = Event(
                kind, database, control=control, on_database=bool(flags & SUPPRESS_USE)
            )
        elif kind == TABLE_MAP:
            db_len = buffer[body + 8]
            database = bytes(buffer[body + 9 : body + 9 + db_len]).decode("utf-8", "replace")
            self._events[position] = Event(kind, database)
        elif kind in ROWS_TYPES:
            flags = struct.unpack_from("<H", buffer, body + 6)[0] if length >= HEADER + 8 else 0
            self._events[position] = Event(kind, statement_end=bool(flags & STMT_END))
        else:
            self._events[position] = Event(kind)

    def pop(self, position: int) -> Event | None:
        return self._events.pop(position, None)
