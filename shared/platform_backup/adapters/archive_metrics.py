"""The archive's figures as CloudWatch metrics, one per plan (dimension ``plan``): the names the
alarms in template.yaml read."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from platform_backup.observability import NAMESPACE


def _put(name: str, unit: MetricUnit, value: float, plan_id: str) -> None:
    with single_metric(
        name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions={"plan": plan_id}
    ):
        pass


class PowertoolsArchiveMetrics:
    def history_break(self, plan_id: str, kind: str) -> None:
        del kind  # the break's record and log say which; the alarm counts them all
        _put("RecoveryHistoryBreaks", MetricUnit.Count, 1, plan_id)

    def lag(self, plan_id: str, seconds: float, interval_seconds: float) -> None:
        _put("ArchiveLagSeconds", MetricUnit.Seconds, seconds, plan_id)
        # The alarm's figure: plans have their own intervals, the alarm one threshold (2).
        _put("ArchiveLagRatio", MetricUnit.Count, seconds / interval_seconds, plan_id)

    def failed(self, plan_id: str) -> None:
        _put("ArchiveFailed", MetricUnit.Count, 1, plan_id)

    def segment(self, plan_id: str, raw_bytes: int, compressed_bytes: int) -> None:
        _put("ArchivedBinlogBytes", MetricUnit.Bytes, raw_bytes, plan_id)
        del compressed_bytes
