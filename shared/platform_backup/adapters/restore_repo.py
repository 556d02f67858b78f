"""Restores in DynamoDB, listed newest first through the byTime index."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from platform_backup.adapters.dynamo_errors import unless_condition_failure
from platform_backup.adapters.keys import required_item
from platform_backup.adapters.pagination import decode_token, encode_token
from platform_backup.adapters.tables import KIND_RESTORE, RestoreItem
from platform_backup.domain.restore import Restore
from platform_backup.errors import Conflict, NotFound
from platform_backup.services.ports import Page

_BY_TIME_KEYS = frozenset({"id", "kind", "startedAt"})


def _item(restore: Restore) -> RestoreItem:
    # One fixed format (UTC, microseconds) so the index's string order is time order.
    started = restore.startedAt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return RestoreItem(
        id=restore.id,
        kind=KIND_RESTORE,
        startedAt=started,
        status=restore.status,
        body=restore.model_dump(mode="json"),
    )


class RestoreFinal(Conflict):
    """The restore reached a final status meanwhile; a final status never changes."""

    code = "RestoreFinal"


class DynamoRestoreRepository:
    def create(self, restore: Restore) -> None:
        try:
            _item(restore).save(condition=RestoreItem.id.does_not_exist())
        except PutError as exc:
            unless_condition_failure(exc, f"recording restore '{restore.id}'")
            raise Conflict(f"restore '{restore.id}' exists already") from exc

    def update(self, restore: Restore) -> None:
        """Writes the running restore's new state; once final, a restore never changes."""
        try:
            _item(restore).save(condition=RestoreItem.status == "running")
        except PutError as exc:
            unless_condition_failure(exc, f"updating restore '{restore.id}'")
            raise RestoreFinal(f"restore '{restore.id}' has ended already") from exc

    def get(self, restore_id: str) -> Restore:
        return Restore.model_validate(required_item(RestoreItem, restore_id, "restore").body)

    def find(self, restore_id: str) -> Restore | None:
        try:
            return self.get(restore_id)
        except NotFound:
            return None

    def page(self, limit: int, token: str | None) -> Page[Restore]:
        result = RestoreItem.byTime.query(
            KIND_RESTORE,
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=decode_token(token, _BY_TIME_KEYS),
        )
        items = [Restore.model_validate(item.body) for item in result]
        return Page(items=items, next_token=encode_token(result.last_evaluated_key))
