"""Storages in DynamoDB."""

from __future__ import annotations

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.update import Action

from platform_backup.adapters.dynamo_errors import unless_condition_failure
from platform_backup.adapters.keys import not_found, required_item, usable_id
from platform_backup.adapters.pagination import decode_token, encode_token
from platform_backup.adapters.tables import StorageItem
from platform_backup.domain.storage import Storage, StoragePatch
from platform_backup.errors import Conflict, NotFound
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


class DynamoStorageRepository:
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
        try:
            item.save(condition=StorageItem.id.does_not_exist())
        except PutError as exc:
            unless_condition_failure(exc, f"creating storage '{storage.name}'")
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
        item = StorageItem(id=storage_id)
        try:
            item.update(actions=actions, condition=StorageItem.id.exists())
        except UpdateError as exc:
            unless_condition_failure(exc, f"updating storage '{storage_id[:64]}'")
            raise not_found("storage", storage_id) from exc
        return _to_domain(item)

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
            item.delete(condition=unused)
        except DeleteError as exc:
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
