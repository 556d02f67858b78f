"""Retention entry point: the EventBridge event of a successful (or partially successful)
backup, ``{"detail": {"planId", "executionId", "backupId"}}``; prunes that plan's copies, then
its archived binary-log segments no kept backup needs."""

# No ``from __future__ import annotations``: the local stack loads this file outside
# sys.modules, where pydantic could not resolve BackupEvent's postponed reference to BackupOutcome.

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from platform_backup.composition.retention import retention, settings
from platform_backup.observability import logger, metrics

# Cold start: the settings are read and checked now; a missing one fails init, named.
settings()


class BackupOutcome(BaseModel):
    planId: str
    executionId: str | None = None
    backupId: str | None = None


class BackupEvent(BaseModel):
    detail: BackupOutcome


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = BackupEvent.model_validate(event)
    summary = retention().apply(request.detail.planId)
    metrics.add_metric(name="CopiesPruned", unit=MetricUnit.Count, value=len(summary.pruned))
    metrics.add_metric(name="RetentionItemsRead", unit=MetricUnit.Count, value=summary.itemsRead)
    metrics.add_metric(
        name="SegmentsPruned", unit=MetricUnit.Count, value=len(summary.segmentsPruned)
    )
    logger.info("retention applied", **asdict(summary))
    return asdict(summary)


# Init is over: what it made stays out of the garbage collector's passes.
startup.done()
