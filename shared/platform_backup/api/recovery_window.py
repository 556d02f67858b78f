"""The plan's point-in-time recovery window: what a restore to a chosen second can reach."""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, Field

from platform_backup.api.models import responses
from platform_backup.composition import api as root
from platform_backup.domain.recovery import RecoveryView

router = Router()


class WindowOut(BaseModel):
    model_config = {"populate_by_name": True}

    start: datetime = Field(alias="from", description="the first recoverable second")
    end: datetime = Field(alias="to", description="the last recoverable second")


class GapOut(BaseModel):
    model_config = {"populate_by_name": True}

    start: datetime = Field(alias="from", description="where the history broke")
    end: datetime | None = Field(
        alias="to", description="where the next window opens (null: none has opened yet)"
    )
    reason: str = Field(description="kind: what happened (purged, reset, server-changed, ...)")


class RecoveryWindowOut(BaseModel):
    windows: list[WindowOut] = Field(description="oldest first; a restore can reach any second")
    lastRecoverableTime: datetime | None = Field(
        description="the newest second a restore can reach (null: no window yet)"
    )
    gaps: list[GapOut] = Field(description="breaks in the archived history, with their reason")
    lagSeconds: float | None = Field(
        description="how far the archive trails now (null: nothing archived, or archiving off)"
    )

    @classmethod
    def of(cls, view: RecoveryView) -> RecoveryWindowOut:
        return cls(
            windows=[WindowOut(start=w.start, end=w.end) for w in view.windows],
            lastRecoverableTime=view.last_recoverable,
            gaps=[GapOut(start=g.start, end=g.end, reason=g.reason) for g in view.gaps],
            lagSeconds=view.lag_seconds,
        )


@router.get(
    "/v1/plans/<plan_id>/recovery-window",
    summary="The seconds a point-in-time restore of the plan can reach, and the gaps",
    responses=responses(200, RecoveryWindowOut, 404),
    tags=["plans"],
)
def recovery_window(plan_id: str) -> RecoveryWindowOut:
    return RecoveryWindowOut.of(root.recovery_windows().view(plan_id))
