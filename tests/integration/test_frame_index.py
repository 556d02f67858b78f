"""Framed backups against the real mariadb-dump: the frame index the manifest records agrees
with the object (every frame decompresses alone, and each table's frames are exactly its part of
the dump), whatever the chunks the dump's text arrived in."""

from __future__ import annotations

import json
import random
import re

import pytest
import zstandard

from platform_backup.adapters.dump_frames import FramedZstd, SectionCutter
from platform_backup.domain.frame_index import FrameIndex
from tests.integration.conftest import S3Factory, SmallFrames

pytestmark = pytest.mark.integration

# The dump's section headings, as a reader of mariadb-dump's output would split it.
HEADING = re.compile(
    rb"^--\n-- (Current Database: |Table structure for table |Dumping data for table "
    rb"|Temporary table structure for view |Final view structure for view "
    rb"|Dumping events for database |Dumping routines for database )[`']?([^`'\n]*)",
    re.M,
)


def sections(dump: bytes) -> list[tuple[bytes, str, bytes]]:
    """(heading, name, text) of each section of the dump, the header's heading empty."""
    starts = list(HEADING.finditer(dump))
    found = [(b"", "", dump[: starts[0].start()])]
    for here, after in zip(starts, [*starts[1:], None], strict=True):
        end = after.start() if after else len(dump)
        found.append((here.group(1), here.group(2).decode(), dump[here.start() : end]))
    return found


def table_texts(dump: bytes) -> dict[str, bytes]:
    """database.table -> its definition, rows and triggers, as the dump has them."""
    texts: dict[str, bytes] = {}
    database = ""
    for heading, name, text in sections(dump):
        if heading == b"Current Database: ":
            database = name
        elif heading in (b"Table structure for table ", b"Dumping data for table "):
            key = f"{database}.{name}"
            texts[key] = texts.get(key, b"") + text
    return texts


def decompress(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def test_the_frame_index_agrees_with_the_object(
    platform_dbs: list[str],
    buckets: tuple[str, str],
    s3_client: S3Factory,
    small_frames_backup: SmallFrames,
) -> None:
    # Given the fixtures backed up in frames of at most 64 KiB of rows, so their bigger tables
    # span several
    s3 = s3_client()
    key, result = small_frames_backup
    data = s3.get_object(Bucket=buckets[0], Key=key)["Body"].read()
    manifest = json.loads(
        s3.get_object(Bucket=buckets[0], Key=f"{key}.manifest.json")["Body"].read()
    )
    index = FrameIndex.from_manifest(manifest)
    assert index is not None
    # Then the frames tile the object and each decompresses alone to its recorded length
    pieces = [decompress(data[f.offset : f.end]) for f in index.frames]
    assert [len(p) for p in pieces] == [f.raw_length for f in index.frames]
    dump = b"".join(pieces)
    assert len(dump) == result.raw_bytes and index.compressed_bytes == len(data)
    # and the whole object, read across its frames, is that same dump
    whole = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    assert whole.decompress(data) == dump
    # and every table of the manifest is in the index, its frames exactly its part of the dump
    listed = [f"{t['database']}.{t['name']}" for t in manifest["tables"]]
    assert sorted(index.tables()) == sorted(listed)
    texts = table_texts(dump)
    for table in listed:
        frames = index.table_frames(table)
        assert b"".join(pieces[index.frames.index(f)] for f in frames) == texts[table], table
    # and a big table's rows are in several frames, each starting at a statement
    audits = index.table_frames(f"{platform_dbs[0]}.AuditsVO")
    rows = [pieces[index.frames.index(f)] for f in audits if f.section.kind == "rows"]
    assert len(rows) > 1
    assert all(piece.startswith(b"INSERT INTO `AuditsVO`") for piece in rows[1:])
    # and triggers have frames of their own, after their table's rows
    film = index.table_frames(f"{platform_dbs[1]}.film")
    assert [f.section.kind for f in film][-1] == "triggers"
    assert b"TRIGGER `ins_film`" in pieces[index.frames.index(film[-1])]
    assert all(b"TRIGGER" not in pieces[index.frames.index(f)] for f in film[:-1])
    # and views, routines and events are frames of their own kinds
    kinds = {f.section.kind for f in index.frames}
    assert {"header", "database", "view-stub", "view", "routines", "events"} <= kinds
    # and what each view reads is recorded: every view of the manifest, by the tables and
    # views its definition names (ZStack's VmInstanceVO its EO table, Sakila's film_list its
    # five tables)
    zstack, sakila = platform_dbs[:2]
    assert sorted(index.reads) == sorted(f"{v['database']}.{v['name']}" for v in manifest["views"])
    assert index.reads[f"{zstack}.VmInstanceVO"] == (f"{zstack}.VmInstanceEO",)
    assert sorted(index.reads[f"{sakila}.film_list"]) == [
        f"{sakila}.{t}" for t in ("actor", "category", "film", "film_actor", "film_category")
    ]
    # and the same dump cut by the cutter in any chunking gives the same sections, triggers
    # included (a chunk that ends inside a trigger never leaves it in its table's rows frame,
    # which the restore applies beside the table's other rows), each table's frames still
    # exactly its part
    for seed in range(3):
        chosen = random.Random(seed)
        out = bytearray()
        cutter = SectionCutter(FramedZstd(1, out.extend))
        at = 0
        while at < len(dump):
            size = chosen.choice([1, 2, 5, 7, 100, 4096, 1 << 20])
            buffer = bytearray(dump[at : at + size]) + bytearray(16)
            cutter.feed(memoryview(buffer)[: min(size, len(dump) - at)])
            at += size
        again = cutter.finish()
        got = [decompress(bytes(out[f.offset : f.end])) for f in again.frames]
        assert b"".join(got) == dump
        assert [f.section for f in again.frames] == [f.section for f in index.frames]
        assert again.reads == index.reads
        assert not [
            f
            for f in again.frames
            if f.section.kind == "rows" and b"TRIGGER" in got[again.frames.index(f)]
        ]
        for table in listed:
            frames = again.table_frames(table)
            assert b"".join(got[again.frames.index(f)] for f in frames) == texts[table], table
