"""The monitor function's use cases: the executions nobody runs any more made final, the plans'
staleness and their archive lag."""

from __future__ import annotations

from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.execution_repo import DynamoExecutionRepository
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.plan_repo import DynamoPlanRepository
from platform_backup.adapters.run_metrics import PowertoolsRunMetrics
from platform_backup.composition.common import once, settings_of, utcnow
from platform_backup.services.abandoned import AbandonedExecutions, ExecutionReaper
from platform_backup.services.monitor import ArchiveLagMonitor, StalenessMonitor
from platform_backup.settings import MonitorSettings

settings = settings_of(MonitorSettings)


@once
def monitor() -> StalenessMonitor:
    settings()
    return StalenessMonitor(DynamoPlanRepository(), DynamoExecutionRepository(), utcnow)


@once
def archive_lag() -> ArchiveLagMonitor:
    settings()
    return ArchiveLagMonitor(DynamoPlanRepository(), DynamoArchiveRepository(), utcnow)


@once
def reaper() -> ExecutionReaper:
    settings()
    executions = DynamoExecutionRepository()
    abandoned = AbandonedExecutions(executions, PowertoolsRunMetrics(), utcnow)
    return ExecutionReaper(executions, DynamoLeases(), abandoned, utcnow)
