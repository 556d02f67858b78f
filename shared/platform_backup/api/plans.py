"""The backup plan."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from platform_backup.api.models import ItemList, NextRun, NextRuns, created, no_content, responses
from platform_backup.api.params import DEFAULT_LIMIT, Limit, NextToken
from platform_backup.composition import api as root
from platform_backup.domain.plan import PlanSpec, PlanState, PlanView

router = Router()


@router.post(
    "/v1/plans",
    summary="Create the backup plan of the platform database",
    responses=responses(201, PlanView, 409, 422, 503, body=True),
    tags=["plans"],
)
def create_plan(spec: Annotated[PlanSpec, Body()]) -> Response[PlanView]:
    return created(root.plans().create(spec))


@router.get("/v1/plans", summary="List backup plans", responses=responses(200, ItemList[PlanView]))
def list_plans(limit: Limit = DEFAULT_LIMIT, nextToken: NextToken = None) -> ItemList[PlanView]:
    page = root.plans().page(limit, nextToken)
    return ItemList[PlanView](items=page.items, nextToken=page.next_token)


@router.get("/v1/plans/<plan_id>", summary="Show a plan", responses=responses(200, PlanView, 404))
def get_plan(plan_id: str) -> PlanView:
    return root.plans().get(plan_id)


@router.put(
    "/v1/plans/<plan_id>",
    summary="Replace a plan (same body as create)",
    responses=responses(200, PlanView, 404, 409, 422, 503, body=True),
)
def replace_plan(plan_id: str, spec: Annotated[PlanSpec, Body()]) -> PlanView:
    return root.plans().replace(plan_id, spec)


@router.delete(
    "/v1/plans/<plan_id>",
    summary="Delete a plan and its schedules; its backups stay",
    responses=responses(204, None, 404, 409, 503),
)
def delete_plan(plan_id: str) -> Response[None]:
    root.plans().delete(plan_id)
    return no_content()


@router.post(
    "/v1/plans/<plan_id>/pause",
    summary="Pause the plan's schedule",
    responses=responses(200, PlanView, 404, 409, 503),
)
def pause_plan(plan_id: str) -> PlanView:
    return root.plans().set_state(plan_id, PlanState.PAUSED)


@router.post(
    "/v1/plans/<plan_id>/resume",
    summary="Resume the plan's schedule",
    responses=responses(200, PlanView, 404, 409, 503),
)
def resume_plan(plan_id: str) -> PlanView:
    return root.plans().set_state(plan_id, PlanState.ENABLED)


@router.get(
    "/v1/plans/<plan_id>/next-runs",
    summary="The plan's next run times, in its timezone and in UTC",
    responses=responses(200, NextRuns, 404),
)
def next_runs(
    plan_id: str, count: Annotated[int, Query(ge=1, le=100, description="how many")] = 3
) -> NextRuns:
    runs = root.plans().next_runs(plan_id, count)
    return NextRuns(
        runs=[
            NextRun(
                local=run.isoformat(),
                utc=run.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            )
            for run in runs
        ]
    )
