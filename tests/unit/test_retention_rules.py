"""The retention rules on their own: which copies a policy prunes, and what a run reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from platform_backup.domain.backup import Backup, BackupCopy, PrunedCopy
from platform_backup.domain.retention import (
    Policy,
    Range,
    RetentionCursor,
    Rules,
    next_cursor,
    ranges_to_read,
    select,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def make(
    name: str,
    age: timedelta,
    trigger: str = "schedule",
    local: str | None = "available",
    remote: str | None = None,
    read_until: datetime | None = None,
    remote_pruned: bool = False,
) -> Backup:
    copies = []
    if local is not None:
        copies.append(_copy("local", local, name))
    if remote is not None:
        copies.append(_copy("remote", remote, name))
    pruned = []
    if remote_pruned:
        pruned.append(PrunedCopy(storageId="r", role="remote", key=f"{name}.r", prunedAt=NOW))
    return Backup.model_validate(
        {
            "id": name,
            "planId": "p",
            "executionId": f"x-{name}",
            "trigger": trigger,
            "createdAt": NOW - age,
            "copies": copies,
            "pruned": pruned,
            "readBy": "restore-1" if read_until else None,
            "readUntil": read_until,
        }
    )


def _copy(role: str, status: str, name: str) -> BackupCopy:
    storage = "l" if role == "local" else "r"
    return BackupCopy.model_validate(
        {
            "storageId": storage,
            "role": role,
            "bucket": f"b-{storage}",
            "key": f"{name}.{storage}",
            "manifestKey": f"{name}.{storage}.json",
            "status": status,
            "bytes": 10,
        }
    )


def rules(
    local: Policy | None = None,
    remote: Policy | None = None,
    remote_required: bool = False,
    last_restore_at: datetime | None = None,
) -> Rules:
    return Rules(
        local=local or Policy("count", 100),
        remote=remote,
        remote_required=remote_required,
        safety_days=7,
        last_restore_at=last_restore_at,
    )


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def pruned(backups: list[Backup], policy: Rules, role: str = "local") -> list[str]:
    return sorted(r.backup_id for r in select(backups, policy, NOW).prune if r.role == role)


def test_count_keeps_the_newest_n_local_copies() -> None:
    # Given five daily backups and a local count of 3
    backups = [make(f"b{i}", hours(24 * i)) for i in range(5)]
    # When selecting
    # Then the two oldest local copies go
    assert pruned(backups, rules(Policy("count", 3))) == ["b3", "b4"]


def test_exactly_n_copies_prunes_nothing() -> None:
    backups = [make(f"b{i}", hours(i)) for i in range(3)]
    assert pruned(backups, rules(Policy("count", 3))) == []


def test_days_prunes_only_backups_strictly_older_than_d_days() -> None:
    # Given one backup exactly 2 x 24 h old and one a microsecond older
    exact = make("exact", timedelta(days=2))
    older = make("older", timedelta(days=2, microseconds=1))
    newest = make("newest", hours(1))
    # When the local policy is 2 days
    # Then only the older one goes: exactly D days old is kept
    assert pruned([newest, exact, older], rules(Policy("days", 2))) == ["older"]


def test_remote_policy_applies_to_remote_copies_independently() -> None:
    # Given four backups with local and remote copies, local count 3 and remote count 1
    backups = [make(f"b{i}", hours(i), remote="available") for i in range(4)]
    policy = rules(Policy("count", 3), Policy("count", 1), remote_required=True)
    # Then local and remote are pruned each by its own policy
    assert pruned(backups, policy, "local") == ["b3"]
    assert pruned(backups, policy, "remote") == ["b1", "b2", "b3"]


def test_remote_days_and_remote_permanent() -> None:
    backups = [make(f"b{i}", timedelta(days=10 * i), remote="available") for i in range(4)]
    by_days = rules(Policy("count", 100), Policy("days", 15), remote_required=True)
    assert pruned(backups, by_days, "remote") == ["b2", "b3"]
    # Permanent is no remote policy at all: the remote copies stay
    permanent = rules(Policy("count", 1), None, remote_required=True)
    assert pruned(backups, permanent, "remote") == []
    assert pruned(backups, permanent, "local") == ["b1", "b2", "b3"]


def test_only_available_copies_count() -> None:
    # Given remote copies that failed or are still pending on the newer backups
    backups = [
        make("b0", hours(0), remote="failed"),
        make("b1", hours(1), remote="pending"),
        make("b2", hours(2), remote="available"),
        make("b3", hours(3), remote="available"),
    ]
    policy = rules(Policy("count", 100), Policy("count", 2), remote_required=True)
    # Then the two available ones are the newest two: nothing is pruned
    assert pruned(backups, policy, "remote") == []


def test_safety_backups_do_not_count_and_age_out_after_seven_days() -> None:
    # Given local count 2 and safety backups among the scheduled ones
    backups = [
        make("s-new", timedelta(days=1), trigger="pre-restore"),
        make("b0", timedelta(days=2)),
        make("s-mid", timedelta(days=3), trigger="pre-restore"),
        make("b1", timedelta(days=4)),
        make("s-old", timedelta(days=8), trigger="pre-restore"),
        make("b2", timedelta(days=9)),
    ]
    # Then the count keeps b0 and b1 (safety backups are not counted), b2 goes, and only the
    # safety backup older than 7 days goes
    assert pruned(backups, rules(Policy("count", 2))) == ["b2", "s-old"]


def test_newest_safety_backup_is_kept_until_the_next_restore() -> None:
    backups = [make("b0", hours(1)), make("s", timedelta(days=30), trigger="pre-restore")]
    assert pruned(backups, rules(Policy("count", 1))) == []
    after_restore = rules(Policy("count", 1), last_restore_at=NOW - timedelta(days=2))
    assert pruned(backups, after_restore) == ["s"]


def test_newest_good_backup_is_kept_when_every_newer_run_failed() -> None:
    # Given a 1-day policy and no successful backup for 10 days (failed runs make no backup)
    backups = [make(f"b{i}", timedelta(days=10 + i)) for i in range(3)]
    # Then the newest one stays
    assert pruned(backups, rules(Policy("days", 1))) == ["b1", "b2"]


def test_newest_available_copy_is_kept_in_each_location() -> None:
    # Given the newest backup's remote copy failed and remote days 1
    backups = [
        make("b0", hours(1), remote="failed"),
        make("b1", timedelta(days=5), remote="available"),
        make("b2", timedelta(days=6), remote="available"),
    ]
    policy = rules(Policy("count", 100), Policy("days", 1), remote_required=True)
    # Then b1 holds the newest available remote copy and stays
    selection = select(backups, policy, NOW)
    assert [r.backup_id for r in selection.prune] == ["b2"]
    assert [(r.backup_id, why) for r, why in selection.protected] == [
        ("b1", "the newest available copy")
    ]


def test_local_copy_without_its_required_remote_copy_is_kept() -> None:
    # Given remote sync on, local count 1, and an old backup whose remote copy failed
    backups = [
        make("b0", hours(1), remote="available"),
        make("b1", hours(2), remote="failed"),
        make("b2", hours(3), remote_pruned=True),
    ]
    policy = rules(Policy("count", 1), None, remote_required=True)
    # Then b1's local copy stays; b2's remote copy was pruned by policy, so b2's local may go
    assert pruned(backups, policy) == ["b2"]


def test_backup_read_by_a_restore_is_not_pruned() -> None:
    backups = [
        make("b0", hours(1)),
        make("b1", hours(2), read_until=NOW + hours(1)),
        make("b2", hours(3), read_until=NOW - hours(1)),
    ]
    assert pruned(backups, rules(Policy("count", 1))) == ["b2"]


def test_without_a_cursor_the_whole_history_is_read() -> None:
    assert ranges_to_read(None, rules(Policy("count", 2)), NOW) == []


def test_count_reads_from_the_oldest_kept_copy_on() -> None:
    floor = NOW - timedelta(days=3)
    cursor = RetentionCursor(head=NOW - hours(1), floors={"local": floor})
    assert ranges_to_read(cursor, rules(Policy("count", 2)), NOW) == [Range(floor, None)]


def test_days_reads_only_what_aged_since_the_last_run_and_what_is_new() -> None:
    floor = NOW - timedelta(days=31)
    head = NOW - hours(1)
    cursor = RetentionCursor(head=head, floors={"local": floor})
    assert ranges_to_read(cursor, rules(Policy("days", 30)), NOW) == [
        Range(floor, NOW - timedelta(days=30)),
        Range(head, None),
    ]


def test_a_location_without_a_floor_reads_the_whole_history() -> None:
    # Given a cursor from before the remote policy began
    cursor = RetentionCursor(head=NOW, floors={"local": NOW - hours(5)})
    policy = rules(Policy("count", 2), Policy("count", 2), remote_required=True)
    assert ranges_to_read(cursor, policy, NOW) == []


def test_cursor_holds_the_copies_kept_below_its_floor() -> None:
    # Given local count 1: b1 is kept for its missing remote copy, s is a safety backup
    after = [
        make("b0", hours(1), remote="available"),
        make("s", hours(2), trigger="pre-restore"),
        make("b1", hours(3), remote="failed"),
        make("b2", hours(4), local=None, remote="available"),
    ]
    policy = rules(Policy("count", 1), None, remote_required=True)
    # When the cursor is computed
    cursor = next_cursor(after, after, policy, NOW, None)
    # Then the floor is the kept copy and the held ones are read by id next time
    assert cursor.head == NOW - hours(1)
    assert cursor.floors == {"local": NOW - hours(1)}
    assert cursor.held == ["s", "b1"]
