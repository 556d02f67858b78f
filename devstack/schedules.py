"""The local scheduler: fires what moto holds at its times, since moto itself never does.

Two kinds of timers: EventBridge Scheduler schedules (the plans' schedules) and EventBridge rules
with a ScheduleExpression (the template's periodic functions). Each is read as the real service
would read it (expression, timezone, StartDate, EndDate, state, target), never the plan, so a
schedule the code writes wrongly misfires locally too. Each due time fires once; a timer seen for
the first time, or changed, fires from then on and never for times already past.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.domain.schedule import cron_times

log = logging.getLogger("devstack.schedules")

Clock = Callable[[], datetime]
# More fire times than this within one tick means the loop was stalled; the rest are dropped.
_MAX_FIRES_PER_TICK = 60
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Timer:
    """What the loop needs of a schedule or a scheduled rule."""

    key: str
    definition: dict[str, Any]  # any change to it restarts the timer from now
    expression: str
    timezone: str
    enabled: bool
    fire: Callable[[datetime], None]
    start: datetime | None = None
    end: datetime | None = None
    changed_at: datetime | None = None


@dataclass
class _Tracked:
    fingerprint: str
    cursor: datetime  # every fire time up to here has been dealt with
    first_seen: datetime  # anchors rate(...) timers that have no StartDate


class ScheduleLoop:
    def __init__(
        self,
        scheduler: Any,
        events: Any,
        lambda_client: Any,
        sfn: Any,
        sqs: Any,
        clock: Clock = utc_now,
        interval_seconds: float = 1.0,
    ) -> None:
        self.scheduler = scheduler
        self.events = events
        self.lambda_client = lambda_client
        self.sfn = sfn
        self.sqs = sqs
        self.clock = clock
        self.interval = interval_seconds
        self._tracked: dict[str, _Tracked] = {}
        self._stop = threading.Event()
        self._tick_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="schedule-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except (BotoCoreError, ClientError):
                log.exception("schedule loop: cannot read the schedules")

    def tick(self) -> None:
        """One pass: fire every timer whose due times came since the last pass."""
        # The loop's thread and a caller (a test with its own clock) may tick at once.
        with self._tick_lock:
            now = self.clock()
            seen = set()
            for timer in (*self._schedules(), *self._rules()):
                seen.add(timer.key)
                self._advance(timer, now)
            for key in set(self._tracked) - seen:
                del self._tracked[key]

    def _advance(self, timer: Timer, now: datetime) -> None:
        fingerprint = json.dumps(timer.definition, default=str, sort_keys=True)
        tracked = self._tracked.get(timer.key)
        if tracked is None or tracked.fingerprint != fingerprint:
            tracked = _Tracked(fingerprint, self._starting_cursor(timer, now), now)
            self._tracked[timer.key] = tracked
        if timer.enabled:
            for fire_time in self._due(timer, tracked, now):
                log.info("%s fires for %s", timer.key, iso_utc(fire_time))
                timer.fire(fire_time)
        tracked.cursor = now

    def _starting_cursor(self, timer: Timer, now: datetime) -> datetime:
        # The loop sees a change up to one interval late: a time due in between still fires,
        # unless it came before the change itself.
        earliest = now - timedelta(seconds=self.interval)
        if timer.changed_at is not None and earliest < timer.changed_at <= now:
            return timer.changed_at
        return earliest

    def _due(self, timer: Timer, tracked: _Tracked, until: datetime) -> list[datetime]:
        after = tracked.cursor
        since = max(after, timer.start) if timer.start else after
        candidates = self._candidates(timer, since, timer.start or tracked.first_seen)
        return [
            moment
            for moment in candidates
            if after < moment <= until and (timer.end is None or moment <= timer.end)
        ]

    def _candidates(self, timer: Timer, since: datetime, anchor: datetime) -> list[datetime]:
        expression = timer.expression.strip()
        if expression.startswith("cron("):
            try:
                return cron_times(expression, timer.timezone, since, _MAX_FIRES_PER_TICK)
            except ValueError as exc:
                log.warning("%s: %s", timer.key, exc)
                return []
        if at := _AT.match(expression):
            return [datetime.fromisoformat(at.group(1)).replace(tzinfo=ZoneInfo(timer.timezone))]
        if rate := _RATE.match(expression):
            period = timedelta(seconds=int(rate.group(1)) * _RATE_UNITS[rate.group(2).rstrip("s")])
            # A StartDate is itself a fire time; a timer's first sight is not.
            first = 0 if timer.start else 1
            elapsed = max(first, int((since - anchor) / period))
            return [anchor + period * (elapsed + k) for k in range(3)]
        log.warning("%s: %r is not supported locally", timer.key, expression)
        return []

    # -- EventBridge Scheduler ------------------------------------------------------------

    def _schedules(self) -> Iterator[Timer]:
        for page in self.scheduler.get_paginator("list_schedules").paginate():
            for summary in page["Schedules"]:
                schedule = self.scheduler.get_schedule(
                    Name=summary["Name"], GroupName=summary["GroupName"]
                )
                schedule.pop("ResponseMetadata", None)
                yield Timer(
                    key=f"schedule {schedule['GroupName']}/{schedule['Name']}",
                    definition=schedule,
                    expression=schedule["ScheduleExpression"],
                    timezone=schedule.get("ScheduleExpressionTimezone") or "UTC",
                    enabled=schedule.get("State", "ENABLED") != "DISABLED",
                    fire=functools.partial(self._fire_schedule, schedule),
                    start=schedule.get("StartDate"),
                    end=schedule.get("EndDate"),
                    changed_at=schedule.get("LastModificationDate"),
                )

    def _fire_schedule(self, schedule: dict[str, Any], fire_time: datetime) -> None:
        target = schedule["Target"]
        payload = _render_input(target.get("Input") or "{}", schedule["Arn"], fire_time)
        try:
            self._deliver(target["Arn"], payload)
        except ClientError as exc:
            log.error("schedule %s: target invocation failed: %s", schedule["Name"], exc)
            dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
            if dlq_arn:
                queue_url = self.sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[-1])
                self.sqs.send_message(QueueUrl=queue_url["QueueUrl"], MessageBody=payload)
            return
        if schedule.get("ActionAfterCompletion") == "DELETE" and _AT.match(
            schedule["ScheduleExpression"].strip()
        ):
            self.scheduler.delete_schedule(Name=schedule["Name"], GroupName=schedule["GroupName"])

    # -- EventBridge scheduled rules ------------------------------------------------------

    def _rules(self) -> Iterator[Timer]:
        for bus in self.events.list_event_buses()["EventBuses"]:
            for page in self.events.get_paginator("list_rules").paginate(EventBusName=bus["Name"]):
                for rule in page["Rules"]:
                    if not rule.get("ScheduleExpression"):
                        continue
                    targets = self.events.list_targets_by_rule(
                        Rule=rule["Name"], EventBusName=bus["Name"]
                    )["Targets"]
                    yield Timer(
                        key=f"rule {bus['Name']}/{rule['Name']}",
                        definition={"rule": rule, "targets": targets},
                        expression=rule["ScheduleExpression"],
                        timezone="UTC",
                        enabled=rule.get("State") == "ENABLED",
                        fire=functools.partial(self._fire_rule, rule, targets),
                    )

    def _fire_rule(self, rule: dict[str, Any], targets: list[Any], fire_time: datetime) -> None:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": rule["Arn"].split(":")[4],
            "time": iso_utc(fire_time),
            "region": rule["Arn"].split(":")[3],
            "resources": [rule["Arn"]],
            "detail": {},
        }
        for target in targets:
            try:
                self._deliver(target["Arn"], target.get("Input") or json.dumps(event))
            except ClientError as exc:
                log.error("rule %s: target %s failed: %s", rule["Name"], target["Arn"], exc)

    def _deliver(self, arn: str, payload: str) -> None:
        # Both services invoke Lambda asynchronously.
        if ":lambda:" in arn:
            self.lambda_client.invoke(FunctionName=arn, InvocationType="Event", Payload=payload)
        elif ":states:" in arn:
            self.sfn.start_execution(stateMachineArn=arn, input=payload)
        else:
            log.warning("target %s is not supported locally", arn)


def _render_input(template: str, schedule_arn: str, fire_time: datetime) -> str:
    """The target input with the scheduler's context attributes filled in."""
    values = {
        "<aws.scheduler.scheduled-time>": iso_utc(fire_time),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
        "<aws.scheduler.schedule-arn>": schedule_arn,
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template
