"""The backup plan in DynamoDB.

Every plan write is one transaction with its guards: the platform database's single-plan guard
and the reference counts on the storages it uses. So two creates racing each other make exactly
one plan, and a storage can never be deleted from under a plan.
"""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from platform_backup.adapters.dynamo_errors import (
    first_condition_failed,
    unless_condition_failure,
)
from platform_backup.adapters.keys import required_item
from platform_backup.adapters.pagination import decode_token, encode_token
from platform_backup.adapters.tables import (
    LockItem,
    PlanItem,
    StorageItem,
    transaction_connection,
)
from platform_backup.domain.plan import Plan, PlanSpec
from platform_backup.errors import Conflict, NotFound
from platform_backup.services.ports import Page

_KEYS = frozenset({"id"})


def unique_guard_id(object_type: str) -> str:
    return f"unique#{object_type}"


def _to_domain(item: PlanItem) -> Plan:
    return Plan.model_validate(
        {
            **item.spec,
            "id": item.id,
            "state": item.state,
            "createdAt": item.createdAt,
            "updatedAt": item.updatedAt,
            "revision": int(item.revision),
        }
    )


def _item(plan: Plan) -> PlanItem:
    spec = PlanSpec.model_validate(plan.model_dump(include=set(PlanSpec.model_fields)))
    return PlanItem(
        id=plan.id,
        spec=spec.model_dump(mode="json"),
        state=str(plan.state),
        createdAt=plan.createdAt.isoformat(),
        updatedAt=plan.updatedAt.isoformat(),
        revision=plan.revision,
    )


def storage_roles(plan: PlanSpec) -> dict[str, str]:
    roles = dict.fromkeys(plan.localStorageIds, "local")
    if plan.remoteSync and plan.remoteStorageId:
        roles[plan.remoteStorageId] = "remote"
    return roles


class DynamoPlanRepository:
    def _connection(self) -> Connection:
        meta: Any = PlanItem.Meta
        return transaction_connection(meta.region)

    def _reference(self, tx: TransactWrite, storage_id: str, role: str, delta: int) -> None:
        condition = StorageItem.id.exists()
        if delta > 0:
            condition &= StorageItem.role == role
        tx.update(
            StorageItem(id=storage_id),
            actions=[StorageItem.planRefs.add(delta)],
            condition=condition,
        )

    def create(self, plan: Plan) -> None:
        guard = LockItem(lockId=unique_guard_id(plan.objectType), owner=plan.id)
        roles = storage_roles(plan)
        try:
            with TransactWrite(connection=self._connection()) as tx:
                tx.save(guard, condition=LockItem.lockId.does_not_exist())
                tx.save(_item(plan), condition=PlanItem.id.does_not_exist())
                for storage_id, role in roles.items():
                    self._reference(tx, storage_id, role, +1)
        except TransactWriteError as exc:
            unless_condition_failure(exc, f"creating plan '{plan.name}'")
            if first_condition_failed(exc):
                existing = self._guard_owner(plan.objectType)
                raise Conflict(
                    "a platform database backup plan exists already"
                    + (f" (id {existing})" if existing else "")
                    + ": there can be only one; update or delete it instead"
                ) from exc
            raise Conflict(
                "a storage of the plan was removed or changed while the plan was saved: "
                "check the storages and try again"
            ) from exc

    def _guard_owner(self, object_type: str) -> str | None:
        try:
            return str(LockItem.get(unique_guard_id(object_type), consistent_read=True).owner)
        except DoesNotExist:
            return None

    def get(self, plan_id: str) -> Plan:
        return _to_domain(required_item(PlanItem, plan_id, "plan"))

    def find(self, plan_id: str) -> Plan | None:
        try:
            return self.get(plan_id)
        except NotFound:
            return None

    def page(self, limit: int, token: str | None) -> Page[Plan]:
        result = PlanItem.scan(limit=limit, last_evaluated_key=decode_token(token, _KEYS))
        items = [_to_domain(item) for item in result]
        return Page(items=items, next_token=encode_token(result.last_evaluated_key))

    def all(self) -> list[Plan]:
        return [_to_domain(item) for item in PlanItem.scan(consistent_read=True)]

    def replace(self, old: Plan, new: Plan) -> None:
        """Writes ``new`` (whose revision is old's + 1) over ``old`` if nobody changed the plan
        since ``old`` was read."""
        before, after = storage_roles(old), storage_roles(new)
        try:
            with TransactWrite(connection=self._connection()) as tx:
                tx.save(
                    _item(new),
                    condition=PlanItem.revision == old.revision,
                )
                for storage_id in before.keys() - after.keys():
                    self._reference(tx, storage_id, before[storage_id], -1)
                for storage_id in after.keys() - before.keys():
                    self._reference(tx, storage_id, after[storage_id], +1)
                for storage_id in before.keys() & after.keys():
                    if before[storage_id] != after[storage_id]:
                        tx.condition_check(
                            StorageItem, storage_id, condition=StorageItem.role == after[storage_id]
                        )
        except TransactWriteError as exc:
            unless_condition_failure(exc, f"updating plan '{old.name}'")
            if first_condition_failed(exc):
                raise Conflict(
                    "the plan was changed by someone else meanwhile: read it again and retry"
                ) from exc
            raise Conflict(
                "a storage of the plan was removed or changed while the plan was saved: "
                "check the storages and try again"
            ) from exc

    def delete(self, plan: Plan) -> None:
        try:
            with TransactWrite(connection=self._connection()) as tx:
                tx.delete(PlanItem(id=plan.id), condition=PlanItem.revision == plan.revision)
                tx.delete(
                    LockItem(lockId=unique_guard_id(plan.objectType)),
                    condition=LockItem.owner == plan.id,
                )
                for storage_id, role in storage_roles(plan).items():
                    self._reference(tx, storage_id, role, -1)
        except TransactWriteError as exc:
            unless_condition_failure(exc, f"deleting plan '{plan.name}'")
            raise Conflict(
                "the plan was changed by someone else meanwhile: read it again and retry"
            ) from exc
