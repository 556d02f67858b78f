"""The archiver function's use cases: the scheduled archive run and the server check."""

from __future__ import annotations

from platform_backup.adapters.archive_metrics import PowertoolsArchiveMetrics
from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.adapters.binlog_events import BinlogScanner
from platform_backup.adapters.binlog_server import MariaDbBinlogSource
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.replication import S3Replicator
from platform_backup.adapters.secrets import read_db_secret
from platform_backup.adapters.segment_upload import S3SegmentWriter
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.composition.common import clear_scratch, once, settings_of, utcnow
from platform_backup.services.archive_check import ArchiveCheck
from platform_backup.services.archive_runner import ArchiveParts, ArchiveRunner
from platform_backup.settings import ArchiverSettings


def clear_tmp() -> None:
    """At cold start and before each job: what a killed run of this function left in /tmp."""
    clear_scratch("archiver")


settings = settings_of(ArchiverSettings)


@once
def source() -> MariaDbBinlogSource:
    current = settings()
    return MariaDbBinlogSource(lambda: read_db_secret(current.db_secret_arn, current.region))


@once
def runner() -> ArchiveRunner:
    return ArchiveRunner(
        plans=DynamoPlanRepository(),
        storages=DynamoStorageRepository(),
        backups=DynamoBackupRepository(),
        archive=DynamoArchiveRepository(),
        leases=DynamoLeases(),
        parts=ArchiveParts(
            source=source(),
            scanner=BinlogScanner,
            writer=S3SegmentWriter(),
            replicator=S3Replicator(),
            metrics=PowertoolsArchiveMetrics(),
        ),
        clock=utcnow,
    )


@once
def check() -> ArchiveCheck:
    return ArchiveCheck(source(), DynamoPlanRepository())
