"""The apply rate (bytes of SQL per second) the plan's last measurable restore reached, one item
in the locks table: read by the API and Validate to refuse a restore that cannot fit a step."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, UpdateError

from platform_backup.adapters.dynamo_errors import dependency_failed
from platform_backup.adapters.tables import LockItem


def _id(plan_id: str) -> str:
    return f"restore-rate#{plan_id}"


class DynamoApplyRates:
    def measured(self, plan_id: str) -> float | None:
        try:
            item = LockItem.get(_id(plan_id), consistent_read=True)
        except DoesNotExist:
            return None
        return float(item.rate) if item.rate else None

    def record(self, plan_id: str, bytes_per_second: float) -> None:
        try:
            LockItem(lockId=_id(plan_id)).update(actions=[LockItem.rate.set(bytes_per_second)])
        except UpdateError as exc:
            raise dependency_failed(exc, f"recording the restore rate of plan {plan_id}") from exc
