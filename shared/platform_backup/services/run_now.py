"""Back up now: the API records a new execution and starts the executor on it asynchronously."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from platform_backup.domain.execution import Execution
from platform_backup.services.ports import ExecutionRepository, Launcher, PlanLookup


class RunNow:
    def __init__(
        self,
        plans: PlanLookup,
        executions: ExecutionRepository,
        launcher: Launcher,
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._executions = executions
        self._launcher = launcher
        self._clock = clock

    def start(self, plan_id: str, requested_by: str | None) -> Execution:
        """A new execution every time; the executor runs it (functions/executor)."""
        self._plans.get(plan_id)
        execution = Execution(
            id=uuid.uuid4().hex,
            planId=plan_id,
            trigger="manual",
            startedAt=self._clock(),
            requestedBy=requested_by,
        )
        self._executions.create(execution)
        self._launcher.start_backup({"planId": plan_id, "executionId": execution.id})
        return execution
