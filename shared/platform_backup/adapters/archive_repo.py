"""Point-in-time recovery records in DynamoDB: one partition per plan holding the archive's state,
its segments, the breaks in their history and the guards of scheduled runs (tables.ArchiveItem).

A segment and the state that names it as the newest are written in one transaction, conditional
on the state read: two runs can never both add segment N, and none is ever skipped.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from platform_backup.adapters.dynamo_errors import unless_condition_failure
from platform_backup.adapters.tables import ArchiveItem, transaction_connection
from platform_backup.domain.recovery import ArchiveState, HistoryBreak, Segment, SegmentCopy

STATE = "state"
SEGMENT = "segment#"
BREAK = "break#"
RUN = "run#"
# A run's guard outlives any redelivery of its schedule's event (retries stop within a day).
RUN_GUARD_SECONDS = 2 * 24 * 3600


def _segment_item(sequence: int) -> str:
    return f"{SEGMENT}{sequence:012d}"


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _segment_body(segment: Segment) -> dict[str, Any]:
    body = dataclasses.asdict(segment)
    for name in ("covered_until", "opened_at", "last_event_at", "archived_at"):
        body[name] = _time(body[name])
    body["copies"] = [dataclasses.asdict(c) for c in segment.copies]
    return body


def _segment(body: dict[str, Any]) -> Segment:
    values = dict(body)
    for name in ("covered_until", "opened_at", "last_event_at", "archived_at"):
        values[name] = _parse(values.get(name))
    values["copies"] = tuple(SegmentCopy(**c) for c in values.get("copies", ()))
    return Segment(**values)


def _state_body(state: ArchiveState) -> dict[str, Any]:
    body = dataclasses.asdict(state)
    for name in ("covered_until", "last_run_at"):
        body[name] = _time(body[name])
    return body


def _state(body: dict[str, Any]) -> ArchiveState:
    values = {k: v for k, v in body.items() if k != "version"}
    for name in ("covered_until", "last_run_at"):
        values[name] = _parse(values.get(name))
    return ArchiveState(**values)


class DynamoArchiveRepository:
    def state(self, plan_id: str) -> ArchiveState:
        try:
            item = ArchiveItem.get(plan_id, STATE, consistent_read=True)
        except DoesNotExist:
            return ArchiveState(plan_id=plan_id)
        return dataclasses.replace(_state(item.body or {}), version=int(item.version or 0))

    def save_state(self, previous: ArchiveState, state: ArchiveState) -> ArchiveState | None:
        """Writes ``state`` if the stored one is still ``previous``; the state as stored, or None
        when another writer came first."""
        written = dataclasses.replace(state, version=previous.version + 1)
        try:
            self._state_item(written).save(condition=self._unchanged(previous))
        except PutError as exc:
            unless_condition_failure(exc, f"saving the archive state of plan {previous.plan_id}")
            return None
        return written

    def add_segment(
        self, previous: ArchiveState, segment: Segment, state: ArchiveState
    ) -> ArchiveState | None:
        """Adds ``segment`` and ``state`` together, if the stored state is still ``previous``: the
        state as stored, or None when another run wrote first (then nothing is written)."""
        state = dataclasses.replace(state, version=previous.version + 1)
        try:
            with TransactWrite(connection=transaction_connection(ArchiveItem.Meta.region)) as tx:
                tx.save(
                    ArchiveItem(
                        planId=segment.plan_id,
                        item=_segment_item(segment.sequence),
                        body=_segment_body(segment),
                    ),
                    condition=ArchiveItem.item.does_not_exist(),
                )
                tx.save(self._state_item(state), condition=self._unchanged(previous))
        except TransactWriteError as exc:
            unless_condition_failure(
                exc, f"adding segment {segment.sequence} of plan {segment.plan_id}"
            )
            return None
        return state

    def replace_segment(self, segment: Segment) -> None:
        """Rewrites a stored segment (its copies, or its corrupt mark)."""
        ArchiveItem(
            planId=segment.plan_id,
            item=_segment_item(segment.sequence),
            body=_segment_body(segment),
        ).save(condition=ArchiveItem.item.exists())

    def segments(self, plan_id: str) -> list[Segment]:
        return [
            _segment(item.body or {})
            for item in ArchiveItem.query(
                plan_id, ArchiveItem.item.startswith(SEGMENT), consistent_read=True
            )
        ]

    def remove_segment(self, plan_id: str, sequence: int) -> bool:
        """False when it was gone already (another pruner came first)."""
        try:
            ArchiveItem(planId=plan_id, item=_segment_item(sequence)).delete(
                condition=ArchiveItem.item.exists()
            )
        except DeleteError as exc:
            unless_condition_failure(exc, f"removing segment {sequence} of plan {plan_id}")
            return False
        return True

    def add_break(self, brk: HistoryBreak) -> None:
        ArchiveItem(
            planId=brk.plan_id,
            item=f"{BREAK}{brk.at.isoformat()}#{brk.kind}",
            body={"at": brk.at.isoformat(), "kind": brk.kind, "reason": brk.reason},
        ).save()

    def breaks(self, plan_id: str) -> list[HistoryBreak]:
        return [
            HistoryBreak(
                plan_id=plan_id,
                at=datetime.fromisoformat(body["at"]),
                kind=body["kind"],
                reason=body["reason"],
            )
            for item in ArchiveItem.query(plan_id, ArchiveItem.item.startswith(BREAK))
            if (body := item.body or {})
        ]

    def remove_break(self, brk: HistoryBreak) -> None:
        # Unconditional: deleting an item already gone succeeds, so any error is DynamoDB's.
        try:
            ArchiveItem(planId=brk.plan_id, item=f"{BREAK}{brk.at.isoformat()}#{brk.kind}").delete()
        except DeleteError as exc:
            unless_condition_failure(exc, f"removing a history break of plan {brk.plan_id}")

    def claim_run(self, plan_id: str, scheduled: str, now: float) -> bool:
        """The guard of one scheduled run: True for the first delivery only."""
        try:
            ArchiveItem(
                planId=plan_id, item=f"{RUN}{scheduled}", expiresAt=int(now) + RUN_GUARD_SECONDS
            ).save(condition=ArchiveItem.item.does_not_exist())
        except PutError as exc:
            unless_condition_failure(exc, f"claiming the archive run {scheduled} of plan {plan_id}")
            return False
        return True

    def forget(self, plan_id: str) -> None:
        """Removes a deleted plan's state and guards (segments go through retention)."""
        for item in ArchiveItem.query(plan_id):
            if item.item == STATE or item.item.startswith(RUN):
                item.delete()

    @staticmethod
    def _state_item(state: ArchiveState) -> ArchiveItem:
        body = _state_body(state)
        del body["version"]
        return ArchiveItem(planId=state.plan_id, item=STATE, body=body, version=state.version)

    @staticmethod
    def _unchanged(previous: ArchiveState) -> Any:
        if previous.version == 0:
            return ArchiveItem.item.does_not_exist()
        return ArchiveItem.version == previous.version
