"""Plan executions (with live progress) and the backups they made."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from platform_backup.api.models import ItemList, accepted, no_content, responses
from platform_backup.api.params import DEFAULT_LIMIT, Limit, NextToken
from platform_backup.composition import api as root
from platform_backup.domain.backup import Backup
from platform_backup.domain.execution import Execution

router = Router()

StatusFilter = Annotated[
    Literal["running", "succeeded", "partially-succeeded", "failed", "skipped"] | None,
    Query(description="only executions with this status"),
]
PlanFilter = Annotated[
    str | None, Query(min_length=1, max_length=64, description="only this plan's")
]


def _caller() -> str | None:
    """Who asked (API Gateway's IAM identity of the signed request)."""
    event: APIGatewayProxyEvent = router.current_event  # type: ignore[assignment]
    identity = event.request_context.identity
    return identity.user_arn or identity.caller


@router.post(
    "/v1/plans/<plan_id>/executions",
    summary="Back up now",
    responses=responses(202, Execution, 404, 503),
    tags=["executions"],
)
def run_now(plan_id: str) -> Response[Execution]:
    return accepted(root.run_now().start(plan_id, _caller()))


@router.get(
    "/v1/executions",
    summary="Plan executions, newest first",
    responses=responses(200, ItemList[Execution]),
)
def list_executions(
    planId: PlanFilter = None,
    status: StatusFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    nextToken: NextToken = None,
) -> ItemList[Execution]:
    page = root.backup_queries().executions(planId, status, limit, nextToken)
    return ItemList[Execution](items=page.items, nextToken=page.next_token)


@router.get(
    "/v1/executions/<execution_id>",
    summary="One execution, with its progress while it runs",
    responses=responses(200, Execution, 404),
)
def get_execution(execution_id: str) -> Execution:
    return root.backup_queries().get_execution(execution_id)


@router.get(
    "/v1/backups", summary="Backups, newest first", responses=responses(200, ItemList[Backup])
)
def list_backups(
    planId: PlanFilter = None, limit: Limit = DEFAULT_LIMIT, nextToken: NextToken = None
) -> ItemList[Backup]:
    page = root.backup_queries().backups(planId, limit, nextToken)
    return ItemList[Backup](items=page.items, nextToken=page.next_token)


@router.get(
    "/v1/backups/<backup_id>",
    summary="One backup and its copies",
    responses=responses(200, Backup, 404),
)
def get_backup(backup_id: str) -> Backup:
    return root.backup_queries().get_backup(backup_id)


@router.delete(
    "/v1/backups/<backup_id>",
    summary=(
        "Delete a backup and every copy of it (the newest successful one only with force; "
        "none whose remote copy is under Object Lock: 409 naming the date)"
    ),
    responses=responses(204, None, 404, 409),
)
def delete_backup(
    backup_id: str,
    force: Annotated[bool, Query(description="also the plan's newest successful backup")] = False,
) -> Response[None]:
    root.backup_deletes().delete_backup(backup_id, force)
    return no_content()
