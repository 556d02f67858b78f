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

Beside the frames, the index records what each view reads (``reads``: the tables and views its
final definition names, found in the dump's own text as it went by, ``view_reads``), so a view
can be restored alone with what it needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FORMAT = 1
KINDS = frozenset(
    {"header", "database", "table", "rows", "triggers", "view-stub", "view", "events", "routines"}
)
# What a table is made of, in the order a restore applies it.
TABLE_KINDS = ("table", "rows", "triggers")
VIEW_KINDS = ("view-stub", "view")


class BadFrameIndex(ValueError):
    """The manifest's frame index is not one this code wrote."""


class UnknownReads(KeyError):
    """Views whose reads the index does not record (a backup made before it did): ``args[0]``
    lists them."""


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
    # ``database.name`` of each view -> what its definition reads; a view missing here (backups
    # made before this was recorded) cannot be restored alone.
    reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def tables(self) -> list[str]:
        """``database.name`` of every table, in the dump's order."""
        return self._names("table")

    def views(self) -> list[str]:
        """``database.name`` of every view, in the dump's order."""
        return self._names("view")

    def _names(self, kind: str) -> list[str]:
        seen: dict[str, None] = {}
        for frame in self.frames:
            if frame.section.kind == kind and frame.section.database:
                seen[f"{frame.section.database}.{frame.section.name}"] = None
        return list(seen)

    def needs(self, names: Iterable[str]) -> tuple[list[str], list[str]]:
        """(tables, views) a restore of ``names`` makes: each table named, each view named and,
        for a view, what it reads, through views it reads too. Raises KeyError naming what the
        index has neither as a table nor as a view, UnknownReads naming views whose reads it
        does not record."""
        tables, views = set(self.tables()), set(self.views())
        wanted = list(dict.fromkeys(names))
        missing = [name for name in wanted if name not in tables and name not in views]
        if missing:
            raise KeyError(", ".join(sorted(missing)))
        found: dict[str, None] = {}
        blind: list[str] = []
        while wanted:
            name = wanted.pop()
            if name in found:
                continue
            found[name] = None
            if name in views:
                if name not in self.reads:
                    blind.append(name)
                wanted.extend(self.reads.get(name, ()))
        if blind:
            raise UnknownReads(", ".join(sorted(blind)))
        return [n for n in self.tables() if n in found], [n for n in self.views() if n in found]

    def table_frames(self, table: str) -> list[Frame]:
        """The frames of one table's definition, rows and triggers, in the object's order."""
        return [frame for frame in self.frames if frame.table == table]

    def selection(self, names: Iterable[str]) -> list[Frame]:
        """The frames a restore of only ``names`` (tables and views) applies, in the object's
        order: the header, the first ``database`` frame of each of their databases (it creates
        it) and a later one where their frames follow it (it switches back), each table's
        frames, each view's stub and final definition, for what the views read too (``needs``,
        whose errors it raises)."""
        tables, views = self.needs(names)
        wanted, chosen_views = set(tables), set(views)
        databases = {name.split(".", 1)[0] for name in (*tables, *views)}
        chosen: list[Frame] = []
        created: set[str] = set()
        switch: Frame | None = None  # a later database frame, applied if its section is
        for frame in self.frames:
            kind, database = frame.section.kind, frame.section.database
            if kind == "header":
                chosen.append(frame)
            elif kind == "database":
                switch = None
                if database in databases and database not in created:
                    created.add(database)
                    chosen.append(frame)
                elif database in databases:
                    switch = frame
            elif frame.table in wanted or (
                kind in VIEW_KINDS and f"{database}.{frame.section.name}" in chosen_views
            ):
                if switch is not None:
                    chosen.append(switch)
                    switch = None
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
            "viewReads": {view: list(read) for view, read in self.reads.items()},
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
        reads = data.get("viewReads", {})
        if not isinstance(reads, Mapping) or not all(
            isinstance(view, str)
            and isinstance(read, list)
            and all(isinstance(name, str) for name in read)
            for view, read in reads.items()
        ):
            raise BadFrameIndex("the frame index's view reads are malformed")
        return cls(tuple(frames), {view: tuple(read) for view, read in reads.items()})


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


# A string literal (skipped), then an optional AS (an alias follows), then a chain of quoted
# identifiers: `db`.`table`, `table`.`column`, `alias`.
_VIEW_TOKENS = re.compile(
    r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\""
    r"|(\bAS\s+)?((?:`(?:[^`]|``)*`\.)*`(?:[^`]|``)*`)",
    re.IGNORECASE,
)
_IDENTIFIER = re.compile(r"`((?:[^`]|``)*)`")


def view_reads(definition: str, view: str, known: Iterable[str]) -> tuple[str, ...]:
    """What the view ``view`` (``database.name``) reads among the tables and views ``known``,
    from its definition as mariadb-dump writes it: every name quoted, qualified only when in
    another database (db.t, t.column, t, each part in backquotes). A column or an
    alias that happens to share a known table's name adds that table: one table too many is
    restored, never one too few."""
    objects = set(known)
    database = view.split(".", 1)[0]
    found: dict[str, None] = {}
    for match in _VIEW_TOKENS.finditer(definition):
        chain = match.group(2)
        if chain is None or match.group(1):
            continue
        parts = [part.replace("``", "`") for part in _IDENTIFIER.findall(chain)]
        candidates = [f"{database}.{parts[0]}"]
        if len(parts) > 1:
            candidates.append(f"{parts[0]}.{parts[1]}")
        for name in candidates:
            if name in objects and name != view:
                found[name] = None
    return tuple(found)
