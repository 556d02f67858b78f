"""Scheduler entry point: the only writer of the plan's EventBridge Scheduler schedules.

Invoked synchronously by the API after each plan change (``{"action": "reconcile", "planId"}``)
and hourly by an EventBridge rule, which reconciles every plan.
"""

from __future__ import annotations

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from platform_backup.composition.scheduler import schedules, settings
from platform_backup.errors import DomainError
from platform_backup.observability import logger

# Cold start: the settings are read and checked now; a missing one fails init, named.
settings()


class ReconcileRequest(BaseModel):
    action: str = "reconcile"
    planId: str


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        if "planId" in event:
            request = ReconcileRequest.model_validate(event)
            return {"ok": True, "result": schedules().reconcile(request.planId)}
        return {"ok": True, "result": schedules().reconcile_all()}
    except DomainError as exc:
        return {"ok": False, "error": exc.message}


# Init is over: what it made stays out of the garbage collector's passes.
startup.done()
