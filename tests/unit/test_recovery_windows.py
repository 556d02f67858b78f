"""The recovery windows and the replay plan, from segments, backups and breaks as recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from platform_backup.domain.recovery import (
    BREAK_PURGED,
    BREAK_RESTORE,
    BackupStart,
    HistoryBreak,
    NotRecoverable,
    Segment,
    plan_replay,
    recovery_view,
    segments_needed_from,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def segment(sequence: int, index: int, opened: float, closed: float, continues: bool = True):
    return Segment(
        plan_id="p",
        sequence=sequence,
        file=f"mysql-bin.{index:06d}",
        server_id=7,
        covered_until=at(closed),
        opened_at=at(opened),
        first_gtid=None,
        last_gtid=None,
        last_event_at=at(closed),
        raw_bytes=1000 * sequence,
        compressed_bytes=100,
        sha256="0" * 64,
        compression="zstd",
        archived_at=at(closed),
        continues=continues and sequence > 1,
    )


def backup(backup_id: str, index: int, minutes: float) -> BackupStart:
    return BackupStart(backup_id, at(minutes), f"mysql-bin.{index:06d}", 400, at(minutes))


def test_a_backup_inside_an_unbroken_chain_recovers_to_the_second_before_the_last_close() -> None:
    segments = [segment(1, 1, 0, 5), segment(2, 2, 5, 10), segment(3, 3, 10, 15)]
    view = recovery_view([backup("b1", 2, 6)], segments, [], now=at(16))

    assert [(w.start, w.end) for w in view.windows] == [(at(6), at(15) - timedelta(seconds=1))]
    assert view.last_recoverable == at(15) - timedelta(seconds=1)
    assert view.lag_seconds == 60.0
    assert view.gaps == []


def test_binlogs_purged_before_archiving_end_the_window_until_the_next_full_backup() -> None:
    segments = [segment(1, 1, 0, 5), segment(2, 2, 5, 10), segment(3, 5, 20, 25, continues=False)]
    breaks = [HistoryBreak("p", at(20), BREAK_PURGED, "mysql-bin.000003 to 000004 were purged")]
    backups = [backup("b1", 1, 1), backup("b2", 5, 21)]

    view = recovery_view(backups, segments, breaks, now=at(26))

    assert [(w.start, w.end) for w in view.windows] == [
        (at(1), at(10) - timedelta(seconds=1)),
        (at(21), at(25) - timedelta(seconds=1)),
    ]
    assert len(view.gaps) == 1
    assert view.gaps[0].start == at(10) - timedelta(seconds=1)
    assert view.gaps[0].end == at(21)
    assert "purged" in view.gaps[0].reason
    with pytest.raises(NotRecoverable) as refused:
        plan_replay(at(15), backups, segments, breaks, now=at(26))
    assert "is in no recovery window" in str(refused.value)
    assert at(21).isoformat() in str(refused.value)


def test_an_in_place_restore_ends_the_window_one_second_before_it_began() -> None:
    segments = [segment(1, 1, 0, 5), segment(2, 2, 5, 30)]
    breaks = [HistoryBreak("p", at(12), BREAK_RESTORE, "in-place restore r1")]
    backups = [backup("b1", 1, 1), backup("b2", 2, 20)]

    view = recovery_view(backups, segments, breaks, now=at(31))

    assert [(w.start, w.end) for w in view.windows] == [
        (at(1), at(12) - timedelta(seconds=1)),
        (at(20), at(30) - timedelta(seconds=1)),
    ]
    with pytest.raises(NotRecoverable):
        plan_replay(at(15), backups, segments, breaks, now=at(31))


def test_the_replay_starts_from_the_newest_backup_before_the_instant_and_stops_after_it() -> None:
    segments = [segment(i, i, 5 * (i - 1), 5 * i) for i in range(1, 6)]
    backups = [backup("b1", 1, 1), backup("b2", 3, 11)]

    plan = plan_replay(at(17.5), backups, segments, [], now=at(26))

    assert plan.backup_id == "b2"
    assert [s.file for s in plan.segments] == ["mysql-bin.000003", "mysql-bin.000004"]
    assert plan.start_position == 400
    assert plan.stop_before == at(17.5) + timedelta(seconds=1)
    # An instant before the newer backup replays from the older one.
    assert plan_replay(at(8), backups, segments, [], now=at(26)).backup_id == "b1"


def test_a_corrupt_segment_ends_the_chain_before_it() -> None:
    segments = [segment(1, 1, 0, 5), segment(2, 2, 5, 10), segment(3, 3, 10, 15)]
    corrupt = [segments[0], segments[1].__class__(**{**_fields(segments[1]), "corrupt": True})]
    view = recovery_view([backup("b1", 1, 1)], [*corrupt, segments[2]], [], now=at(16))

    assert [(w.start, w.end) for w in view.windows] == [(at(1), at(5) - timedelta(seconds=1))]


def test_retention_keeps_segments_from_the_oldest_kept_backups_file() -> None:
    segments = [segment(i, i, 5 * (i - 1), 5 * i) for i in range(1, 6)]

    assert segments_needed_from([backup("b2", 3, 11)], segments, []) == 3
    assert segments_needed_from([], segments, []) is None


def _fields(value: Segment) -> dict[str, object]:
    return {name: getattr(value, name) for name in Segment.__slots__}


def test_windows_and_targets_are_whole_seconds() -> None:
    # Given a backup whose snapshot was known 0.4 s into a second
    segments = [segment(1, 1, 0, 5)]
    taken = at(1) + timedelta(seconds=0.4)
    backups = [BackupStart("b1", taken, "mysql-bin.000001", 400, taken)]

    view = recovery_view(backups, segments, [], now=at(6))

    # Then its window starts at that whole second
    assert view.windows[0].start == at(1)
    # And an instant inside the last recoverable second is that second: every commit in it
    last = view.last_recoverable
    assert last is not None
    plan = plan_replay(last + timedelta(seconds=0.5), backups, segments, [], now=at(6))
    assert plan.stop_before == last + timedelta(seconds=1)
