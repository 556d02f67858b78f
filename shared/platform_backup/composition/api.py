"""The API function's use cases: storages, plans (turning point-in-time recovery on asks the
archiver function to check the server), the recovery window, the reads of executions and
backups, run-now (launches the executor), deleting a backup, and starting a restore (starts the
workflow)."""

from __future__ import annotations

from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.buckets import S3BucketProbe
from platform_backup.adapters.execution_repo import (
    DynamoBackupRepository,
    DynamoExecutionRepository,
)
from platform_backup.adapters.functions import (
    ArchiverServerCheck,
    ExecutorLauncher,
    FunctionInvoker,
    SchedulerFunctionSync,
)
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.pagination import bind_key
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.restore_repo import DynamoRestoreRepository
from platform_backup.adapters.restore_workflow import StepFunctionsWorkflow
from platform_backup.adapters.secrets import read_key_secret
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.composition.common import once, settings_of, utcnow
from platform_backup.composition.retention import retention
from platform_backup.services.backup_queries import BackupQueries
from platform_backup.services.plans import PlanService
from platform_backup.services.recovery_windows import RecoveryWindows
from platform_backup.services.restore_records import RestoreRecords
from platform_backup.services.restore_requests import RestoreRequests
from platform_backup.services.retention import RetentionService
from platform_backup.services.run_now import RunNow
from platform_backup.services.storages import StorageService
from platform_backup.settings import ApiSettings

_settings = settings_of(ApiSettings)


@once
def settings() -> ApiSettings:
    """The API's settings, with the list tokens' key bound (read at the first token)."""
    current = _settings()
    bind_key(lambda: read_key_secret(current.page_token_key_secret_arn, current.region))
    return current


@once
def storages() -> StorageService:
    return StorageService(
        DynamoStorageRepository(), S3BucketProbe(), settings().allowed_bucket_arns, utcnow
    )


@once
def plans() -> PlanService:
    invoker = FunctionInvoker(settings().region)
    sync = SchedulerFunctionSync(invoker, settings().scheduler_function_name)
    check = ArchiverServerCheck(invoker, settings().archiver_function_name)
    return PlanService(DynamoPlanRepository(), DynamoStorageRepository(), sync, utcnow, check)


@once
def recovery_windows() -> RecoveryWindows:
    settings()
    return RecoveryWindows(
        DynamoPlanRepository(), DynamoBackupRepository(), DynamoArchiveRepository(), utcnow
    )


@once
def backup_queries() -> BackupQueries:
    settings()
    return BackupQueries(DynamoExecutionRepository(), DynamoBackupRepository())


@once
def run_now() -> RunNow:
    launcher = ExecutorLauncher(
        FunctionInvoker(settings().region), settings().executor_function_arn
    )
    return RunNow(DynamoPlanRepository(), DynamoExecutionRepository(), launcher, utcnow)


def backup_deletes() -> RetentionService:
    """Deleting a backup by hand: retention's rules for what may go."""
    return retention()


@once
def restore_requests() -> RestoreRequests:
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
    )
