"""How long S3 Object Lock keeps a remote copy: from the plan's remote retention policy. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from platform_backup.domain.backup import Backup
from platform_backup.domain.plan import Plan

LockMode = Literal["GOVERNANCE", "COMPLIANCE"]
LOCK_MODES: tuple[LockMode, ...] = ("GOVERNANCE", "COMPLIANCE")


@dataclass(frozen=True)
class ObjectLock:
    mode: LockMode
    until: datetime


@dataclass(frozen=True)
class LockRules:
    """The deployment's lock settings. A plan keeping remote copies by days locks each for that
    many days; by count, for ``count_days`` (a count gives no date); permanently, for
    ``permanent_days``."""

    mode: LockMode = "GOVERNANCE"
    permanent_days: int = 3650
    count_days: int = 30

    def lock_for(self, plan: Plan, now: datetime) -> ObjectLock:
        remote = plan.retention.remote
        if remote is None or remote.mode == "permanent" or remote.value is None:
            days = self.permanent_days
        elif remote.mode == "days":
            days = remote.value
        else:
            days = self.count_days
        return ObjectLock(self.mode, now + timedelta(days=days))


def locked_until(backup: Backup, now: datetime) -> datetime | None:
    """The latest lock date still in force on any available copy (None: nothing locked)."""
    dates = [
        c.lockedUntil
        for c in backup.copies
        if c.status == "available" and c.lockedUntil is not None and c.lockedUntil > now
    ]
    return max(dates) if dates else None
