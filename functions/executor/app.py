"""Executor entry point: a scheduled run (``{planId, scheduledTime}`` from the plan's schedule)
or a run-now started by the API (``{planId, executionId}``)."""

from __future__ import annotations

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from platform_backup.composition.executor import clear_tmp, settings
from platform_backup.composition.executor import runner as backup_runner
from platform_backup.errors import ValidationFailed
from platform_backup.observability import logger, metrics
from platform_backup.services.ports import Deadline
from platform_backup.tracing import tracer

# Cold start: the settings are read and checked now; a missing one fails init, named. What a
# killed predecessor left in /tmp goes now and before each job.
settings()
clear_tmp()


class ExecutorEvent(BaseModel):
    planId: str
    scheduledTime: object = None
    executionId: str | None = None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    clear_tmp()
    request = ExecutorEvent.model_validate(event)
    deadline = Deadline(lambda: context.get_remaining_time_in_millis() / 1000)
    runner = backup_runner()
    try:
        if request.executionId is not None:
            execution = runner.run_started(request.executionId, deadline)
        else:
            execution = runner.run_scheduled(request.planId, request.scheduledTime, deadline)
    except ValidationFailed as exc:
        # Refused, never deduplicated: there is no scheduled time to make an execution of. The
        # invocation fails, so the event reaches the failure destination instead of vanishing.
        logger.error("event refused", reason=exc.message)
        raise
    return {"executionId": execution.id, "status": execution.status}


# Init is over: what it made stays out of the garbage collector's passes, which would otherwise
# walk boto3's models again and again during a backup.
startup.done()
