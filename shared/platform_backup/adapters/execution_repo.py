"""Plan executions in DynamoDB, listed newest first through the byPlan / byTime indexes."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import PutError

from platform_backup.adapters.dynamo_errors import unless_condition_failure
from platform_backup.adapters.keys import required_item
from platform_backup.adapters.pagination import decode_token, encode_token
from platform_backup.adapters.tables import KIND_EXECUTION, ExecutionItem, sort_time
from platform_backup.domain.execution import Execution
from platform_backup.errors import NotFound
from platform_backup.services.ports import ExecutionWriteRefused, Page

_BY_PLAN_EXECUTION_KEYS = frozenset({"id", "planId", "startedAt"})
_BY_TIME_EXECUTION_KEYS = frozenset({"id", "kind", "startedAt"})
_SUCCESS_STATUSES = ("succeeded", "partially-succeeded")
# Without it the page would be the limit, one item: one request per failure passed over.
_SUCCESS_PAGE_SIZE = 50


def _execution_item(execution: Execution) -> ExecutionItem:
    return ExecutionItem(
        id=execution.id,
        planId=execution.planId,
        kind=KIND_EXECUTION,
        startedAt=sort_time(execution.startedAt),
        status=execution.status,
        body=execution.model_dump(mode="json"),
    )


class DynamoExecutionRepository:
    def create(self, execution: Execution) -> None:
        """Writes a new execution; ExecutionWriteRefused if one with its id exists (a duplicate
        delivery of the same scheduled time)."""
        try:
            _execution_item(execution).save(condition=ExecutionItem.id.does_not_exist())
        except PutError as exc:
            unless_condition_failure(exc, f"recording execution '{execution.id}'")
            raise ExecutionWriteRefused(execution.id) from exc

    def update(self, execution: Execution) -> None:
        """Writes the running execution's new state; once final, an execution never changes."""
        try:
            _execution_item(execution).save(condition=ExecutionItem.status == "running")
        except PutError as exc:
            unless_condition_failure(exc, f"updating execution '{execution.id}'")
            raise ExecutionWriteRefused(execution.id) from exc

    def get(self, execution_id: str) -> Execution:
        return Execution.model_validate(
            required_item(ExecutionItem, execution_id, "execution").body
        )

    def find(self, execution_id: str) -> Execution | None:
        try:
            return self.get(execution_id)
        except NotFound:
            return None

    def page(
        self, plan_id: str | None, status: str | None, limit: int, token: str | None
    ) -> Page[Execution]:
        condition = ExecutionItem.status == status if status else None
        if plan_id:
            key = decode_token(token, _BY_PLAN_EXECUTION_KEYS)
            result = ExecutionItem.byPlan.query(
                plan_id,
                scan_index_forward=False,
                limit=limit,
                last_evaluated_key=key,
                filter_condition=condition,
            )
        else:
            key = decode_token(token, _BY_TIME_EXECUTION_KEYS)
            result = ExecutionItem.byTime.query(
                KIND_EXECUTION,
                scan_index_forward=False,
                limit=limit,
                last_evaluated_key=key,
                filter_condition=condition,
            )
        items = [Execution.model_validate(item.body) for item in result]
        return Page(items=items, next_token=encode_token(result.last_evaluated_key))

    def last_success(self, plan_id: str) -> Execution | None:
        """The plan's newest succeeded (or partially succeeded) execution, read newest first
        through the byPlan index until the first one: the failures since are all it passes."""
        for item in ExecutionItem.byPlan.query(
            plan_id,
            scan_index_forward=False,
            filter_condition=ExecutionItem.status.is_in(*_SUCCESS_STATUSES),
            limit=1,
            page_size=_SUCCESS_PAGE_SIZE,
        ):
            return Execution.model_validate(item.body)
        return None

    def running_since(self, since: datetime) -> list[Execution]:
        """Running executions started at or after ``since``: the byTime index's range, filtered."""
        return [
            Execution.model_validate(item.body)
            for item in ExecutionItem.byTime.query(
                KIND_EXECUTION,
                ExecutionItem.startedAt >= sort_time(since),
                filter_condition=ExecutionItem.status == "running",
            )
        ]
