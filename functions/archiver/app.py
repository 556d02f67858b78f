"""Archiver entry point: a scheduled archive run (``{planId, scheduledTime, kind: "archive"}`` from
the plan's archive schedule) or the server check the API asks for synchronously before it turns
point-in-time recovery on (``{action: "check", planId?, archiveIntervalMinutes?}``)."""

from __future__ import annotations

from platform_backup import startup

# Init's objects live as long as the function: no full garbage collection while it imports them,
# and none walks them afterwards (platform_backup/startup.py).
startup.begin()

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, ValidationError

from platform_backup.composition.archiver import check, clear_tmp, runner, settings
from platform_backup.errors import DomainError, ValidationFailed
from platform_backup.observability import logger
from platform_backup.services.ports import Deadline

# Cold start: the settings are read and checked now; a missing one fails init, named. What a
# killed predecessor left in /tmp goes now and before each job.
settings()
clear_tmp()


class ArchiveEvent(BaseModel):
    planId: str
    scheduledTime: object = None
    kind: str = "archive"


class CheckEvent(BaseModel):
    action: str = "check"
    planId: str | None = None
    archiveIntervalMinutes: int | None = Field(default=None, ge=1, le=15)


def _refused(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(map(str, error["loc"])) or "event"
    return f"{field}: {error['msg']}"


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    clear_tmp()
    if event.get("action") == "check":
        try:
            request = CheckEvent.model_validate(event)
            found = check().check(request.planId, request.archiveIntervalMinutes)
        except ValidationError as exc:
            return {"ok": False, "refused": _refused(exc)}
        except DomainError as exc:
            return {"ok": False, "error": exc.message, "problems": []}
        return {
            "ok": not found,
            "problems": [{"setting": p.setting, "message": p.message} for p in found],
        }
    try:
        run = ArchiveEvent.model_validate(event)
        deadline = Deadline(lambda: context.get_remaining_time_in_millis() / 1000)
        outcome = runner().run_scheduled(run.planId, run.scheduledTime, deadline)
    except ValidationError as exc:
        logger.error("event refused", reason=_refused(exc))
        return {"refused": _refused(exc)}
    except ValidationFailed as exc:
        logger.error("event refused", reason=exc.message)
        return {"refused": exc.message}
    return {"status": outcome.status, "segments": outcome.segments, "reason": outcome.reason}


# Init is over: what it made stays out of the garbage collector's passes.
startup.done()
