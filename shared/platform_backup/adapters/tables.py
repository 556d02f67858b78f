"""The DynamoDB tables, as pynamodb models: the only code that knows table layouts.

Key schemas and indexes here must equal template.yaml's (tests/unit/test_tables.py checks it);
table names come from the settings when ``bind_tables`` runs at cold start.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from platform_backup.adapters.aws import MAX_ATTEMPTS
from platform_backup.settings import CommonSettings

# Items listed "newest first" across all plans share this constant partition of the byTime index:
# the service keeps one plan and its history, far below a partition's throughput.
KIND_EXECUTION = "execution"
KIND_BACKUP = "backup"
KIND_RESTORE = "restore"


class _Table(Model):
    class Meta:
        abstract = True
        table_name = "unbound"
        region = "us-east-1"
        # pynamodb's client retries in botocore's standard mode (throttling, 5xx, with jitter);
        # this counts the retries only, so every call gets as many attempts as boto3's clients.
        max_retry_attempts = MAX_ATTEMPTS - 1


class StorageItem(_Table):
    class Meta(_Table.Meta):
        abstract = False

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    role = UnicodeAttribute()
    bucket = UnicodeAttribute()
    region = UnicodeAttribute()
    prefix = UnicodeAttribute(default="")
    capacityBytes = NumberAttribute()
    # usedBytes and copyCount change only through atomic ADD updates (never read-modify-write).
    usedBytes = NumberAttribute(default=0)
    copyCount = NumberAttribute(default=0)
    # How many plans reference this storage; plan writes change it in the same transaction, so a
    # storage in use can never be deleted, even by a delete racing a plan write.
    planRefs = NumberAttribute(default=0)
    createdAt = UnicodeAttribute()


class PlanItem(_Table):
    class Meta(_Table.Meta):
        abstract = False

    id = UnicodeAttribute(hash_key=True)
    spec = JSONAttribute()
    state = UnicodeAttribute()
    createdAt = UnicodeAttribute()
    updatedAt = UnicodeAttribute()
    revision = NumberAttribute(default=1)


class LockItem(_Table):
    """Uniqueness guards (``unique#PlatformDatabase``), job leases (``lease#<plan>``), the
    plan's backups still missing their remote copy (``remote-pending#<plan>``) and the apply
    rate its last measurable restore reached (``restore-rate#<plan>``)."""

    class Meta(_Table.Meta):
        abstract = False

    lockId = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute(null=True)
    ownerKind = UnicodeAttribute(null=True)
    expiresAt = NumberAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    members = UnicodeSetAttribute(null=True)
    rate = NumberAttribute(null=True)


class _ByPlanExecutions(GlobalSecondaryIndex["ExecutionItem"]):
    class Meta:
        index_name = "byPlan"
        projection = AllProjection()

    planId = UnicodeAttribute(hash_key=True)
    startedAt = UnicodeAttribute(range_key=True)


class _ByTimeExecutions(GlobalSecondaryIndex["ExecutionItem"]):
    class Meta:
        index_name = "byTime"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    startedAt = UnicodeAttribute(range_key=True)


class ExecutionItem(_Table):
    class Meta(_Table.Meta):
        abstract = False

    id = UnicodeAttribute(hash_key=True)
    planId = UnicodeAttribute()
    kind = UnicodeAttribute(default=KIND_EXECUTION)
    startedAt = UnicodeAttribute()
    status = UnicodeAttribute()
    body = JSONAttribute()
    byPlan = _ByPlanExecutions()
    byTime = _ByTimeExecutions()


class _ByPlanBackups(GlobalSecondaryIndex["BackupItem"]):
    class Meta:
        index_name = "byPlan"
        projection = AllProjection()

    planId = UnicodeAttribute(hash_key=True)
    createdAt = UnicodeAttribute(range_key=True)


class _ByTimeBackups(GlobalSecondaryIndex["BackupItem"]):
    class Meta:
        index_name = "byTime"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    createdAt = UnicodeAttribute(range_key=True)


class BackupItem(_Table):
    class Meta(_Table.Meta):
        abstract = False

    id = UnicodeAttribute(hash_key=True)
    planId = UnicodeAttribute()
    kind = UnicodeAttribute(default=KIND_BACKUP)
    createdAt = UnicodeAttribute()
    status = UnicodeAttribute()
    body = JSONAttribute()
    byPlan = _ByPlanBackups()
    byTime = _ByTimeBackups()


class _ByTimeRestores(GlobalSecondaryIndex["RestoreItem"]):
    class Meta:
        index_name = "byTime"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    startedAt = UnicodeAttribute(range_key=True)


class RestoreItem(_Table):
    class Meta(_Table.Meta):
        abstract = False

    id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default=KIND_RESTORE)
    startedAt = UnicodeAttribute()
    status = UnicodeAttribute()
    body = JSONAttribute()
    byTime = _ByTimeRestores()


class ArchiveItem(_Table):
    """Point-in-time recovery, per plan (``item``): ``state``, ``segment#<sequence>``,
    ``break#<time>#<kind>`` and ``run#<scheduled time>`` (the guard of one scheduled run)."""

    class Meta(_Table.Meta):
        abstract = False

    planId = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True)
    body = JSONAttribute(null=True)
    # The state's write count: every write of it is conditional on the one read.
    version = NumberAttribute(null=True)
    expiresAt = NumberAttribute(null=True)


# Logical ID in template.yaml -> (model, Settings field holding its name).
TABLES: dict[str, tuple[type[Model], str]] = {
    "StoragesTable": (StorageItem, "storages_table"),
    "PlansTable": (PlanItem, "plans_table"),
    "LocksTable": (LockItem, "locks_table"),
    "ExecutionsTable": (ExecutionItem, "executions_table"),
    "BackupsTable": (BackupItem, "backups_table"),
    "RestoresTable": (RestoreItem, "restores_table"),
    "ArchiveTable": (ArchiveItem, "archive_table"),
}


def sort_time(value: datetime) -> str:
    """An index's time sort key: one fixed format (UTC, microseconds), so that the keys' string
    order is time order."""
    return str(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


@lru_cache(maxsize=4)
def transaction_connection(region: str) -> Connection:
    """One connection per region for transactions: building one costs a botocore session and
    the service description (about 0.1 s of CPU), far more than the write itself."""
    return Connection(region=region, max_retry_attempts=MAX_ATTEMPTS - 1)


def bind_tables(settings: CommonSettings) -> None:
    """Point every model at its table in this deployment (names and region from the settings).
    The endpoint comes from botocore's standard AWS_ENDPOINT_URL, as for every other client."""
    transaction_connection.cache_clear()
    for model, field in TABLES.values():
        meta: Any = model.Meta
        name = getattr(settings, field)
        meta.table_name = name
        meta.region = settings.region
        # Bound once per cold start: a cached connection would keep the old table name or the
        # endpoint of a local stack that has stopped (the demo starts a second one).
        model._connection = None
