"""Backups in DynamoDB, listed newest first through the byPlan / byTime indexes; the conditional
writes retention, deletes and restores make on them; and each plan's retention cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from platform_backup.adapters.dynamo_errors import (
    dependency_failed,
    first_condition_failed,
    unless_condition_failure,
)
from platform_backup.adapters.keys import not_found, read_item, required_item
from platform_backup.adapters.pagination import decode_token, encode_token
from platform_backup.adapters.tables import (
    KIND_BACKUP,
    BackupItem,
    StorageItem,
    sort_time,
    transaction_connection,
)
from platform_backup.domain.backup import Backup
from platform_backup.domain.retention import RetentionCursor
from platform_backup.errors import Conflict, NotFound
from platform_backup.services.ports import BackupBatch, Page, Stored, UsageChange

_BY_PLAN_BACKUP_KEYS = frozenset({"id", "planId", "createdAt"})
_BY_TIME_BACKUP_KEYS = frozenset({"id", "kind", "createdAt"})
# The plan's retention cursor lives beside its backups under its own kind and partition, so it
# shows in neither the plan's nor the global backup listing.
_KIND_CURSOR = "retention-cursor"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _backup_item(backup: Backup) -> BackupItem:
    return BackupItem(
        id=backup.id,
        planId=backup.planId,
        kind=KIND_BACKUP,
        createdAt=sort_time(backup.createdAt),
        status=backup.status,
        body=backup.model_dump(mode="json"),
    )


class DynamoBackupRepository:
    def create(self, backup: Backup) -> None:
        try:
            _backup_item(backup).save(condition=BackupItem.id.does_not_exist())
        except PutError as exc:
            unless_condition_failure(exc, f"recording backup '{backup.id}'")
            raise Conflict(f"backup '{backup.id}' exists already") from exc

    def get(self, backup_id: str) -> Backup:
        return Backup.model_validate(required_item(BackupItem, backup_id, "backup").body)

    def find(self, backup_id: str) -> Backup | None:
        try:
            return self.get(backup_id)
        except NotFound:
            return None

    def page(self, plan_id: str | None, limit: int, token: str | None) -> Page[Backup]:
        if plan_id:
            key = decode_token(token, _BY_PLAN_BACKUP_KEYS)
            result = BackupItem.byPlan.query(
                plan_id, scan_index_forward=False, limit=limit, last_evaluated_key=key
            )
        else:
            key = decode_token(token, _BY_TIME_BACKUP_KEYS)
            result = BackupItem.byTime.query(
                KIND_BACKUP, scan_index_forward=False, limit=limit, last_evaluated_key=key
            )
        items = [Backup.model_validate(item.body) for item in result]
        return Page(items=items, next_token=encode_token(result.last_evaluated_key))

    def latest(self, plan_id: str) -> Backup | None:
        for item in BackupItem.byPlan.query(plan_id, scan_index_forward=False, limit=1):
            return Backup.model_validate(item.body)
        return None

    def every(self) -> Iterator[Backup]:
        """Every backup of every plan (the catalog rebuild's recount of a storage's usage)."""
        for item in BackupItem.byTime.query(KIND_BACKUP, page_size=200):
            yield Backup.model_validate(item.body)

    def delete(self, backup_id: str) -> None:
        try:
            BackupItem(id=backup_id).delete(condition=BackupItem.id.exists())
        except DeleteError as exc:
            unless_condition_failure(exc, f"deleting backup '{backup_id}'")

    # -- retention and deletes by hand: conditional on the version read -------------------------
    # The version is the stored body itself: comparing it is a compare-and-swap that needs no
    # extra attribute and holds for records written before these methods existed.

    def read_range(
        self, plan_id: str, lower: datetime | None, upper: datetime | None
    ) -> BackupBatch:
        """The plan's backups created in [lower, upper), newest first, through the byPlan index."""
        condition: Condition | None = None
        if lower is not None and upper is not None:
            last = sort_time(upper - timedelta(microseconds=1))
            condition = BackupItem.createdAt.between(sort_time(lower), last)
        elif lower is not None:
            condition = BackupItem.createdAt >= sort_time(lower)
        elif upper is not None:
            condition = BackupItem.createdAt < sort_time(upper)
        result = BackupItem.byPlan.query(
            plan_id, range_key_condition=condition, scan_index_forward=False
        )
        backups = [_stored(item) for item in result]
        return BackupBatch(backups, result.page_iter.total_scanned_count)

    def read_ids(self, backup_ids: Sequence[str]) -> BackupBatch:
        unique = list(dict.fromkeys(backup_ids))
        items = BackupItem.batch_get(unique, consistent_read=True) if unique else []
        return BackupBatch([_stored(item) for item in items], len(unique))

    def find_stored(self, backup_id: str) -> Stored[Backup] | None:
        item = read_item(BackupItem, backup_id)
        return None if item is None else _stored(item)

    def newest_with_copy(self, plan_id: str) -> Backup | None:
        """The plan's newest backup that still has an available copy."""
        query = BackupItem.byPlan.query(plan_id, scan_index_forward=False, page_size=10)
        for item in query:
            backup = Backup.model_validate(item.body)
            if any(c.status == "available" for c in backup.copies):
                return backup
        return None

    def claim(
        self, current: Stored[Backup], claimed: Backup, usage: Sequence[UsageChange]
    ) -> Stored[Backup] | None:
        """Writes the backup with its copies marked deleted and takes their bytes off their
        storages, in one transaction: a copy's usage is returned exactly once."""
        item = _backup_item(claimed)
        try:
            with TransactWrite(connection=_connection()) as tx:
                tx.save(item, condition=BackupItem.body == current.version)
                for change in usage:
                    tx.update(
                        StorageItem(id=change.storage_id),
                        actions=[
                            StorageItem.usedBytes.add(change.delta_bytes),
                            StorageItem.copyCount.add(change.delta_copies),
                        ],
                        condition=StorageItem.id.exists(),
                    )
        except TransactWriteError as exc:
            if first_condition_failed(exc):
                return None
            raise dependency_failed(exc, f"backup '{claimed.id}': releasing its copies") from exc
        return Stored(claimed, item.body)

    def replace(self, current: Stored[Backup], new: Backup) -> Stored[Backup] | None:
        item = _backup_item(new)
        try:
            item.save(condition=BackupItem.body == current.version)
        except PutError as exc:
            unless_condition_failure(exc, f"updating backup '{new.id}'")
            return None
        return Stored(new, item.body)

    def remove(self, current: Stored[Backup]) -> bool:
        try:
            BackupItem(id=current.value.id).delete(condition=BackupItem.body == current.version)
        except DeleteError as exc:
            unless_condition_failure(exc, f"deleting backup '{current.value.id}'")
            return False
        return True

    def read_cursor(self, plan_id: str) -> Stored[RetentionCursor] | None:
        try:
            item = BackupItem.get(_cursor_id(plan_id), consistent_read=True)
        except DoesNotExist:
            return None
        return Stored(RetentionCursor.model_validate(item.body), item.body)

    def write_cursor(
        self, plan_id: str, cursor: RetentionCursor, current: Stored[RetentionCursor] | None
    ) -> bool:
        item = BackupItem(
            id=_cursor_id(plan_id),
            planId=_cursor_id(plan_id),
            kind=_KIND_CURSOR,
            createdAt=sort_time(cursor.head or _EPOCH),
            status="cursor",
            body=cursor.model_dump(mode="json"),
        )
        condition = (
            BackupItem.id.does_not_exist()
            if current is None
            else BackupItem.body == current.version
        )
        try:
            item.save(condition=condition)
        except PutError as exc:
            unless_condition_failure(exc, f"writing the retention cursor of plan {plan_id}")
            return False
        return True

    def hold_for_read(self, backup_id: str, reader: str, until: datetime) -> Backup:
        """For a restore: marks the backup as being read until ``until`` (renew by calling again),
        so retention and deletes leave it alone. Conflict if it has no available copy left."""
        for _ in range(_ATTEMPTS):
            stored = self.find_stored(backup_id)
            if stored is None:
                raise not_found("backup", backup_id)
            if not any(c.status == "available" for c in stored.value.copies):
                raise Conflict(f"backup '{backup_id}' has no available copy left to read")
            held = stored.value.model_copy(update={"readBy": reader, "readUntil": until})
            if self.replace(stored, held) is not None:
                return held
        raise Conflict(f"backup '{backup_id}' kept changing: try again")

    def release_read(self, backup_id: str, reader: str) -> None:
        for _ in range(_ATTEMPTS):
            stored = self.find_stored(backup_id)
            if stored is None or stored.value.readBy != reader:
                return
            free = stored.value.model_copy(update={"readBy": None, "readUntil": None})
            if self.replace(stored, free) is not None:
                return


_ATTEMPTS = 5


def _stored(item: BackupItem) -> Stored[Backup]:
    return Stored(Backup.model_validate(item.body), item.body)


def _cursor_id(plan_id: str) -> str:
    return f"retention#{plan_id}"


def _connection() -> Connection:
    meta: Any = BackupItem.Meta
    return transaction_connection(meta.region)
