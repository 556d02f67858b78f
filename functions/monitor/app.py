"""Monitor entry point: every five minutes (an EventBridge schedule; the event says nothing the
check needs). Fails the running executions whose executor is gone (counted in BackupFailed, so
BackupFailedAlarm fires), then publishes StalenessRatio, which BackupStaleAlarm compares with
1.5, and for each plan archiving its binary log ArchiveLagSeconds and ArchiveLagRatio (dimension
``plan``), which ArchiveLagAlarm compares with 2."""

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from platform_backup.composition.monitor import archive_lag, monitor, reaper, settings
from platform_backup.observability import NAMESPACE, logger, metrics

# Cold start: the settings are read and checked now; a missing one fails init, named.
settings()


def _per_plan(name: str, unit: MetricUnit, value: float, plan_id: str) -> None:
    # One EMF blob per plan: a dimension set holds for every metric of its blob.
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="plan", value=plan_id)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        reaped = reaper().reap()
    except Exception:
        # Whatever failed (a throttled read, a refused write), staleness is still published,
        # so its alarm does not go off for it; the next pass, five minutes on, looks again.
        logger.exception("abandoned executions not checked this time")
        reaped = []
    report = monitor().check()
    metrics.add_metric(name="StalenessRatio", unit=MetricUnit.NoUnit, value=report.ratio)
    for plan in report.plans:
        logger.info("plan staleness", **asdict(plan))
    lags = archive_lag().check()
    for lag in lags:
        _per_plan("ArchiveLagSeconds", MetricUnit.Seconds, lag.seconds, lag.plan_id)
        _per_plan("ArchiveLagRatio", MetricUnit.NoUnit, lag.ratio, lag.plan_id)
        logger.info("plan archive lag", **asdict(lag))
    return {
        "reaped": [{"executionId": e.id, "error": e.error} for e in reaped],
        "stalenessRatio": report.ratio,
        "plans": [asdict(plan) for plan in report.plans],
        "archiveLag": [asdict(lag) for lag in lags],
    }


# Init is over: what it made stays out of the garbage collector's passes.
startup.done()
