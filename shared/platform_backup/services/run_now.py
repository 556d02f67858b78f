"""Back up now: the API records a new execution and starts the executor on it asynchronously.
A launch the Lambda service refuses leaves the execution failed with the reason (never
`running` with nothing to run it) and the request answers 503: nothing holds the plan."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from platform_backup.domain.execution import Execution
from platform_backup.errors import DependencyFailed
from platform_backup.observability import logger
from platform_backup.services.ports import (
    ExecutionRepository,
    ExecutionWriteRefused,
    Launcher,
    PlanLookup,
    RunMetrics,
)


class RunNow:
    def __init__(
        self,
        plans: PlanLookup,
        executions: ExecutionRepository,
        launcher: Launcher,
        metrics: RunMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._executions = executions
        self._launcher = launcher
        self._metrics = metrics
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
        try:
            self._launcher.start_backup({"planId": plan_id, "executionId": execution.id})
        except DependencyFailed as exc:
            self._launch_failed(execution, exc)
            raise DependencyFailed(
                f"the backup could not be started ({exc.message}): execution {execution.id} "
                "is recorded as failed; nothing holds the plan, try again"
            ) from exc
        return execution

    def _launch_failed(self, execution: Execution, exc: DependencyFailed) -> None:
        now = self._clock()
        failed = execution.model_copy(
            update={
                "status": "failed",
                "error": f"the executor could not be started: {exc.message}",
                "finishedAt": now,
                "updatedAt": now,
            }
        )
        try:
            self._executions.update(failed)
        except ExecutionWriteRefused:
            # The launch went through after all and the executor already ended the run.
            logger.warning("launch reported failed, execution already final", id=execution.id)
            return
        self._metrics.outcome("failed")
