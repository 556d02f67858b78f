"""Restore workflow entry point: one step of the state machine (statemachines/restore.asl.json)
per invocation, ``{"step": ..., "restoreId": ...}``. A step that fails raises: its error type
is what the workflow's Retry and Catch match on."""

# No "from __future__ import annotations": the local stack loads this file outside sys.modules,
# where pydantic could not resolve the step's Literal from a string.

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from platform_backup.composition.restore import clear_tmp, restore_steps, settings
from platform_backup.observability import logger, metrics
from platform_backup.services.ports import Deadline
from platform_backup.tracing import tracer

# Cold start: the settings are read and checked now; a missing one fails init, named. What a
# killed predecessor left in /tmp goes now and before each job.
settings()
clear_tmp()


class RestoreStep(BaseModel):
    step: Literal[
        "validate",
        "safety-backup",
        "restore",
        "replay",
        "verify",
        "finalize",
        "rollback",
        "abandon",
    ]
    restoreId: str
    # What a Catch passed on: {"Error": ..., "Cause": ...}.
    error: dict[str, Any] | None = None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    clear_tmp()
    request = RestoreStep.model_validate(event)
    deadline = Deadline(lambda: context.get_remaining_time_in_millis() / 1000)
    logger.append_keys(restore_id=request.restoreId, step=request.step)
    restore = restore_steps().run_step(request.step, request.restoreId, deadline, request.error)
    return {"restoreId": restore.id, "status": restore.status, "phase": restore.phase}


# Init is over: what it made stays out of the garbage collector's passes.
startup.done()
