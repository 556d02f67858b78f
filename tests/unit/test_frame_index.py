"""The frame index of a backup (domain/frame_index.py): read back from a manifest only when it
tiles the object, and the frames a restore of chosen tables applies."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from platform_backup.domain.frame_index import (
    BadFrameIndex,
    Frame,
    FrameIndex,
    Section,
    merged_ranges,
    view_reads,
)
from platform_backup.domain.restore import RestoreRequest, check_tables
from platform_backup.errors import ValidationFailed

LAYOUT = [
    ("header", None, None, 100),
    ("database", "zstack", "zstack", 50),
    ("events", "zstack", "zstack", 10),
    ("table", "zstack", "A", 30),
    ("rows", "zstack", "A", 1000),
    ("rows", "zstack", "A", 900),
    ("triggers", "zstack", "A", 40),
    ("table", "zstack", "B", 30),
    ("rows", "zstack", "B", 200),
    ("view-stub", "zstack", "V", 20),
    ("database", "other", "other", 50),
    ("table", "other", "A", 30),
    ("routines", "other", "other", 70),
    ("database", "zstack", "zstack", 20),
    ("view", "zstack", "V", 60),
]


def index() -> FrameIndex:
    frames, offset = [], 0
    for kind, database, name, length in LAYOUT:
        frames.append(Frame(Section(kind, database, name), offset, length, length * 4))
        offset += length
    return FrameIndex(tuple(frames))


def manifest(built: FrameIndex) -> dict[str, Any]:
    return {"frameIndex": built.to_manifest(), "compressedBytes": built.compressed_bytes}


def test_the_index_reads_back_from_its_manifest() -> None:
    built = index()
    assert FrameIndex.from_manifest(manifest(built)) == built
    assert FrameIndex.from_manifest({"compressedBytes": 5}) is None
    assert built.tables() == ["zstack.A", "zstack.B", "other.A"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m["frameIndex"]["frames"].pop(3),  # a hole
        lambda m: m["frameIndex"]["frames"][2].__setitem__(0, "mystery"),
        lambda m: m["frameIndex"].__setitem__("format", 99),
        lambda m: m.__setitem__("compressedBytes", m["compressedBytes"] + 1),  # short
    ],
)
def test_an_index_that_does_not_tile_the_object_is_refused(damage: Any) -> None:
    damaged = manifest(index())
    damage(damaged)
    with pytest.raises(BadFrameIndex):
        FrameIndex.from_manifest(damaged)


def test_a_table_is_its_frames_plus_the_header_and_the_first_frame_of_its_database() -> None:
    chosen = index().selection(["zstack.A"])
    assert [(f.section.kind, f.section.database, f.section.name) for f in chosen] == [
        ("header", None, None),
        ("database", "zstack", "zstack"),
        ("table", "zstack", "A"),
        ("rows", "zstack", "A"),
        ("rows", "zstack", "A"),
        ("triggers", "zstack", "A"),
    ]
    both = index().selection(["other.A", "zstack.B"])
    kinds = ["header", "database", "table", "rows", "database", "table"]
    assert [f.section.kind for f in both] == kinds
    with pytest.raises(KeyError, match=r"zstack\.V"):
        index().selection(["zstack.V"])  # a view is not a table


def test_neighbouring_frames_are_read_in_one_range() -> None:
    chosen = index().selection(["zstack.A"])
    assert merged_ranges(chosen) == [(0, 150), (160, 2130)]
    assert merged_ranges(chosen, gap=10) == [(0, 2130)]


def test_a_range_holds_at_most_its_limit_unless_one_frame_is_bigger() -> None:
    frames = index().frames
    ranges = merged_ranges(frames, limit=1000)
    assert len(ranges) > 1
    # Together the ranges cover every frame once, in order, without a gap between neighbours.
    assert ranges[0][0] == frames[0].offset and ranges[-1][1] == frames[-1].end
    assert all(a[1] == b[0] for a, b in pairwise(ranges))
    for start, end in ranges:
        inside = [f for f in frames if start <= f.offset and f.end <= end]
        assert end - start <= 1000 or len(inside) == 1


def with_views(reads: dict[str, tuple[str, ...]]) -> FrameIndex:
    """``index()`` with ZStack's pair of a table BEO and a view BVO, and a view W, after it."""
    end = index().frames[-1].end
    return FrameIndex(
        (
            *index().frames,
            Frame(Section("table", "zstack", "BEO"), end, 30, 120),
            Frame(Section("view", "zstack", "BVO"), end + 30, 60, 240),
            Frame(Section("view", "zstack", "W"), end + 90, 60, 240),
        ),
        reads,
    )


def test_a_view_comes_with_the_tables_and_views_it_reads() -> None:
    # Given a backup whose view V reads the view W, which reads two tables of two databases
    built = with_views({"zstack.V": ("zstack.W",), "zstack.W": ("zstack.B", "other.A")})
    assert built.views() == ["zstack.V", "zstack.BVO", "zstack.W"]
    # Then restoring V makes V and W, and the tables W reads
    assert built.needs(["zstack.V"]) == (["zstack.B", "other.A"], ["zstack.V", "zstack.W"])
    assert check_tables(request(tables=["zstack.V"]), built) == {
        "zstack": ["B", "V", "W"],
        "other": ["A"],
    }
    # And it applies their frames in the dump's order: the tables and the stub in the first
    # section of their databases, the final views after switching back to theirs
    chosen = built.selection(["zstack.V"])
    assert [(f.section.kind, f.section.database, f.section.name) for f in chosen] == [
        ("header", None, None),
        ("database", "zstack", "zstack"),
        ("table", "zstack", "B"),
        ("rows", "zstack", "B"),
        ("view-stub", "zstack", "V"),
        ("database", "other", "other"),
        ("table", "other", "A"),
        ("database", "zstack", "zstack"),
        ("view", "zstack", "V"),
        ("view", "zstack", "W"),
    ]
    # And views reading each other in a circle end (each is made once)
    circle = with_views({"zstack.V": ("zstack.W",), "zstack.W": ("zstack.V",)})
    assert circle.needs(["zstack.W"]) == ([], ["zstack.V", "zstack.W"])


def test_a_view_whose_reads_the_backup_does_not_record_is_refused_naming_the_table() -> None:
    # Given a backup made before views' reads were recorded (ZStack's BVO reads BEO)
    built = with_views({})
    # Then choosing a view is refused, naming the table to choose where ZStack's names give it
    for chosen, hint in (
        ("zstack.BVO", "(zstack.BEO)"),
        ("zstack.V", "choose the tables they read"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            check_tables(request(tables=[chosen, "zstack.A"]), built)
        (detail,) = refused.value.details
        assert detail.field == "tables"
        assert f"views, not tables: {chosen}" in detail.message and hint in detail.message
    # And so is one read by a view whose reads are recorded
    with pytest.raises(ValidationFailed, match=r"views, not tables: zstack\.W"):
        check_tables(request(tables=["zstack.V"]), with_views({"zstack.V": ("zstack.W",)}))


def test_the_views_reads_read_back_from_the_manifest_and_malformed_ones_are_refused() -> None:
    built = with_views({"zstack.V": ("zstack.W",), "zstack.W": ()})
    assert FrameIndex.from_manifest(manifest(built)) == built
    damaged = manifest(built)
    damaged["frameIndex"]["viewReads"]["zstack.W"] = "zstack.B"
    with pytest.raises(BadFrameIndex):
        FrameIndex.from_manifest(damaged)


# The final definitions of two views as mariadb-dump 10.11 writes them (the ZStack fixture's
# VmInstanceVO, shortened, and a view of another database reading it).
ZSTACK_VIEW = (
    "/*!50001 DROP VIEW IF EXISTS `VmInstanceVO`*/;\n"
    "/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n"
    "/*!50001 VIEW `VmInstanceVO` AS select `VmInstanceEO`.`uuid` AS `uuid`,"
    "`VmInstanceEO`.`name` AS `name` from `VmInstanceEO` where `VmInstanceEO`.`deleted` is null"
    " */;\n"
)
OTHER_VIEW = (
    "/*!50001 VIEW `v2` AS select `x`.`uuid` AS `uuid`,`report`.`t`.`a` AS `a` from "
    "(`zstack`.`VmInstanceVO` `x` join `report`.`t` on(1 = 1)) where `x`.`name` like "
    "'`zstack`.`VolumeEO`' */;\n"
)


def test_what_a_view_reads_is_found_in_its_definition_among_the_backups_objects() -> None:
    known = [
        "zstack.VmInstanceEO",
        "zstack.VmInstanceVO",
        "zstack.VolumeEO",
        "zstack.uuid",  # a table named like a column alias: the alias does not read it
        "report.t",
        "report.v2",
    ]
    # Unqualified names are of the view's database; the view itself and aliases are not read
    assert view_reads(ZSTACK_VIEW, "zstack.VmInstanceVO", known) == ("zstack.VmInstanceEO",)
    # Qualified names are of theirs; a string that looks like a name is not one
    assert view_reads(OTHER_VIEW, "report.v2", known) == ("report.t", "zstack.VmInstanceVO")


def request(**fields: Any) -> RestoreRequest:
    return RestoreRequest.model_validate({"target": {"mode": "new-database"}, **fields})


def test_chosen_tables_must_be_in_the_index() -> None:
    tables = index()
    assert check_tables(request(), tables) == {}
    assert check_tables(request(tables=["zstack.B", "other.A", "zstack.B"]), tables) == {
        "zstack": ["B"],
        "other": ["A"],
    }
    # (in place as well, confirmed as any in-place restore)
    in_place = RestoreRequest.model_validate(
        {"target": {"mode": "in-place"}, "confirm": "p", "tables": ["zstack.A"]}
    )
    assert check_tables(in_place, tables) == {"zstack": ["A"]}
    for wrong, indexed in (
        (request(tables=["zstack.Nope"]), tables),
        (request(tables=["zstack.A"]), None),
    ):
        with pytest.raises(ValidationFailed) as refused:
            check_tables(wrong, indexed)
        assert [d.field for d in refused.value.details] == ["tables"]
