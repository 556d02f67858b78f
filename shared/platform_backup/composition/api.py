"""The API function's use cases: storages, plans (turning point-in-time recovery on asks the
archiver function to check the server), the recovery window, the reads of executions and
backups, run-now (launches the executor), deleting a backup, starting a restore (starts the
workflow), and rebuilding the catalog from a storage's manifests.

A request uses one of them, so each is imported and built by the first request that needs it,
not at cold start: a container that only ever lists executions never loads the restore's or
the storages' adapters (docs/decisions.md). The settings are read at cold start all the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from platform_backup.composition.common import once, settings_of, utcnow
from platform_backup.settings import ApiSettings

if TYPE_CHECKING:
    from platform_backup.services.backup_queries import BackupQueries
    from platform_backup.services.catalog_rebuild import CatalogRebuilder
    from platform_backup.services.plans import PlanService
    from platform_backup.services.ports import BackupDeletes
    from platform_backup.services.recovery_windows import RecoveryWindows
    from platform_backup.services.restore_requests import RestoreRequests
    from platform_backup.services.run_now import RunNow
    from platform_backup.services.storages import StorageService

_settings = settings_of(ApiSettings)


@once
def settings() -> ApiSettings:
    """The API's settings, with the list tokens' key bound (the secret is read at the first
    token). The token codec is a few lines of the standard library: it loads at cold start."""
    from platform_backup.adapters.pagination import bind_key

    current = _settings()

    def key() -> bytes:
        from platform_backup.adapters.secrets import read_key_secret

        return read_key_secret(current.page_token_key_secret_arn, current.region)

    bind_key(key)
    return current


@once
def storages() -> StorageService:
    from platform_backup.adapters.buckets import S3BucketProbe
    from platform_backup.adapters.storage_repo import DynamoStorageRepository
    from platform_backup.services.storages import StorageService

    return StorageService(
        DynamoStorageRepository(), S3BucketProbe(), settings().allowed_bucket_arns, utcnow
    )


@once
def plans() -> PlanService:
    from platform_backup.adapters.functions import (
        ArchiverServerCheck,
        FunctionInvoker,
        RetentionLauncher,
        SchedulerFunctionSync,
    )
    from platform_backup.adapters.plan_repo import DynamoPlanRepository
    from platform_backup.adapters.storage_repo import DynamoStorageRepository
    from platform_backup.services.plans import PlanService

    invoker = FunctionInvoker(settings().region)
    sync = SchedulerFunctionSync(invoker, settings().scheduler_function_name)
    check = ArchiverServerCheck(invoker, settings().archiver_function_name)
    retention = RetentionLauncher(invoker, settings().retention_function_name)
    return PlanService(
        DynamoPlanRepository(), DynamoStorageRepository(), sync, utcnow, check, retention
    )


@once
def recovery_windows() -> RecoveryWindows:
    from platform_backup.adapters.archive_repo import DynamoArchiveRepository
    from platform_backup.adapters.backup_repo import DynamoBackupRepository
    from platform_backup.adapters.plan_repo import DynamoPlanRepository
    from platform_backup.services.recovery_windows import RecoveryWindows

    settings()
    return RecoveryWindows(
        DynamoPlanRepository(), DynamoBackupRepository(), DynamoArchiveRepository(), utcnow
    )


@once
def backup_queries() -> BackupQueries:
    from platform_backup.adapters.backup_repo import DynamoBackupRepository
    from platform_backup.adapters.execution_repo import DynamoExecutionRepository
    from platform_backup.services.backup_queries import BackupQueries

    settings()
    return BackupQueries(DynamoExecutionRepository(), DynamoBackupRepository())


@once
def run_now() -> RunNow:
    from platform_backup.adapters.execution_repo import DynamoExecutionRepository
    from platform_backup.adapters.functions import ExecutorLauncher, FunctionInvoker
    from platform_backup.adapters.plan_repo import DynamoPlanRepository
    from platform_backup.adapters.run_metrics import PowertoolsRunMetrics
    from platform_backup.services.run_now import RunNow

    launcher = ExecutorLauncher(
        FunctionInvoker(settings().region), settings().executor_function_arn
    )
    return RunNow(
        DynamoPlanRepository(),
        DynamoExecutionRepository(),
        launcher,
        PowertoolsRunMetrics(),
        utcnow,
    )


@once
def backup_deletes() -> BackupDeletes:
    """Deleting a backup by hand: done by the retention function under retention's rules (the
    API's role deletes no object)."""
    from platform_backup.adapters.functions import FunctionInvoker, RetentionFunctionDeletes

    current = settings()
    return RetentionFunctionDeletes(
        FunctionInvoker(current.region), current.retention_function_name
    )


@once
def restore_requests() -> RestoreRequests:
    from platform_backup.adapters.apply_rates import DynamoApplyRates
    from platform_backup.adapters.archive_repo import DynamoArchiveRepository
    from platform_backup.adapters.backup_repo import DynamoBackupRepository
    from platform_backup.adapters.lease import DynamoLeases
    from platform_backup.adapters.plan_repo import DynamoPlanRepository
    from platform_backup.adapters.restore_repo import DynamoRestoreRepository
    from platform_backup.adapters.restore_source import S3BackupSource
    from platform_backup.adapters.restore_workflow import StepFunctionsWorkflow
    from platform_backup.services.restore_budget import RestoreBudget
    from platform_backup.services.restore_records import RestoreRecords
    from platform_backup.services.restore_requests import RestoreRequests

    current = settings()
    restores, backups = DynamoRestoreRepository(), DynamoBackupRepository()
    return RestoreRequests(
        restores=restores,
        records=RestoreRecords(restores, backups, DynamoLeases(), utcnow),
        backups=backups,
        plans=DynamoPlanRepository(),
        workflow=StepFunctionsWorkflow(current.restore_state_machine_arn, current.region),
        clock=utcnow,
        archive=DynamoArchiveRepository(),
        budget=RestoreBudget(
            DynamoApplyRates(), current.restore_apply_rate, current.restore_step_seconds
        ),
        # Reads a backup's manifest for a restore of chosen tables (its table index).
        source=S3BackupSource(current.region),
    )


@once
def catalog_rebuilder() -> CatalogRebuilder:
    from platform_backup.adapters.backup_repo import DynamoBackupRepository
    from platform_backup.adapters.storage_repo import DynamoStorageRepository
    from platform_backup.adapters.stored_objects import S3StoredObjects
    from platform_backup.services.catalog_rebuild import CatalogRebuilder

    settings()
    storages = DynamoStorageRepository()
    return CatalogRebuilder(storages, storages, DynamoBackupRepository(), S3StoredObjects(), utcnow)
