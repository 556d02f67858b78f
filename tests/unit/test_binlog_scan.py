"""The binary-log scanner, fed the same bytes in every chunking (a header cut anywhere), and the
choice of files an archive run makes, with the breaks it finds."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from platform_backup.adapters.binlog_events import MAGIC, BinlogScanner, NotABinlog
from platform_backup.domain.recovery import BREAK_PURGED, BREAK_RESET, BREAK_SERVER, ArchiveState
from platform_backup.services.archive_continuity import to_archive
from platform_backup.services.ports import BinlogFile, BinlogServerStatus


def event(when: int, kind: int, server: int, body: bytes) -> bytes:
    return struct.pack("<IBIIIH", when, kind, server, 19 + len(body), 0, 0) + body


def gtid(when: int, server: int, domain: int, seq: int) -> bytes:
    return event(when, 162, server, struct.pack("<QI", seq, domain) + b"\x00" * 7)


BINLOG = (
    MAGIC
    + event(1_700_000_000, 15, 7, b"f" * 100)  # format description
    + gtid(1_700_000_001, 7, 0, 41)
    + event(1_700_000_001, 30, 7, b"r" * 3000)  # rows
    + gtid(1_700_000_005, 7, 0, 42)
    + event(1_700_000_009, 4, 7, b"mysql-bin.000002")  # rotate
)


@pytest.mark.parametrize("size", [1, 2, 5, 19, 23, 31, 64, 4096, len(BINLOG)])
def test_every_chunking_reads_the_same(size: int) -> None:
    # Given the bytes of a file in chunks of `size`
    scan = BinlogScanner()
    for start in range(0, len(BINLOG), size):
        scan.feed(BINLOG[start : start + size])
    # Then the times, GTIDs, server and size are those of its events
    summary = scan.summary()
    assert summary.first_event_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert summary.last_event_at == datetime.fromtimestamp(1_700_000_009, UTC)
    assert (summary.first_gtid, summary.last_gtid) == ("0-7-41", "0-7-42")
    assert summary.server_ids == {7}
    assert summary.bytes == len(BINLOG)


def test_a_file_cut_short_or_not_a_binlog_is_refused() -> None:
    cut = BinlogScanner()
    cut.feed(BINLOG[:-5])
    with pytest.raises(NotABinlog, match="incomplete"):
        cut.summary()
    with pytest.raises(NotABinlog, match="magic"):
        BinlogScanner().feed(b"SELECT 1;")


def status(*names: str, server_id: int = 7) -> BinlogServerStatus:
    files = tuple(BinlogFile(n, 100) for n in names)
    return BinlogServerStatus(True, "ROW", server_id, files, 0)


def state(last: str | None) -> ArchiveState:
    return ArchiveState(plan_id="p", last_sequence=3, last_file=last, server_id=7)


def test_first_run_starts_at_the_newest_backups_file_if_the_server_has_it() -> None:
    server = status("b.000003", "b.000004", "b.000005", "b.000006")
    found = to_archive(state(None), server, "b.000004")
    assert [f.name for f in found.files] == ["b.000004", "b.000005"] and found.first_run
    gone = to_archive(state(None), server, "b.000001")
    assert [f.name for f in gone.files] == ["b.000005"]


def test_later_runs_take_every_closed_file_after_the_last() -> None:
    found = to_archive(
        state("b.000004"), status("b.000004", "b.000005", "b.000006", "b.000007"), None
    )
    assert [f.name for f in found.files] == ["b.000005", "b.000006"] and found.broken is None


def test_purged_files_reset_and_another_server_are_breaks() -> None:
    purged = to_archive(state("b.000004"), status("b.000007", "b.000008", "b.000009"), None)
    assert purged.broken is not None and purged.broken.kind == BREAK_PURGED
    assert "b.000005 to b.000006 (2 files)" in purged.broken.reason
    assert [f.name for f in purged.files] == ["b.000007", "b.000008"]
    reset = to_archive(state("b.000004"), status("b.000001", "b.000002"), None)
    assert reset.broken is not None and reset.broken.kind == BREAK_RESET
    assert [f.name for f in reset.files] == ["b.000001"]
    other = to_archive(state("b.000004"), status("b.000005", "b.000006", server_id=9), None)
    assert other.broken is not None and other.broken.kind == BREAK_SERVER
