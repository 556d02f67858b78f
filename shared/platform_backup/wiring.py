"""The composition root: builds each use case with its adapters, once per cold start."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property, lru_cache

from platform_backup.adapters.buckets import S3BucketProbe
from platform_backup.adapters.functions import FunctionInvoker, SchedulerFunctionSync
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.scheduler import EventBridgeScheduler
from platform_backup.adapters.storage_repo import DynamoStorageRepository
from platform_backup.adapters.tables import bind_tables
from platform_backup.services.plans import PlanService
from platform_backup.services.schedules import ScheduleReconciler, ScheduleTargets
from platform_backup.services.storages import StorageService
from platform_backup.settings import Settings, get_settings


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


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(get_settings())
