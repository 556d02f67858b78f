"""Monitor entry point: every five minutes (an EventBridge schedule; the event says nothing the
check needs), publishes StalenessRatio, which BackupStaleAlarm compares with 1.5."""

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from platform_backup.composition.monitor import monitor, settings
from platform_backup.observability import logger, metrics

# Cold start: the settings are read and checked now; a missing one fails init, named.
settings()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = monitor().check()
    metrics.add_metric(name="StalenessRatio", unit=MetricUnit.NoUnit, value=report.ratio)
    for plan in report.plans:
        logger.info("plan staleness", **asdict(plan))
    return {"stalenessRatio": report.ratio, "plans": [asdict(plan) for plan in report.plans]}


# Init is over: what it made stays out of the garbage collector's passes.
startup.done()
