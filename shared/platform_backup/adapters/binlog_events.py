"""Reading what an archive needs from raw binary-log bytes, as they stream past: the first and
last event times, the first and last GTID, the server ids seen and the size. Only the 19-byte
event headers (and a GTID event's first 12 bytes) are parsed; bodies are skipped by length."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from platform_backup.errors import DependencyFailed
from platform_backup.services.ports import BinlogSummary

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server id, event length, next position, flags
GTID_EVENT = 162  # MariaDB's GTID_EVENT: seq_no u64, domain_id u32 after the header
_GTID = struct.Struct("<QI")
_WANTED = HEADER.size + _GTID.size


class NotABinlog(DependencyFailed):
    """The bytes are not a binary-log file (the magic header or an event length is wrong)."""

    code = "NotABinlog"


class BinlogScanner:
    """Fed chunk by chunk (``feed``); ``summary`` once the file is complete."""

    def __init__(self) -> None:
        self._head = bytearray()  # the start of a header cut by a chunk's edge
        self._skip = 0  # bytes of the current event still to pass over
        self._magic_seen = False
        self.bytes = 0
        self.first_time: int | None = None
        self.last_time: int | None = None
        self.first_gtid: str | None = None
        self.last_gtid: str | None = None
        self.server_ids: set[int] = set()

    def feed(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        data = memoryview(chunk)
        pos = min(self._skip, len(data))
        self._skip -= pos
        if not self._magic_seen and pos < len(data):
            pos = self._take_magic(data)
        if self._head and pos < len(data):
            pos = self._join_head(data)
        while self._magic_seen and not self._head and pos < len(data):
            left = len(data) - pos
            if left < _WANTED and (left < HEADER.size or data[pos + 4] == GTID_EVENT):
                self._head += data[pos:]
                return
            length = self._event(data[pos : pos + _WANTED])
            if length > left:
                self._skip = length - left
                return
            pos += length

    def _take_magic(self, data: memoryview) -> int:
        take = min(len(MAGIC) - len(self._head), len(data))
        self._head += data[:take]
        if len(self._head) == len(MAGIC):
            if bytes(self._head) != MAGIC:
                raise NotABinlog("the bytes do not start with the binary-log magic header")
            self._magic_seen = True
            self._head = bytearray()
        return take

    def _join_head(self, data: memoryview) -> int:
        """Completes a header cut by the last chunk's edge; the position in ``data`` after the
        event (or the chunk's end, with the rest of the event left to skip)."""
        joined = bytes(self._head) + bytes(data[: _WANTED - len(self._head)])
        if len(joined) < HEADER.size or (len(joined) < _WANTED and joined[4] == GTID_EVENT):
            self._head = bytearray(joined)
            return len(data)
        length = self._event(joined)
        rest = length - len(self._head)  # an event is never shorter than the bytes held of it
        self._head = bytearray()
        if rest > len(data):
            self._skip = rest - len(data)
            return len(data)
        return rest

    def _event(self, head: bytes | memoryview) -> int:
        """Reads one event's header (and GTID); returns the event's whole length."""
        timestamp, kind, server_id, length, _next, _flags = HEADER.unpack_from(head)
        if length < HEADER.size:
            raise NotABinlog(f"an event claims {length} bytes, less than its own header")
        # Format descriptions written at the file's start carry time 0 when rotated in.
        if timestamp:
            if self.first_time is None:
                self.first_time = timestamp
            self.last_time = timestamp
        self.server_ids.add(server_id)
        if kind == GTID_EVENT and len(head) >= HEADER.size + _GTID.size:
            seq, domain = _GTID.unpack_from(head, HEADER.size)
            gtid = f"{domain}-{server_id}-{seq}"
            if self.first_gtid is None:
                self.first_gtid = gtid
            self.last_gtid = gtid
        return int(length)

    def summary(self) -> BinlogSummary:
        if self._head or self._skip or not self._magic_seen:
            raise NotABinlog(
                f"the binary log ends inside an event ({self.bytes} bytes read): it is incomplete"
            )
        return BinlogSummary(
            bytes=self.bytes,
            first_event_at=_at(self.first_time),
            last_event_at=_at(self.last_time),
            first_gtid=self.first_gtid,
            last_gtid=self.last_gtid,
            server_ids=frozenset(self.server_ids),
        )


def _at(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None
