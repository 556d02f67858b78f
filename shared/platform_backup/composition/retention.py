"""The retention function's use cases: retention, the plan's binary-log segments included (also
the API's delete of a backup), and the hourly reconcile of objects no record describes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.s3_objects import S3Objects
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.composition.common import once, settings_of, utcnow
from platform_backup.services.archive_retention import ArchiveRetention
from platform_backup.services.retention import RetentionService
from platform_backup.settings import RetentionSettings

if TYPE_CHECKING:
    from platform_backup.services.orphan_reconcile import OrphanReconcile

settings = settings_of(RetentionSettings)


@once
def retention() -> RetentionService:
    current = settings()
    return RetentionService(
        plans=DynamoPlanRepository(),
        backups=DynamoBackupRepository(),
        objects=S3Objects(),
        clock=utcnow,
        safety_days=current.safety_backup_retention_days,
        default_region=current.region,
        archive=ArchiveRetention(
            DynamoBackupRepository(),
            DynamoArchiveRepository(),
            S3Objects(),
            DynamoStorageRepository(),
            current.region,
        ),
    )


@once
def orphans() -> OrphanReconcile:
    """Built by the first hourly run: a retention run after a backup never loads it."""
    from platform_backup.adapters.execution_repo import DynamoExecutionRepository
    from platform_backup.adapters.stored_objects import S3StoredObjects
    from platform_backup.services.orphan_reconcile import OrphanReconcile

    settings()
    return OrphanReconcile(
        plans=DynamoPlanRepository(),
        storages=DynamoStorageRepository(),
        backups=DynamoBackupRepository(),
        executions=DynamoExecutionRepository(),
        objects=S3StoredObjects(),
        deleter=S3Objects(),
        clock=utcnow,
    )
