"""The reads behind the API's executions and backups."""

from __future__ import annotations

from platform_backup.domain.backup import Backup
from platform_backup.domain.execution import Execution
from platform_backup.services.ports import BackupRepository, ExecutionRepository, Page


class BackupQueries:
    def __init__(self, executions: ExecutionRepository, backups: BackupRepository) -> None:
        self._executions = executions
        self._backups = backups

    def executions(
        self, plan_id: str | None, status: str | None, limit: int, token: str | None
    ) -> Page[Execution]:
        return self._executions.page(plan_id, status, limit, token)

    def backups(self, plan_id: str | None, limit: int, token: str | None) -> Page[Backup]:
        return self._backups.page(plan_id, limit, token)

    def get_execution(self, execution_id: str) -> Execution:
        return self._executions.get(execution_id)

    def get_backup(self, backup_id: str) -> Backup:
        return self._backups.get(backup_id)
