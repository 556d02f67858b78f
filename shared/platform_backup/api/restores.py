"""Restores of backups: started here (the plan's lease is taken in the call, so a busy plan is
a synchronous 409), then worked through by the restore workflow; watched through GET.

In place has routes of its own, so an IAM policy can allow restores into new databases and deny
overwriting the live ones (execute-api resources are method + path, never the body)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from platform_backup.api.models import ItemList, accepted, responses
from platform_backup.api.params import DEFAULT_LIMIT, Limit, NextToken
from platform_backup.composition import api as root
from platform_backup.domain.restore import (
    InPlacePlanRestoreRequest,
    InPlaceRestoreRequest,
    PlanRestoreRequest,
    Restore,
    RestoreRequest,
)
from platform_backup.errors import ValidationFailed

router = Router()


def _caller() -> str | None:
    """Who asked (API Gateway's IAM identity of the signed request)."""
    event: APIGatewayProxyEvent = router.current_event  # type: ignore[assignment]
    identity = event.request_context.identity
    return identity.user_arn or identity.caller


def _new_databases_only(request: RestoreRequest, in_place_route: str) -> None:
    if request.target.mode == "in-place":
        raise ValidationFailed.of(
            "target.mode",
            f"in place has its own route: POST {in_place_route} (same body, confirm required)",
        )


@router.post(
    "/v1/backups/<backup_id>/restores",
    summary="Restore a backup into new databases (in place: .../in-place-restores)",
    responses=responses(202, Restore, 404, 409, 422, 503, body=True),
    tags=["restores"],
)
def restore_backup(backup_id: str, request: Annotated[RestoreRequest, Body()]) -> Response[Restore]:
    _new_databases_only(request, f"/v1/backups/{backup_id}/in-place-restores")
    return accepted(root.restore_requests().start(backup_id, request, _caller()))


@router.post(
    "/v1/backups/<backup_id>/in-place-restores",
    summary="Restore a backup over the live databases (confirm: the plan's name, or the"
    " backup's id when its plan is gone); the platform database's safety backup is always taken",
    responses=responses(202, Restore, 404, 409, 422, 503, body=True),
    tags=["restores"],
)
def restore_backup_in_place(
    backup_id: str, request: Annotated[InPlaceRestoreRequest, Body()]
) -> Response[Restore]:
    return accepted(root.restore_requests().start(backup_id, request.as_restore(), _caller()))


@router.post(
    "/v1/plans/<plan_id>/restores",
    summary="Restore the plan's newest backup taken before a time, or the databases as they were"
    " at an instant (pointInTime: a full backup, then the archived binary log replayed)",
    responses=responses(202, Restore, 404, 409, 422, 503, body=True),
    tags=["restores"],
)
def restore_before(
    plan_id: str, request: Annotated[PlanRestoreRequest, Body()]
) -> Response[Restore]:
    _new_databases_only(request, f"/v1/plans/{plan_id}/in-place-restores")
    return accepted(root.restore_requests().start_before(plan_id, request, _caller()))


@router.post(
    "/v1/plans/<plan_id>/in-place-restores",
    summary="Restore over the live databases the plan's newest backup before a time, or the"
    " state at an instant (confirm: the plan's name)",
    responses=responses(202, Restore, 404, 409, 422, 503, body=True),
    tags=["restores"],
)
def restore_before_in_place(
    plan_id: str, request: Annotated[InPlacePlanRestoreRequest, Body()]
) -> Response[Restore]:
    restore = request.as_plan_restore()
    return accepted(root.restore_requests().start_before(plan_id, restore, _caller()))


@router.get(
    "/v1/restores", summary="Restores, newest first", responses=responses(200, ItemList[Restore])
)
def list_restores(limit: Limit = DEFAULT_LIMIT, nextToken: NextToken = None) -> ItemList[Restore]:
    page = root.restore_requests().page(limit, nextToken)
    return ItemList[Restore](items=page.items, nextToken=page.next_token)


@router.get(
    "/v1/restores/<restore_id>",
    summary="One restore: phase, progress, result, warnings",
    responses=responses(200, Restore, 404),
)
def get_restore(restore_id: str) -> Restore:
    return root.restore_requests().get(restore_id)
