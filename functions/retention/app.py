"""Retention entry point. Five events start it:
- the EventBridge event of a successful (or partially successful) backup,
  ``{"detail": {"planId", "executionId", "backupId"}}``: that plan;
- the API, when a plan's retention policy changed, ``{"planId"}``: that plan;
- its hourly schedule (``"detail-type": "Scheduled Event"``): every plan, so a lowered policy or
  a plan whose backups keep failing is pruned too;
- its hourly ``{"action": "reconcile-orphans"}``: reports (and, when proven leftovers, deletes)
  the objects under every plan's keys that no backup record describes
  (services/orphan_reconcile.py);
- the API's delete of a backup, ``{"action": "delete-backup", "backupId", "force"}``: this
  function alone may delete object versions.
Each retention run prunes the plan's copies, then its archived binary-log segments no kept
backup needs. An event naming no plan, or a run that fails, fails the invocation: it reaches the
failure queue (RetentionFailureQueue) and its alarm."""

# No ``from __future__ import annotations``: the local stack loads this file outside
# sys.modules, where pydantic could not resolve the event model's postponed references.

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from dataclasses import asdict
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from platform_backup.composition.retention import orphans, retention, settings
from platform_backup.errors import Conflict, NotFound
from platform_backup.observability import logger, metrics
from platform_backup.services.retention import RetentionSummary

# Cold start: the settings are read and checked now; a missing one fails init, named.
settings()

SCHEDULED = "Scheduled Event"


# The hourly schedule's event: objects under the plans' keys that no record describes.
ORPHAN_RECONCILE = "reconcile-orphans"


class BackupOutcome(BaseModel):
    planId: str
    executionId: str | None = None
    backupId: str | None = None


class RetentionEvent(BaseModel):
    planId: str | None = None
    detail_type: str | None = Field(default=None, alias="detail-type")
    detail: dict[str, Any] = Field(default_factory=dict)


class DeleteBackup(BaseModel):
    action: Literal["delete-backup"]
    backupId: str
    force: bool = False


def delete_backup(request: DeleteBackup) -> dict[str, Any]:
    """The API's delete; its refusals are answers (the API turns them into 404 and 409)."""
    try:
        retention().delete_backup(request.backupId, request.force)
    except (Conflict, NotFound) as exc:
        code = "NotFound" if isinstance(exc, NotFound) else "Conflict"
        return {"ok": False, "code": code, "error": exc.message}
    logger.info("backup deleted", backup_id=request.backupId, force=request.force)
    return {"ok": True}


def _record(summary: RetentionSummary) -> dict[str, Any]:
    metrics.add_metric(name="CopiesPruned", unit=MetricUnit.Count, value=len(summary.pruned))
    metrics.add_metric(name="RetentionItemsRead", unit=MetricUnit.Count, value=summary.itemsRead)
    metrics.add_metric(
        name="SegmentsPruned", unit=MetricUnit.Count, value=len(summary.segmentsPruned)
    )
    logger.info("retention applied", **asdict(summary))
    return asdict(summary)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if event.get("action") == ORPHAN_RECONCILE:
        return _reconcile_orphans()
    if event.get("action") == "delete-backup":
        return delete_backup(DeleteBackup.model_validate(event))
    request = RetentionEvent.model_validate(event)
    if request.planId is not None:
        return _record(retention().apply(request.planId))
    if request.detail_type == SCHEDULED:
        return [_record(summary) for summary in retention().apply_all()]
    outcome = BackupOutcome.model_validate(request.detail)
    return _record(retention().apply(outcome.planId))


def _reconcile_orphans() -> dict[str, Any]:
    reports = orphans().reconcile_all()
    found = [item for report in reports for item in report.found]
    deleted = [item for item in found if item.deleted]
    metrics.add_metric(name="UnrecordedObjects", unit=MetricUnit.Count, value=len(found))
    metrics.add_metric(name="UnrecordedDeleted", unit=MetricUnit.Count, value=len(deleted))
    return {
        "plans": [
            {
                "planId": report.planId,
                "found": [
                    {k: v for k, v in asdict(item).items() if k != "doomed"}
                    for item in report.found
                ],
                "errors": report.errors,
            }
            for report in reports
        ]
    }


# Init is over: what it made stays out of the garbage collector's passes.
startup.done()
