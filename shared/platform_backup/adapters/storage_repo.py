"""Storages in DynamoDB.

A storage's name is unique: a guard item in the locks table (``storage-name#<name>``, owned by
the storage's id) is written in the same transaction as the storage, moved by a rename and
removed by a delete, so a retried or racing create can never make a second storage of a name.
"""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from platform_backup.adapters.dynamo_errors import unless_condition_failure
from platform_backup.adapters.keys import not_found, required_item, usable_id
from platform_backup.adapters.pagination import decode_token, encode_token
from platform_backup.adapters.tables import LockItem, StorageItem, transaction_connection
from platform_backup.domain.storage import Storage, StoragePatch
from platform_backup.errors import Conflict, FieldError, NotFound
from platform_backup.services.ports import Page

_KEYS = frozenset({"id"})


def _to_domain(item: StorageItem) -> Storage:
    return Storage(
        id=item.id,
        name=item.name,
        role=item.role,
        bucket=item.bucket,
        region=item.region,
        prefix=item.prefix or "",
        capacityBytes=int(item.capacityBytes),
        usedBytes=int(item.usedBytes or 0),
        createdAt=item.createdAt,
    )


def name_guard_id(name: str) -> str:
    return f"storage-name#{name}"


def _connection() -> Connection:
    meta: Any = StorageItem.Meta
    return transaction_connection(meta.region)


def _guard_held_by(storage_id: str) -> Condition:
    # Storages created before the guard existed have none: removing nothing is fine.
    return (LockItem.owner == storage_id) | LockItem.lockId.does_not_exist()


class DynamoStorageRepository:
    @staticmethod
    def _name_holder(name: str) -> str | None:
        try:
            return str(LockItem.get(name_guard_id(name), consistent_read=True).owner)
        except DoesNotExist:
            return None

    def _name_taken(self, name: str) -> Conflict:
        owner = self._name_holder(name)
        named = f" (id {owner})" if owner else ""
        return Conflict(
            f"a storage named '{name}' exists already{named}: use it, or choose another name",
            [FieldError("name", f"'{name}' is taken{named}")],
        )

    def create(self, storage: Storage) -> None:
        item = StorageItem(
            id=storage.id,
            name=storage.name,
            role=storage.role,
            bucket=storage.bucket,
            region=storage.region,
            prefix=storage.prefix,
            capacityBytes=storage.capacityBytes,
            usedBytes=0,
            copyCount=0,
            planRefs=0,
            createdAt=storage.createdAt.isoformat(),
        )
        guard = LockItem(lockId=name_guard_id(storage.name), owner=storage.id, ownerKind="storage")
        try:
            with TransactWrite(connection=_connection()) as tx:
                tx.save(guard, condition=LockItem.lockId.does_not_exist())
                tx.save(item, condition=StorageItem.id.does_not_exist())
        except TransactWriteError as exc:
            unless_condition_failure(exc, f"creating storage '{storage.name}'")
            if self._name_holder(storage.name) not in (None, storage.id):
                raise self._name_taken(storage.name) from exc
            raise Conflict(f"storage '{storage.id}' exists already") from exc

    def get(self, storage_id: str) -> Storage:
        return _to_domain(required_item(StorageItem, storage_id, "storage"))

    def find(self, storage_id: str) -> Storage | None:
        try:
            return self.get(storage_id)
        except NotFound:
            return None

    def page(self, limit: int, token: str | None) -> Page[Storage]:
        result = StorageItem.scan(limit=limit, last_evaluated_key=decode_token(token, _KEYS))
        items = [_to_domain(item) for item in result]
        return Page(items=items, next_token=encode_token(result.last_evaluated_key))

    def all(self) -> list[Storage]:
        return [_to_domain(item) for item in StorageItem.scan(consistent_read=True)]

    def update(self, storage_id: str, patch: StoragePatch) -> Storage:
        actions: list[Action] = []
        if patch.name is not None:
            actions.append(StorageItem.name.set(patch.name))
        if patch.capacityBytes is not None:
            actions.append(StorageItem.capacityBytes.set(patch.capacityBytes))
        if not actions or not usable_id(storage_id):
            return self.get(storage_id)
        current = self.get(storage_id)
        renamed = patch.name is not None and patch.name != current.name
        try:
            with TransactWrite(connection=_connection()) as tx:
                if renamed:
                    guard = LockItem(
                        lockId=name_guard_id(str(patch.name)), owner=storage_id, ownerKind="storage"
                    )
                    tx.save(guard, condition=LockItem.lockId.does_not_exist())
                    tx.delete(
                        LockItem(lockId=name_guard_id(current.name)),
                        condition=_guard_held_by(storage_id),
                    )
                tx.update(
                    StorageItem(id=storage_id),
                    actions=actions,
                    condition=StorageItem.id.exists() & (StorageItem.name == current.name),
                )
        except TransactWriteError as exc:
            unless_condition_failure(exc, f"updating storage '{storage_id[:64]}'")
            if renamed and self._name_holder(str(patch.name)) not in (None, storage_id):
                raise self._name_taken(str(patch.name)) from exc
            if self.find(storage_id) is None:
                raise not_found("storage", storage_id) from exc
            raise Conflict(
                f"storage '{current.name}' was changed meanwhile: read it again and retry"
            ) from exc
        return self.get(storage_id)

    def delete(self, storage_id: str) -> None:
        """Deletes a storage no plan uses and that holds no copy; the condition makes it safe
        against a plan write or a backup racing it."""
        current = self.get(storage_id)
        item = StorageItem(id=storage_id)
        unused = (
            StorageItem.id.exists()
            & ((StorageItem.planRefs == 0) | StorageItem.planRefs.does_not_exist())
            & ((StorageItem.copyCount == 0) | StorageItem.copyCount.does_not_exist())
        )
        try:
            with TransactWrite(connection=_connection()) as tx:
                tx.delete(item, condition=unused)
                tx.delete(
                    LockItem(lockId=name_guard_id(current.name)),
                    condition=_guard_held_by(storage_id),
                )
        except TransactWriteError as exc:
            unless_condition_failure(exc, f"deleting storage '{current.name}'")
            raise Conflict(
                f"storage '{current.name}' is used by the backup plan or holds backups: "
                "change the plan and delete its backups first"
            ) from exc

    def add_usage(self, storage_id: str, delta_bytes: int, delta_copies: int) -> None:
        """Atomic: concurrent executions and retention runs add and subtract without losing any."""
        StorageItem(id=storage_id).update(
            actions=[
                StorageItem.usedBytes.add(delta_bytes),
                StorageItem.copyCount.add(delta_copies),
            ],
            condition=StorageItem.id.exists(),
        )

    def set_usage(self, storage_id: str, used_bytes: int, copies: int) -> None:
        """The counters as a catalog rebuild recounted them (the storage must still exist)."""
        try:
            StorageItem(id=storage_id).update(
                actions=[
                    StorageItem.usedBytes.set(used_bytes),
                    StorageItem.copyCount.set(copies),
                ],
                condition=StorageItem.id.exists(),
            )
        except UpdateError as exc:
            unless_condition_failure(exc, f"recounting storage '{storage_id}'")
            raise not_found("storage", storage_id) from exc
