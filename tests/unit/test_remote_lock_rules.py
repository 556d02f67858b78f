"""The Object Lock date of a remote copy, from the plan's remote policy, and retention and
deletes keeping a locked copy until that date: the domain alone, with a clock it is given."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from platform_backup.domain.plan import Plan
from platform_backup.domain.remote_lock import LockRules, locked_until
from platform_backup.domain.retention import Policy, select
from tests.unit.test_retention_rules import NOW, make, rules


def _plan(remote: dict[str, Any] | None) -> Plan:
    return Plan.model_validate(
        {
            "id": "p",
            "name": "platform-db",
            "localStorageIds": ["l"],
            "remoteStorageId": "r",
            "remoteSync": True,
            "policy": {"cycle": "hourly", "startTime": "2026-01-01T00:05:00Z"},
            "retention": {"local": {"mode": "count", "value": 7}, "remote": remote},
            "createdAt": NOW,
            "updatedAt": NOW,
        }
    )


@pytest.mark.parametrize(
    ("remote", "days"),
    [
        ({"mode": "days", "value": 45}, 45),
        ({"mode": "count", "value": 3}, 30),
        ({"mode": "permanent"}, 3650),
    ],
)
def test_a_copy_is_locked_for_what_the_plans_remote_policy_keeps(
    remote: dict[str, Any], days: int
) -> None:
    lock = LockRules().lock_for(_plan(remote), NOW)
    assert (lock.mode, lock.until) == ("GOVERNANCE", NOW + timedelta(days=days))
    compliance = LockRules("COMPLIANCE", permanent_days=100, count_days=7)
    assert compliance.lock_for(_plan(remote), NOW).mode == "COMPLIANCE"


def _locked(name: str, age: timedelta, until: timedelta) -> Any:
    backup = make(name, age, remote="available")
    copies = [
        c.model_copy(update={"lockedUntil": NOW + until}) if c.role == "remote" else c
        for c in backup.copies
    ]
    return backup.model_copy(update={"copies": copies})


def test_retention_keeps_a_locked_copy_until_its_date_then_prunes_it() -> None:
    # Given two backups, the older's remote copy locked for another hour; remote count 1
    backups = [make("new", timedelta(hours=1), remote="available")]
    backups.append(_locked("old", timedelta(hours=2), until=timedelta(hours=1)))
    policy = rules(Policy("count", 100), Policy("count", 1), remote_required=True)
    # When retention selects now: the copy is kept, saying why
    chosen = select(backups, policy, NOW)
    assert [r.backup_id for r in chosen.prune] == []
    [(ref, why)] = chosen.protected
    assert ref.backup_id == "old" and "Object Lock keeps the copy until" in why
    assert locked_until(backups[1], NOW) == NOW + timedelta(hours=1)
    # When it selects after the date: pruned
    later = NOW + timedelta(hours=1, seconds=1)
    assert [r.backup_id for r in select(backups, policy, later).prune] == ["old"]
    assert locked_until(backups[1], later) is None
