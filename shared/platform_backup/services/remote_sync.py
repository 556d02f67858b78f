"""Copying the plan's backups to its remote storage after a run: every backup still missing its
remote copy (this run's and any an earlier run could not copy), recorded only on the version of
the backup read, so retention or a delete meanwhile is never undone. On a bucket with S3 Object
Lock, each copy is locked as long as the plan's remote policy keeps it (domain/remote_lock.py).

A copy is started only when it fits the function's time left (its estimate from the object's
size at the replicator's declared rates, slowed to what this run's copies measured, plus the
margin that records the outcome); what does not fit stays pending for the next run, and the
execution says so. A server-side copy cannot be stopped halfway, so it must fit before it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.plan import Plan
from platform_backup.domain.remote_lock import LockRules, ObjectLock
from platform_backup.domain.storage import Storage
from platform_backup.domain.time_budget import size_text, usable_seconds
from platform_backup.errors import DomainError
from platform_backup.services.lease_keeper import LeaseKeeper
from platform_backup.services.ports import (
    Deadline,
    ObjectRef,
    PendingRemote,
    PrunableBackups,
    Replicator,
    StorageRepository,
    Stored,
)

MANIFEST_SUFFIX = ".manifest.json"
# Copies smaller than this say nothing about the rate (their requests dominate).
MEASURABLE_COPY_BYTES = 64 * 1024**2


class RemoteSync:
    def __init__(
        self,
        storages: StorageRepository,
        stored: PrunableBackups,
        replicator: Replicator,
        pending: PendingRemote,
        locks: LockRules | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._storages = storages
        self._stored = stored
        self._replicator = replicator
        self._pending = pending
        self._locks = locks or LockRules()
        self._clock = clock

    def replicate_pending(self, plan: Plan, keeper: LeaseKeeper, deadline: Deadline) -> str | None:
        """Copies every backup of the plan still missing its remote copy, as far as the time
        left allows. Returns what failed or was left for the next run, or None."""
        remote = self._storages.find(plan.remoteStorageId or "")
        if remote is None or remote.role != "remote":
            return f"remote storage {plan.remoteStorageId} no longer exists: nothing was synced"
        errors: list[str] = []
        left: list[str] = []
        pace = _Pace()
        for backup_id in self._pending.pending(plan.id):
            keeper.check()
            stored = self._stored.find_stored(backup_id)
            if stored is None or not _needs_remote(stored.value):
                self._pending.done(plan.id, backup_id)
                continue
            local = stored.value.local_copy()
            size = local.bytes if local is not None else 0
            needed = pace.seconds(self._replicator.seconds_for(size))
            usable = usable_seconds(deadline.remaining_seconds())
            if left or needed > usable:
                # In order: once one does not fit, the rest wait too (the oldest goes first).
                left.append(f"{backup_id} ({size_text(size)}, about {needed:.0f} s)")
                continue
            started = time.monotonic()
            error = self._replicate(stored, remote, self._locks.lock_for(plan, self._clock()))
            if error:
                errors.append(f"backup {backup_id}: {error}")
            else:
                pace.measured(size, self._replicator.seconds_for(size), time.monotonic() - started)
                self._pending.done(plan.id, backup_id)
        problems = []
        if errors:
            problems.append("remote copy failed (the next run retries it): " + "; ".join(errors))
        if left:
            problems.append(
                f"remote copy of {len(left)} backup(s) left for the next run, as it would not "
                f"fit the function's time left ({usable_seconds(deadline.remaining_seconds()):.0f}"
                " s after the margin for the final record): " + ", ".join(left)
            )
        return "; ".join(problems) or None

    def _replicate(self, stored: Stored[Backup], remote: Storage, lock: ObjectLock) -> str | None:
        backup = stored.value
        local = backup.local_copy()
        if local is None:
            return "no local copy left to copy from"
        fresh = self._storages.find(remote.id) or remote
        if fresh.availableBytes < local.bytes:
            return (
                f"{remote.name}: quota exhausted ({fresh.availableBytes} bytes available, "
                f"{local.bytes} needed)"
            )
        key = remote.prefix + local.key.removeprefix(self._prefix_of(local.storageId))
        source = ObjectRef(local.bucket, local.region or remote.region, local.key)
        target = ObjectRef(remote.bucket, remote.region, key)
        manifest = ObjectRef(target.bucket, target.region, key + MANIFEST_SUFFIX)
        try:
            # The manifest is locked like the dump: a restore needs both.
            locked_until = self._replicator.copy(
                source, target, size=local.bytes, sha256=backup.sha256, lock=lock
            )
            self._replicator.copy(
                ObjectRef(source.bucket, source.region, local.manifestKey),
                manifest,
                size=None,
                sha256=None,
                lock=lock,
            )
        except DomainError as exc:
            return exc.message
        copy = BackupCopy(
            storageId=remote.id,
            role="remote",
            bucket=remote.bucket,
            region=remote.region,
            key=key,
            manifestKey=manifest.key,
            bytes=local.bytes,
            lockedUntil=locked_until,
        )
        # Recorded only on the version read: if retention or a delete changed the backup
        # meanwhile, read it again; if it is gone, the copy just made is removed again.
        current: Stored[Backup] | None = stored
        for _ in range(3):
            if current is None or not _needs_remote(current.value):
                # A locked copy cannot go before its date: it is left, unrecorded, never served.
                if locked_until is None:
                    self._replicator.remove(target)
                    self._replicator.remove(manifest)
                return None
            new = current.value.model_copy(update={"copies": [*current.value.copies, copy]})
            if self._stored.replace(current, new) is not None:
                self._storages.add_usage(remote.id, local.bytes, 1)
                return None
            current = self._stored.find_stored(backup.id)
        return "the backup kept changing while its remote copy was recorded"

    def _prefix_of(self, storage_id: str) -> str:
        storage = self._storages.find(storage_id)
        return storage.prefix if storage else ""


def _needs_remote(backup: Backup) -> bool:
    """Still missing its remote copy, and not because retention pruned it on purpose."""
    pruned_remote = any(p.role == "remote" for p in backup.pruned)
    return backup.remote_copy() is None and not pruned_remote


class _Pace:
    """The declared estimates, slowed to what this run's measurable copies took."""

    def __init__(self) -> None:
        self._slowdown = 1.0

    def seconds(self, declared: float) -> float:
        return declared * self._slowdown

    def measured(self, size: int, declared: float, took: float) -> None:
        if size >= MEASURABLE_COPY_BYTES and declared > 0:
            self._slowdown = max(self._slowdown, took / declared)
