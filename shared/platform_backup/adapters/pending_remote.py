"""The plan's backups still missing their remote copy, as a set in one item: adding and
removing are atomic set updates, and reading costs one item whatever the history."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from platform_backup.adapters.tables import LockItem


def _id(plan_id: str) -> str:
    return f"remote-pending#{plan_id}"


class DynamoPendingRemote:
    def add(self, plan_id: str, backup_id: str) -> None:
        LockItem(lockId=_id(plan_id)).update(actions=[LockItem.members.add({backup_id})])

    def done(self, plan_id: str, backup_id: str) -> None:
        LockItem(lockId=_id(plan_id)).update(actions=[LockItem.members.delete({backup_id})])

    def pending(self, plan_id: str) -> list[str]:
        try:
            item = LockItem.get(_id(plan_id), consistent_read=True)
        except DoesNotExist:
            return []
        return sorted(item.members or ())
