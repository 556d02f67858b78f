"""The frame index of a backup: where, in the compressed object, each part of the dump is.

The object is one SQL stream cut into independent compressed frames at the dump's section
boundaries (and inside a big table's rows); decompressed in order they are the whole dump, and
each frame alone decompresses to one piece of it. The index lists every frame in the object's
order with what it holds, so a restore can read and apply one table without the rest.

Kinds of frame, in the dump's words:
- ``header``: the session settings the dump starts with (character set, time zone, checks off);
- ``database``: ``CREATE DATABASE`` and ``USE`` (the second of a database only ``USE``);
- ``table``: a table's definition; ``rows``: its rows (several frames for a big table);
  ``triggers``: the triggers written after its rows;
- ``view-stub``: the placeholder table a view gets until ``view`` (its final definition);
- ``events``, ``routines``: a database's events and its procedures and functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FORMAT = 1
KINDS = frozenset(
    {"header", "database", "table", "rows", "triggers", "view-stub", "view", "events", "routines"}
)
# What a table is made of, in the order a restore applies it.
TABLE_KINDS = ("table", "rows", "triggers")


class BadFrameIndex(ValueError):
    """The manifest's frame index is not one this code wrote."""


@dataclass(frozen=True)
class Section:
    """What one frame holds: a kind, the database it is in and the object's name (None for the
    header, and a database's own sections have its name as ``name`` too)."""

    kind: str
    database: str | None = None
    name: str | None = None


HEADER = Section("header")


@dataclass(frozen=True)
class Frame:
    section: Section
    offset: int  # in the compressed object
    length: int  # compressed bytes
    raw_length: int  # SQL bytes it decompresses to

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def table(self) -> str | None:
        """``database.name`` of the table whose part this is, else None."""
        if self.section.kind in TABLE_KINDS:
            return f"{self.section.database}.{self.section.name}"
        return None


@dataclass(frozen=True)
class FrameIndex:
    frames: tuple[Frame, ...]

    def tables(self) -> list[str]:
        """``database.name`` of every table, in the dump's order."""
        seen: dict[str, None] = {}
        for frame in self.frames:
            if frame.section.kind == "table" and frame.table:
                seen[frame.table] = None
        return list(seen)

    def views(self) -> list[str]:
        """``database.name`` of every view, in the dump's order."""
        seen: dict[str, None] = {}
        for frame in self.frames:
            if frame.section.kind == "view" and frame.section.database:
                seen[f"{frame.section.database}.{frame.section.name}"] = None
        return list(seen)

    def table_frames(self, table: str) -> list[Frame]:
        """The frames of one table's definition, rows and triggers, in the object's order."""
        return [frame for frame in self.frames if frame.table == table]

    def selection(self, tables: Iterable[str]) -> list[Frame]:
        """The frames a restore of only ``tables`` applies, in the object's order: the header,
        the first ``database`` frame of each of their databases (it creates it), and each
        table's frames. Raises KeyError naming a table the index does not have."""
        wanted = set(tables)
        missing = sorted(wanted - set(self.tables()))
        if missing:
            raise KeyError(", ".join(missing))
        databases = {name.split(".", 1)[0] for name in wanted}
        chosen: list[Frame] = []
        created: set[str] = set()
        for frame in self.frames:
            kind, database = frame.section.kind, frame.section.database
            if kind == "header":
                chosen.append(frame)
            elif kind == "database" and database in databases and database not in created:
                created.add(database)
                chosen.append(frame)
            elif frame.table in wanted:
                chosen.append(frame)
        return chosen

    @property
    def raw_bytes(self) -> int:
        return sum(frame.raw_length for frame in self.frames)

    @property
    def compressed_bytes(self) -> int:
        return sum(frame.length for frame in self.frames)

    def to_manifest(self) -> dict[str, Any]:
        """The index as the manifest stores it: one compact row per frame."""
        return {
            "format": FORMAT,
            "columns": ["kind", "database", "name", "offset", "length", "rawLength"],
            "frames": [
                [s.kind, s.database, s.name, f.offset, f.length, f.raw_length]
                for f in self.frames
                for s in (f.section,)
            ],
        }

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> FrameIndex | None:
        """The manifest's index; None for a backup made without one. Raises BadFrameIndex when
        the index is there but not whole (frames that do not tile the object)."""
        data = manifest.get("frameIndex")
        if data is None:
            return None
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise BadFrameIndex("the frame index has an unknown format")
        rows = data.get("frames")
        if not isinstance(rows, Sequence):
            raise BadFrameIndex("the frame index has no frames")
        frames: list[Frame] = []
        position = 0
        for row in rows:
            try:
                kind, database, name, offset, length, raw = row
            except (TypeError, ValueError):
                raise BadFrameIndex(f"frame {len(frames)} is not a row of six") from None
            if kind not in KINDS or not all(isinstance(n, int) for n in (offset, length, raw)):
                raise BadFrameIndex(f"frame {len(frames)} is malformed")
            if offset != position or length <= 0 or raw < 0:
                raise BadFrameIndex(f"frame {len(frames)} does not follow the one before it")
            position = offset + length
            frames.append(Frame(Section(kind, database, name), offset, length, raw))
        size = manifest.get("compressedBytes")
        if isinstance(size, int) and position != size:
            raise BadFrameIndex("the frames do not cover the whole object")
        return cls(tuple(frames))


def merged_ranges(
    frames: Sequence[Frame], gap: int = 0, limit: int | None = None
) -> list[tuple[int, int]]:
    """(offset, end) byte ranges covering ``frames`` (in the object's order), neighbours and
    frames at most ``gap`` bytes apart joined: fewer ranged reads for the same frames. A range
    grows past ``limit`` bytes only to hold one frame: a reader holds one range at a time."""
    ranges: list[tuple[int, int]] = []
    for frame in frames:
        fits = limit is None or (ranges and frame.end - ranges[-1][0] <= limit)
        if ranges and frame.offset - ranges[-1][1] <= gap and fits:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], frame.end))
        else:
            ranges.append((frame.offset, frame.end))
    return ranges


@dataclass(frozen=True)
class Phase:
    """Frames a restore applies together: on several connections at once (``parallel``) or on
    one, in the dump's order; a phase ends before the next begins."""

    name: str
    frames: tuple[Frame, ...]
    parallel: bool


def restore_phases(index: FrameIndex) -> list[Phase]:
    """A whole backup's frames in the phases of a parallel restore (the header, which every
    connection runs first, is in none):

    1. ``structure``: databases, table definitions, view stubs, in the dump's order, on one
       connection (a table exists before any of its rows arrive);
    2. ``rows``: every rows frame but the last of a table cut into several, on any connection;
    3. ``rows-last``: those last frames (they close the table's ``DISABLE KEYS`` and may hold
       triggers that straddled the backup's read), on any connection;
    4. ``objects``: triggers, events, routines, the databases' second sections and final views,
       in the dump's order, on one connection.
    """
    last_of: dict[str, Frame] = {}
    counts: dict[str, int] = {}
    for frame in index.frames:
        if frame.section.kind == "rows" and frame.table:
            last_of[frame.table] = frame
            counts[frame.table] = counts.get(frame.table, 0) + 1
    held = {last_of[t] for t, n in counts.items() if n > 1}
    structure: list[Frame] = []
    rows: list[Frame] = []
    rows_last: list[Frame] = []
    objects: list[Frame] = []
    created: set[str | None] = set()
    for frame in index.frames:
        kind = frame.section.kind
        if kind == "header":
            continue
        if kind == "rows":
            (rows_last if frame in held else rows).append(frame)
        elif kind in ("table", "view-stub") or (
            kind == "database" and frame.section.database not in created
        ):
            created.add(frame.section.database if kind == "database" else None)
            structure.append(frame)
        else:
            objects.append(frame)
    return [
        Phase("structure", tuple(structure), False),
        Phase("rows", tuple(rows), True),
        Phase("rows-last", tuple(rows_last), True),
        Phase("objects", tuple(objects), False),
    ]
