"""Cutting the dump into zstd frames where its sections begin, and recording them
(domain/frame_index.py).

mariadb-dump opens every section with a comment block of its own, on lines of their own::

    --
    -- Table structure for table `VmInstanceVO`
    --

Row data never holds a raw newline (mariadb-dump escapes it), so ``\\n--\\n-- `` followed by one
of the known headings is one. The cutter finds those with one ``find`` per chunk; a table's
triggers follow its ``UNLOCK TABLES;`` (looked for backwards from the next heading, only in the
text not yet compressed); a table's rows are cut again at the first ``INSERT`` after every
FRAME_RAW_BYTES of SQL. Everything else (the text between cuts) goes to the compressor as it came.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import zstandard

from platform_backup.adapters.compression import LEVELS, ZSTD_TUNING
from platform_backup.domain.frame_index import HEADER, Frame, FrameIndex, Section, view_reads

FRAME_RAW_BYTES = 64 << 20
# A view's final definition is kept to find what it reads; one longer than this is not (it is
# then restored only with the whole backup).
VIEW_TEXT_BYTES = 1 << 20
_HEADING = b"\n--\n-- "
_UNLOCK = b"\nUNLOCK TABLES;\n"
_INSERT = b"\nINSERT INTO "
# A heading line: "-- <words> `name`" or "-- <words> 'name'" (database names in single quotes).
_HEADINGS: dict[bytes, str] = {
    b"Current Database: ": "database",
    b"Table structure for table ": "table",
    b"Dumping data for table ": "rows",
    b"Temporary table structure for view ": "view-stub",
    b"Final view structure for view ": "view",
    b"Dumping events for database ": "events",
    b"Dumping routines for database ": "routines",
}
_NAME = re.compile(rb"`((?:[^`]|``)*)`|'([^']*)'")


class FramedZstd:
    """A zstd compressor that ends its frame on ``cut`` and starts the next, recording each
    frame's place. Frames carry zstd's content checksum, so a frame read alone is checked as it
    is decompressed. ``emit`` gets the compressed bytes in order."""

    def __init__(self, level: int, emit: Callable[[bytes], None]) -> None:
        tuning = ZSTD_TUNING if level == LEVELS["zstd"] else {}
        params = zstandard.ZstdCompressionParameters.from_level(
            level, write_checksum=True, **tuning
        )
        self._cctx = zstandard.ZstdCompressor(compression_params=params)
        self._obj: Any = self._cctx.compressobj()
        self._emit = emit
        self._section = HEADER
        self._offset = 0
        self._position = 0
        self._raw = 0
        self.frames: list[Frame] = []

    @property
    def frame_raw(self) -> int:
        return self._raw

    def write(self, data: Any) -> None:
        if not len(data):
            return
        self._raw += len(data)
        if out := self._obj.compress(data):
            self._out(out)

    def cut(self, section: Section) -> None:
        """The current frame ends here; what comes next is ``section``."""
        if self._raw:
            self._out(self._obj.flush())
            self.frames.append(
                Frame(self._section, self._offset, self._position - self._offset, self._raw)
            )
            self._obj = self._cctx.compressobj()
            self._offset, self._raw = self._position, 0
        self._section = section

    def finish(self) -> FrameIndex:
        self.cut(HEADER)
        return FrameIndex(tuple(self.frames))

    def _out(self, data: bytes) -> None:
        self._position += len(data)
        self._emit(data)


class SectionCutter:
    """Feeds the dump's text to a FramedZstd, cutting it where sections begin. Chunks may split
    the text anywhere; a heading split between two is held back until it is whole."""

    def __init__(self, framer: FramedZstd, frame_raw_bytes: int | None = None) -> None:
        self._framer = framer
        self._limit = frame_raw_bytes or FRAME_RAW_BYTES
        self._held = b""
        self._section = HEADER
        self._database: str | None = None
        # The rows' UNLOCK TABLES has gone to the framer: what follows, up to the next heading,
        # is their table's triggers, held back until that heading comes (a trigger is never
        # left in a rows frame, which the restore applies beside the table's other rows).
        self._unlocked = False
        # Each view's final definition so far, to find what it reads (``finish``).
        self._views: dict[str, list[bytes]] = {}

    def feed(self, chunk: Any) -> None:
        """``chunk``: bytes, or a memoryview that starts at its buffer's first byte (Drain's
        chunks do: their buffer is searched in place, without a copy)."""
        if self._held:
            text: Any = self._held + bytes(chunk)
            self._held = b""
        elif isinstance(chunk, memoryview) and isinstance(chunk.obj, bytes | bytearray):
            self._scan(chunk.obj, len(chunk))
            return
        else:
            text = chunk
        self._scan(text, len(text))

    def finish(self) -> FrameIndex:
        held, self._held = self._held, b""
        self._keep_view(held)
        self._framer.write(held)
        index = self._framer.finish()
        known = (*index.tables(), *index.views())
        reads = {
            view: view_reads(b"".join(parts).decode("utf-8", "replace"), view, known)
            for view, parts in self._views.items()
            if sum(map(len, parts)) <= VIEW_TEXT_BYTES
        }
        return replace(index, reads=reads)

    def _scan(self, text: Any, end: int) -> None:
        done = 0  # text before this has gone to the framer
        at = text.find(_HEADING, 0, end)
        while at >= 0:
            line_end = text.find(b"\n", at + len(_HEADING), end)
            if line_end < 0:  # the heading's line goes on in the next chunk
                self._write(text, done, at)
                self._held = bytes(text[at:end])
                return
            section = self._classify(bytes(text[at + len(_HEADING) : line_end]))
            if section is not None:
                start = at + 1
                if self._section.kind == "rows":
                    unlock = text.rfind(_UNLOCK, done, start)
                    after = unlock + len(_UNLOCK) if unlock >= 0 else done
                    if (unlock >= 0 or self._unlocked) and bytes(text[after:start]).strip():
                        self._write(text, done, after)
                        done = after
                        self._cut(Section("triggers", *self._names()))
                self._write(text, done, start)
                done = start
                self._cut(section)
            at = text.find(_HEADING, line_end, end)
        if self._section.kind == "rows":
            unlock = text.rfind(_UNLOCK, done, end)
            if unlock >= 0:
                self._write(text, done, unlock + len(_UNLOCK))
                done, self._unlocked = unlock + len(_UNLOCK), True
            if self._unlocked:
                self._held = bytes(text[done:end])
                return
        # A heading's first bytes at the very end: held back until the next chunk says.
        for tail in range(max(done, end - len(_HEADING) + 1), end):
            if text[tail] == 10 and _HEADING.startswith(bytes(text[tail:end])):
                self._write(text, done, tail)
                self._held = bytes(text[tail:end])
                return
        self._write(text, done, end)

    def _write(self, text: Any, start: int, end: int) -> None:
        """Text [start, end) to the framer; a big table's rows cut at an INSERT on the way."""
        framer = self._framer
        self._keep_view(memoryview(text)[start:end])
        while self._section.kind == "rows" and framer.frame_raw + (end - start) > self._limit:
            # The first INSERT at or after the limit (none in a chunk: the next chunk's).
            insert = text.find(_INSERT, start + max(0, self._limit - framer.frame_raw - 1), end)
            if insert < 0:
                break
            framer.write(memoryview(text)[start : insert + 1])
            start = insert + 1
            self._cut(self._section)
        framer.write(memoryview(text)[start:end])

    def _keep_view(self, text: Any) -> None:
        if self._section.kind == "view":
            parts = self._views.setdefault(f"{self._section.database}.{self._section.name}", [])
            if sum(map(len, parts)) <= VIEW_TEXT_BYTES:
                parts.append(bytes(text))

    def _cut(self, section: Section) -> None:
        self._section, self._unlocked = section, False
        self._framer.cut(section)

    def _names(self) -> tuple[str | None, str | None]:
        return self._section.database, self._section.name

    def _classify(self, line: bytes) -> Section | None:
        for prefix, kind in _HEADINGS.items():
            if not line.startswith(prefix):
                continue
            found = _NAME.fullmatch(line[len(prefix) :].rstrip())
            if found is None:
                return None
            quoted = found.group(1)
            name = (
                quoted.decode("utf-8").replace("``", "`")
                if quoted is not None
                else found.group(2).decode("utf-8")
            )
            if kind in ("database", "events", "routines"):
                self._database = name
                return Section(kind, name, name)
            return Section(kind, self._database, name)
        return None
