"""Use cases of the backup plan. Every change is written, then the plan's schedules are brought
in line; if that fails, the plan is put back as it was and the request fails, so the plan and
its schedules never disagree for longer than a request (the hourly reconcile repairs the rest).

A write that turns point-in-time recovery on (or changes its interval) first asks the server,
through the archiver, whether its binary log can be archived: a problem is a 422 naming the
server setting, no answer a 503; nothing is stored in either case."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from platform_backup.domain.plan import (
    Plan,
    PlanSpec,
    PlanState,
    PlanStorage,
    PlanView,
    StorageUse,
    check_plan_rules,
)
from platform_backup.domain.point_in_time import PointInTime
from platform_backup.domain.schedule import next_runs
from platform_backup.errors import DependencyFailed, FieldError, Unprocessable
from platform_backup.observability import logger
from platform_backup.services.ports import (
    BinlogServerCheck,
    Page,
    PlanRepository,
    RetentionTrigger,
    ScheduleSync,
    StorageRepository,
)

PITR_FIELD = "pointInTime.enabled"


class PlanService:
    def __init__(
        self,
        plans: PlanRepository,
        storages: StorageRepository,
        schedules: ScheduleSync,
        clock: Callable[[], datetime],
        server_check: BinlogServerCheck | None = None,
        retention: RetentionTrigger | None = None,
    ) -> None:
        self._plans = plans
        self._storages = storages
        self._schedules = schedules
        self._clock = clock
        self._server_check = server_check
        self._retention = retention

    def _check_storages(self, spec: PlanSpec) -> None:
        errors: list[FieldError] = []
        for index, storage_id in enumerate(spec.localStorageIds):
            storage = self._storages.find(storage_id)
            field = f"localStorageIds.{index}"
            if storage is None:
                errors.append(FieldError(field, f"no storage '{storage_id}': register it first"))
            elif storage.role != "local":
                errors.append(FieldError(field, f"storage '{storage.name}' is not local"))
        if spec.remoteSync and spec.remoteStorageId:
            storage = self._storages.find(spec.remoteStorageId)
            if storage is None:
                errors.append(
                    FieldError(
                        "remoteStorageId",
                        f"no storage '{spec.remoteStorageId}': register the remote storage first",
                    )
                )
            elif storage.role != "remote":
                errors.append(
                    FieldError("remoteStorageId", f"storage '{storage.name}' is not remote")
                )
        if errors:
            raise Unprocessable("; ".join(f"{e.field}: {e.message}" for e in errors), errors)

    def _view(self, plan: Plan) -> PlanView:
        local_uses: tuple[StorageUse, ...] = ("primary", "failover")
        uses = list(zip(plan.localStorageIds, local_uses, strict=False))
        if plan.remoteSync and plan.remoteStorageId:
            uses.append((plan.remoteStorageId, "remote"))
        named: list[PlanStorage] = []
        for storage_id, use in uses:
            storage = self._storages.find(storage_id)
            if storage is None:
                named.append(PlanStorage(id=storage_id, use=use, name=None))
                continue
            named.append(
                PlanStorage(
                    id=storage_id,
                    use=use,
                    name=storage.name,
                    role=storage.role,
                    bucket=storage.bucket,
                    capacityBytes=storage.capacityBytes,
                    usedBytes=storage.usedBytes,
                    availableBytes=storage.availableBytes,
                )
            )
        return PlanView(**plan.model_dump(), storages=named)

    def _validate(self, spec: PlanSpec, before: PointInTime | None = None) -> None:
        check_plan_rules(spec)
        self._check_storages(spec)
        self._check_server(spec.pointInTime, before)

    def _check_server(self, wanted: PointInTime | None, before: PointInTime | None) -> None:
        """Turning archiving off, or leaving it as it was, needs no look at the server."""
        if wanted is None or not wanted.enabled or self._server_check is None:
            return
        if before is not None and before == wanted:
            return
        problems = self._server_check.problems(wanted.archiveIntervalMinutes)
        if not problems:
            return
        errors = [
            FieldError(PITR_FIELD, f"the server's {p.setting}: {p.message}") for p in problems
        ]
        summary = "; ".join(e.message for e in errors)
        raise Unprocessable(
            f"{PITR_FIELD}: the server's binary log cannot be archived as it is set: {summary}",
            errors,
        )

    def _sync_or_undo(self, plan_id: str, undo: Callable[[], None]) -> None:
        try:
            self._schedules.reconcile(plan_id)
        except DependencyFailed:
            logger.exception("schedule sync failed; undoing the plan change", plan_id=plan_id)
            undo()
            try:
                self._schedules.reconcile(plan_id)
            except DependencyFailed:
                logger.exception("schedule still out of line; the reconcile will repair it")
            raise

    def create(self, spec: PlanSpec) -> Plan:
        self._validate(spec)
        now = self._clock()
        plan = Plan(
            id=uuid.uuid4().hex,
            state=PlanState.ENABLED,
            createdAt=now,
            updatedAt=now,
            **spec.model_dump(),
        )
        self._plans.create(plan)
        self._sync_or_undo(plan.id, lambda: self._plans.delete(plan))
        return self._view(plan)

    def get(self, plan_id: str) -> PlanView:
        return self._view(self._plans.get(plan_id))

    def page(self, limit: int, token: str | None) -> Page[PlanView]:
        page = self._plans.page(limit, token)
        return Page([self._view(plan) for plan in page.items], page.next_token)

    def _change(self, old: Plan, new: Plan) -> PlanView:
        self._plans.replace(old, new)
        undo = old.model_copy(update={"revision": new.revision + 1, "updatedAt": self._clock()})
        self._sync_or_undo(new.id, lambda: self._plans.replace(new, undo))
        return self._view(new)

    def replace(self, plan_id: str, spec: PlanSpec) -> PlanView:
        old = self._plans.get(plan_id)
        self._validate(spec, old.pointInTime)
        new = Plan(
            id=old.id,
            state=old.state,
            createdAt=old.createdAt,
            updatedAt=self._clock(),
            revision=old.revision + 1,
            **spec.model_dump(),
        )
        view = self._change(old, new)
        if new.retention != old.retention:
            self._prune_now(new.id)
        return view

    def _prune_now(self, plan_id: str) -> None:
        """A changed policy applies now, not at the next successful backup. The plan is saved
        either way: if retention cannot be started, its hourly pass applies the policy."""
        if self._retention is None:
            return
        try:
            self._retention.start(plan_id)
        except DependencyFailed:
            logger.exception("retention not started; its hourly pass applies it", plan_id=plan_id)

    def set_state(self, plan_id: str, state: PlanState) -> PlanView:
        old = self._plans.get(plan_id)
        if old.state == state.value:
            return self._view(old)
        new = old.model_copy(
            update={"state": state.value, "updatedAt": self._clock(), "revision": old.revision + 1}
        )
        return self._change(old, new)

    def delete(self, plan_id: str) -> None:
        """Removes the plan and its schedules; its backups stay listed and restorable."""
        plan = self._plans.get(plan_id)
        self._plans.delete(plan)
        self._sync_or_undo(plan_id, lambda: self._plans.create(plan))

    def next_runs(self, plan_id: str, count: int) -> list[datetime]:
        plan = self._plans.get(plan_id)
        if plan.state == PlanState.PAUSED.value:
            return []  # a paused plan runs nothing until it is resumed
        return next_runs(plan.policy, self._clock(), count)
