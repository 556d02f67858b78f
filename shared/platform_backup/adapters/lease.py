"""The plan's job lease: one backup or restore of a plan at a time.

A holder renews a short expiry while it works (its heartbeat); a holder that dies stops renewing
and the lease simply expires, so a crash never blocks the plan. Every write is conditional: only
the holder renews or releases, and a lease is taken over only once it has expired.
"""

from __future__ import annotations

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from platform_backup.adapters.dynamo_errors import (
    cause_code,
    is_condition_failure,
    unless_condition_failure,
)
from platform_backup.adapters.tables import LockItem
from platform_backup.domain.lease import Holder, LeaseLost
from platform_backup.observability import logger


def lease_id(plan_id: str) -> str:
    return f"lease#{plan_id}"


class DynamoLeases:
    def holder(self, plan_id: str) -> Holder | None:
        try:
            item = LockItem.get(lease_id(plan_id), consistent_read=True)
        except DoesNotExist:
            return None
        return Holder(item.owner, item.ownerKind or "", float(item.expiresAt or 0), item.reason)

    def acquire(
        self, plan_id: str, owner: str, kind: str, reason: str, now: float, ttl: float
    ) -> tuple[bool, Holder | None]:
        """Takes the lease if it is free or expired. Returns (taken, the holder it found): when
        taken, the found holder (if any) is one that died without releasing."""
        found = self.holder(plan_id)
        if found is not None and found.expires_at > now:
            return False, found
        condition = LockItem.lockId.does_not_exist()
        if found is not None:
            condition = (LockItem.owner == found.owner) & (LockItem.expiresAt <= now)
        item = LockItem(
            lockId=lease_id(plan_id),
            owner=owner,
            ownerKind=kind,
            expiresAt=now + ttl,
            reason=reason,
        )
        try:
            item.save(condition=condition)
        except PutError as exc:
            unless_condition_failure(exc, f"taking the lease of plan {plan_id}")
            return False, self.holder(plan_id)
        return True, found

    def renew(self, plan_id: str, owner: str, now: float, ttl: float) -> None:
        try:
            LockItem(lockId=lease_id(plan_id)).update(
                actions=[LockItem.expiresAt.set(now + ttl)],
                condition=(LockItem.owner == owner) & (LockItem.expiresAt > now),
            )
        except UpdateError as exc:
            unless_condition_failure(exc, f"renewing the lease of plan {plan_id}")
            raise LeaseLost(f"the lease of plan {plan_id} is no longer held by {owner}") from exc

    def release(self, plan_id: str, owner: str) -> None:
        try:
            LockItem(lockId=lease_id(plan_id)).delete(condition=LockItem.owner == owner)
        except DeleteError as exc:
            # Expired and taken over meanwhile: nothing of ours is left to release.
            if is_condition_failure(exc):
                return
            # Throttled or failing after the SDK's retries: the lease expires by itself within its
            # TTL, so the job still writes its final record; said in the log, with the cause.
            logger.warning(
                "lease not released; it expires by itself",
                plan_id=plan_id,
                cause=cause_code(exc) or type(exc).__name__,
            )
