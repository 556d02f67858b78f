"""The archive's records in DynamoDB (moto): a segment and the state naming it go in together or
not at all, and a scheduled run is claimed once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.domain.recovery import (
    BREAK_PURGED,
    ArchiveState,
    HistoryBreak,
    Segment,
    SegmentCopy,
)
from tests.support.moto_env import MotoEnv

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _segment(sequence: int) -> Segment:
    return Segment(
        plan_id="p1",
        sequence=sequence,
        file=f"mysql-bin.{sequence:06d}",
        server_id=7,
        covered_until=T0 + timedelta(minutes=sequence),
        opened_at=T0,
        first_gtid="0-7-1",
        last_gtid="0-7-9",
        last_event_at=T0 + timedelta(minutes=sequence),
        raw_bytes=100,
        compressed_bytes=40,
        sha256="ab" * 32,
        compression="zstd",
        archived_at=T0 + timedelta(minutes=sequence),
        continues=sequence > 1,
        copies=(SegmentCopy("s1", "local", "pdb-primary", "us-east-1", f"k/{sequence}"),),
    )


def test_two_runs_adding_the_same_next_segment_store_it_once(aws: MotoEnv) -> None:
    repo = DynamoArchiveRepository()
    start = repo.state("p1")
    after = ArchiveState("p1", last_sequence=1, last_file="mysql-bin.000001", server_id=7)

    first = repo.add_segment(start, _segment(1), after)
    second = repo.add_segment(start, dataclasses.replace(_segment(1), sha256="cd" * 32), after)

    assert first is not None and first.version == 1
    assert second is None
    assert repo.segments("p1") == [_segment(1)]
    assert repo.state("p1") == first


def test_a_stale_state_refuses_the_write(aws: MotoEnv) -> None:
    repo = DynamoArchiveRepository()
    start = repo.state("p1")
    one = repo.add_segment(start, _segment(1), ArchiveState("p1", last_sequence=1))
    assert one is not None
    two = repo.add_segment(one, _segment(2), ArchiveState("p1", last_sequence=2))
    assert two is not None

    assert repo.save_state(one, ArchiveState("p1", last_error="late")) is None
    assert [s.sequence for s in repo.segments("p1")] == [1, 2]


def test_a_scheduled_run_is_claimed_once_and_breaks_are_kept(aws: MotoEnv) -> None:
    repo = DynamoArchiveRepository()

    assert repo.claim_run("p1", "2026-12-01T10:05:00Z", 0.0)
    assert not repo.claim_run("p1", "2026-12-01T10:05:00Z", 0.0)
    brk = HistoryBreak("p1", T0, BREAK_PURGED, "mysql-bin.000003 was purged")
    repo.add_break(brk)
    assert repo.breaks("p1") == [brk]
    repo.remove_break(brk)
    assert repo.breaks("p1") == []
