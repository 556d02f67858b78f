"""The executor function's use case: the backup run (the dump engine, remote sync, events)."""

from __future__ import annotations

from typing import cast

from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.adapters.dump_engine import MariaDbDumpEngine
from platform_backup.adapters.events import EventBridgePublisher
from platform_backup.adapters.execution_repo import DynamoExecutionRepository
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.pending_remote import DynamoPendingRemote
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.replication import S3Replicator
from platform_backup.adapters.run_metrics import PowertoolsRunMetrics
from platform_backup.adapters.secrets import read_db_secret
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.composition.common import clear_scratch, once, settings_of, utcnow
from platform_backup.domain.remote_lock import LockMode, LockRules
from platform_backup.services.backup_runner import BackupRunner
from platform_backup.services.remote_sync import RemoteSync
from platform_backup.settings import ExecutorSettings


def clear_tmp() -> None:
    """At cold start and before each job: what a killed run of this function left in /tmp."""
    clear_scratch("executor")


settings = settings_of(ExecutorSettings)


@once
def runner() -> BackupRunner:
    current = settings()
    storages, backups, pending = (
        DynamoStorageRepository(),
        DynamoBackupRepository(),
        DynamoPendingRemote(),
    )
    engine = MariaDbDumpEngine(lambda: read_db_secret(current.db_secret_arn, current.region))
    return BackupRunner(
        plans=DynamoPlanRepository(),
        storages=storages,
        executions=DynamoExecutionRepository(),
        backups=backups,
        pending=pending,
        leases=DynamoLeases(),
        engine=engine,
        remote=RemoteSync(
            storages,
            backups,
            S3Replicator(),
            pending,
            LockRules(
                cast(LockMode, current.remote_lock_mode),
                current.remote_lock_permanent_days,
                current.remote_lock_count_days,
            ),
            utcnow,
        ),
        events=EventBridgePublisher(current.region, current.event_bus_name),
        metrics=PowertoolsRunMetrics(),
        databases=list(current.db_names),
        clock=utcnow,
    )
