"""Restores of backups: started here (the plan's lease is taken in the call, so a busy plan is
a synchronous 409), then worked through by the restore workflow; watched through GET."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from platform_backup.api.models import ItemList, accepted, responses
from platform_backup.api.params import DEFAULT_LIMIT, Limit, NextToken
from platform_backup.composition import api as root
from platform_backup.domain.restore import PlanRestoreRequest, Restore, RestoreRequest

router = Router()


def _caller() -> str | None:
    """Who asked (API Gateway's IAM identity of the signed request)."""
    event: APIGatewayProxyEvent = router.current_event  # type: ignore[assignment]
    identity = event.request_context.identity
    return identity.user_arn or identity.caller


@router.post(
    "/v1/backups/<backup_id>/restores",
    summary="Restore a backup into new databases, or in place (with confirm)",
    responses=responses(202, Restore, 404, 409, 422, 503, body=True),
    tags=["restores"],
)
def restore_backup(backup_id: str, request: Annotated[RestoreRequest, Body()]) -> Response[Restore]:
    return accepted(root.restore_requests().start(backup_id, request, _caller()))


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
    return accepted(root.restore_requests().start_before(plan_id, request, _caller()))


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
