"""Which copies a plan's retention policy prunes, and which part of the history the next run must
read. Pure: no AWS, no clock (``now`` is given).

The local policy applies to the local copies (primary and fallback counted together), the remote
policy to the remote copies, independently. Whatever the policy says:
- the newest available copy in each location is never pruned;
- a local copy is never pruned while the backup still lacks the remote copy the plan requires;
- a backup a restore is reading is not touched;
- a copy under S3 Object Lock is kept until its retain-until date;
- only available copies count: failed and skipped runs never made one.

The cursor keeps a run's reads proportional to what it prunes rather than to the history: it
records, per location, a floor below which every backup has lost its copy in that location,
except the backups it names as held (safety backups, protected or pending copies).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.plan import Plan

Role = Literal["local", "remote"]
ROLES: tuple[Role, ...] = ("local", "remote")
SAFETY = "pre-restore"


@dataclass(frozen=True)
class Policy:
    mode: Literal["count", "days"]
    value: int


@dataclass(frozen=True)
class Rules:
    """The plan's policy per location (None: keep everything there) and the safety settings."""

    local: Policy | None
    remote: Policy | None
    remote_required: bool
    safety_days: int = 7
    # The start of the plan's latest restore: the newest safety backup is kept until then.
    last_restore_at: datetime | None = None

    @classmethod
    def of(cls, plan: Plan, safety_days: int, last_restore_at: datetime | None = None) -> Rules:
        local = Policy(plan.retention.local.mode, plan.retention.local.value)
        remote = plan.retention.remote
        remote_policy = None
        # No remote policy (sync turned off) keeps the remote copies: nothing said to prune them.
        if remote is not None and remote.mode != "permanent" and remote.value is not None:
            remote_policy = Policy(remote.mode, remote.value)
        return cls(local, remote_policy, plan.remoteSync, safety_days, last_restore_at)

    def policy(self, role: Role) -> Policy | None:
        return self.local if role == "local" else self.remote


@dataclass(frozen=True)
class CopyRef:
    backup_id: str
    storage_id: str
    role: Role
    key: str

    @classmethod
    def of(cls, backup: Backup, copy: BackupCopy) -> CopyRef:
        return cls(backup.id, copy.storageId, copy.role, copy.key)

    def matches(self, copy: BackupCopy) -> bool:
        return (copy.storageId, copy.role, copy.key) == (self.storage_id, self.role, self.key)


@dataclass(frozen=True)
class Selection:
    prune: tuple[CopyRef, ...]
    # Copies the policy would prune that a safety rule keeps, with the rule (for the logs).
    protected: tuple[tuple[CopyRef, str], ...]


class RetentionCursor(BaseModel):
    """Where the plan's last retention run left off."""

    head: datetime | None = Field(default=None, description="newest backup it read")
    floors: dict[Role, datetime] = Field(
        default_factory=dict,
        description="per location: every older backup has no copy there, except the held ones",
    )
    held: list[str] = Field(default_factory=list, description="backups to read again by id")


@dataclass(frozen=True)
class Range:
    """createdAt from ``lower`` (inclusive) to ``upper`` (exclusive; None: up to now)."""

    lower: datetime
    upper: datetime | None


def newest_first(backups: Iterable[Backup]) -> list[Backup]:
    return sorted(backups, key=lambda b: (b.createdAt, b.id), reverse=True)


def _has_available(backup: Backup, role: Role | None = None) -> bool:
    return any(c.status == "available" and role in (None, c.role) for c in backup.copies)


def in_use(backup: Backup, now: datetime) -> bool:
    return backup.readUntil is not None and backup.readUntil > now


def lacks_required_remote(backup: Backup, rules: Rules) -> bool:
    if not rules.remote_required:
        return False
    synced = _has_available(backup, "remote")
    pruned = any(p.role == "remote" for p in backup.pruned)
    return not synced and not pruned


def backup_guard(backup: Backup, copy: BackupCopy, rules: Rules, now: datetime) -> str | None:
    """The safety rule, read from the backup alone, that keeps this copy (None: none does).
    Checked again on a fresh read before each write, since a restore or a sync may have
    changed the backup since the selection."""
    if in_use(backup, now):
        return f"a restore ({backup.readBy}) is reading the backup"
    if copy.role == "local" and lacks_required_remote(backup, rules):
        return "the backup has no remote copy yet"
    if copy.lockedUntil is not None and copy.lockedUntil > now:
        return f"Object Lock keeps the copy until {copy.lockedUntil.isoformat()}"
    return None


def _safety_expired(
    backup: Backup, newest_safety: Backup | None, rules: Rules, now: datetime
) -> bool:
    if backup.createdAt >= now - timedelta(days=rules.safety_days):
        return False
    if backup is newest_safety:
        return rules.last_restore_at is not None and rules.last_restore_at > backup.createdAt
    return True


def select(backups: Iterable[Backup], rules: Rules, now: datetime) -> Selection:
    """The copies to prune among these backups, which must include every backup of the plan
    that has a copy in a location with a policy (the cursor's invariant)."""
    ordered = newest_first(backups)
    safety = [b for b in ordered if b.trigger == SAFETY and _has_available(b)]
    newest_safety = safety[0] if safety else None
    prune: list[CopyRef] = []
    protected: list[tuple[CopyRef, str]] = []
    for role in ROLES:
        policy = rules.policy(role)
        if policy is None:
            continue
        cutoff = now - timedelta(days=policy.value)
        counted = 0
        newest = True
        for backup in ordered:
            for copy in backup.copies:
                if copy.role != role or copy.status != "available":
                    continue
                if backup.trigger == SAFETY:
                    wanted = _safety_expired(backup, newest_safety, rules, now)
                elif policy.mode == "count":
                    wanted = counted >= policy.value
                    counted += 1
                else:
                    # Strictly older: a backup exactly D days old is kept.
                    wanted = backup.createdAt < cutoff
                guard = "the newest available copy" if newest else None
                newest = False
                if not wanted:
                    continue
                ref = CopyRef.of(backup, copy)
                guard = guard or backup_guard(backup, copy, rules, now)
                if guard is None:
                    prune.append(ref)
                else:
                    protected.append((ref, guard))
    return Selection(tuple(prune), tuple(protected))


def ranges_to_read(cursor: RetentionCursor | None, rules: Rules, now: datetime) -> list[Range]:
    """The createdAt ranges of the plan's backups this run reads, besides the held ones. Empty
    means the whole history: no cursor yet, or a location whose policy began since."""
    if cursor is None or cursor.head is None:
        return []
    ranges: list[Range] = []
    top = cursor.head  # from the previous newest on: what is new, and the newest copies
    for role in ROLES:
        policy = rules.policy(role)
        if policy is None:
            continue
        floor = cursor.floors.get(role)
        if floor is None:
            return []
        if policy.mode == "count":
            top = min(top, floor)
        else:
            cutoff = now - timedelta(days=policy.value)
            if floor < cutoff:
                ranges.append(Range(floor, cutoff))
    ranges.append(Range(top, None))
    return _merged(ranges)


def _merged(ranges: list[Range]) -> list[Range]:
    merged: list[Range] = []
    for current in sorted(ranges, key=lambda r: r.lower):
        last = merged[-1] if merged else None
        if last is not None and (last.upper is None or current.lower <= last.upper):
            upper = (
                None
                if last.upper is None or current.upper is None
                else max(last.upper, current.upper)
            )
            merged[-1] = Range(last.lower, upper)
        else:
            merged.append(current)
    return merged


def _may_get_remote(backup: Backup, rules: Rules) -> bool:
    """A backup the executor may still give a remote copy (it catches up missing ones)."""
    return (
        lacks_required_remote(backup, rules)
        and not any(c.role == "remote" for c in backup.copies)
        and _has_available(backup, "local")
    )


def next_cursor(
    read: Sequence[Backup],
    after: Iterable[Backup],
    rules: Rules,
    now: datetime,
    previous: RetentionCursor | None,
) -> RetentionCursor:
    """The cursor after a run that read ``read`` and left ``after`` (the backups still
    recorded, as they are now)."""
    times = [b.createdAt for b in read]
    if previous is not None and previous.head is not None:
        times.append(previous.head)
    head = max(times) if times else None
    ordered = newest_first(after)
    floors: dict[Role, datetime] = {}
    for role in ROLES:
        policy = rules.policy(role)
        if policy is None or head is None:
            continue
        if policy.mode == "count":
            kept = [b for b in ordered if b.trigger != SAFETY and _has_available(b, role)]
            kept = kept[: policy.value]
            floors[role] = kept[-1].createdAt if kept else head
        else:
            cutoff = now - timedelta(days=policy.value)
            earlier = previous.floors.get(role) if previous is not None else None
            floors[role] = max(earlier, cutoff) if earlier is not None else cutoff
    held = [b.id for b in ordered if _held(b, floors, rules)]
    return RetentionCursor(head=head, floors=floors, held=held)


def _held(backup: Backup, floors: dict[Role, datetime], rules: Rules) -> bool:
    if backup.trigger == SAFETY and backup.copies:
        return True
    for role, floor in floors.items():
        if backup.createdAt >= floor:
            continue
        if any(c.role == role for c in backup.copies):
            return True
        if role == "remote" and _may_get_remote(backup, rules):
            return True
    return False
