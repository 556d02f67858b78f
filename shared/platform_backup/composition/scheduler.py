"""The scheduler function's use case: the plans' EventBridge schedules."""

from __future__ import annotations

from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.scheduler import EventBridgeScheduler
from platform_backup.composition.common import once, settings_of, utcnow
from platform_backup.services.schedules import ScheduleReconciler, ScheduleTargets
from platform_backup.settings import SchedulerSettings

settings = settings_of(SchedulerSettings)


@once
def schedules() -> ScheduleReconciler:
    current = settings()
    targets = ScheduleTargets(
        group=current.schedule_group,
        executor_arn=current.executor_function_arn,
        archiver_arn=current.archiver_function_arn,
        role_arn=current.scheduler_role_arn,
        dead_letter_arn=current.schedule_dlq_arn,
    )
    return ScheduleReconciler(
        DynamoPlanRepository(), EventBridgeScheduler(current.region), targets, utcnow
    )
