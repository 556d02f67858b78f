"""The composition root: builds each use case with its adapters, once per cold start."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property, lru_cache

from platform_backup.adapters.buckets import S3BucketProbe
from platform_backup.adapters.dump_engine import MariaDbDumpEngine
from platform_backup.adapters.events import EventBridgePublisher
from platform_backup.adapters.execution_repo import (
    DynamoBackupRepository,
    DynamoExecutionRepository,
)
from platform_backup.adapters.functions import (
    ExecutorLauncher,
    FunctionInvoker,
    SchedulerFunctionSync,
)
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.mariadb import DbConnection
from platform_backup.adapters.mysql_restore import MariaDbTarget
from platform_backup.adapters.pending_remote import DynamoPendingRemote
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.replication import S3Replicator
from platform_backup.adapters.restore_repo import DynamoRestoreRepository
from platform_backup.adapters.restore_source import S3BackupSource
from platform_backup.adapters.restore_workflow import StepFunctionsWorkflow
from platform_backup.adapters.s3_objects import S3Objects
from platform_backup.adapters.scheduler import EventBridgeScheduler
from platform_backup.adapters.secrets import read_db_secret
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.adapters.tables import bind_tables
from platform_backup.services.backups import BackupRunner
from platform_backup.services.monitor import StalenessMonitor
from platform_backup.services.plans import PlanService
from platform_backup.services.restores import RestoreService
from platform_backup.services.retention import RetentionService
from platform_backup.services.schedules import ScheduleReconciler, ScheduleTargets
from platform_backup.services.storages import StorageService
from platform_backup.settings import Settings, load


def utcnow() -> datetime:
    return datetime.now(UTC)


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        bind_tables(settings)

    @cached_property
    def storage_repo(self) -> DynamoStorageRepository:
        return DynamoStorageRepository()

    @cached_property
    def plan_repo(self) -> DynamoPlanRepository:
        return DynamoPlanRepository()

    @cached_property
    def invoker(self) -> FunctionInvoker:
        return FunctionInvoker(self.settings.region)

    @cached_property
    def storages(self) -> StorageService:
        return StorageService(
            self.storage_repo, S3BucketProbe(), self.settings.allowed_bucket_arns, utcnow
        )

    @cached_property
    def plans(self) -> PlanService:
        sync = SchedulerFunctionSync(self.invoker, self.settings.scheduler_function_name)
        return PlanService(self.plan_repo, self.storage_repo, sync, utcnow)

    @cached_property
    def schedules(self) -> ScheduleReconciler:
        targets = ScheduleTargets(
            group=self.settings.schedule_group,
            executor_arn=self.settings.executor_function_arn,
            role_arn=self.settings.scheduler_role_arn,
            dead_letter_arn=self.settings.schedule_dlq_arn,
        )
        return ScheduleReconciler(
            self.plan_repo, EventBridgeScheduler(self.settings.region), targets, utcnow
        )

    @cached_property
    def backups(self) -> BackupRunner:
        settings = self.settings
        engine = MariaDbDumpEngine(lambda: read_db_secret(settings.db_secret_arn, settings.region))
        return BackupRunner(
            plans=self.plan_repo,
            storages=self.storage_repo,
            executions=DynamoExecutionRepository(),
            backups=DynamoBackupRepository(),
            stored=DynamoBackupRepository(),
            leases=DynamoLeases(),
            engine=engine,
            replicator=S3Replicator(),
            pending=DynamoPendingRemote(),
            events=EventBridgePublisher(settings.region, settings.event_bus_name),
            launcher=ExecutorLauncher(self.invoker, settings.executor_function_arn),
            databases=list(settings.db_names),
            clock=utcnow,
        )

    @cached_property
    def retention(self) -> RetentionService:
        return RetentionService(
            plans=self.plan_repo,
            backups=DynamoBackupRepository(),
            objects=S3Objects(),
            clock=utcnow,
            safety_days=self.settings.safety_backup_retention_days,
            default_region=self.settings.region,
        )

    @cached_property
    def restores(self) -> RestoreService:
        settings = self.settings

        def connect(secret_arn: str | None) -> DbConnection:
            return read_db_secret(secret_arn or settings.db_secret_arn, settings.region)

        return RestoreService(
            restores=DynamoRestoreRepository(),
            backups=DynamoBackupRepository(),
            plans=self.plan_repo,
            leases=DynamoLeases(),
            workflow=StepFunctionsWorkflow(settings.restore_state_machine_arn, settings.region),
            source=S3BackupSource(settings.region),
            target=MariaDbTarget(),
            safety=self.backups,
            connect=connect,
            clock=utcnow,
        )

    @cached_property
    def monitor(self) -> StalenessMonitor:
        return StalenessMonitor(self.plan_repo, DynamoExecutionRepository(), utcnow)


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(load(Settings))
