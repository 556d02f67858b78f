"""The backup run's figures as CloudWatch metrics (EMF through powertools' Metrics): the names
the alarms in template.yaml read."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from platform_backup.observability import metrics

_OUTCOMES = {
    "succeeded": "BackupSucceeded",
    "partially-succeeded": "BackupSucceeded",
    "failed": "BackupFailed",
    "skipped": "BackupSkipped",
}


class PowertoolsRunMetrics:
    def outcome(self, status: str) -> None:
        metrics.add_metric(name=_OUTCOMES[status], unit=MetricUnit.Count, value=1)

    def dump(self, raw_bytes: int, compressed_bytes: int, seconds: float) -> None:
        metrics.add_metric(name="BackupDurationSeconds", unit=MetricUnit.Seconds, value=seconds)
        metrics.add_metric(name="BackupBytes", unit=MetricUnit.Bytes, value=compressed_bytes)
        metrics.add_metric(name="BackupRawBytes", unit=MetricUnit.Bytes, value=raw_bytes)
        if seconds > 0:
            metrics.add_metric(
                name="ThroughputBytesPerSecond",
                unit=MetricUnit.BytesPerSecond,
                value=raw_bytes / seconds,
            )
