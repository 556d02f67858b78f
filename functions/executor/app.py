"""Executor entry point (scheduled runs and "back up now").

Until the backup pipeline is wired in, it records nothing and only logs that it was invoked, so
the schedules built from the plan can be seen firing end to end.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from platform_backup.observability import logger


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("executor invoked", plan_id=event.get("planId"))
    return {"invoked": True}
