"""When the backup plan runs: the EventBridge Scheduler expression of a policy, and its run times.

Run times are computed one way only: ``build_cron`` turns the policy into the expression the
scheduler is given, and ``cron_times`` evaluates such an expression as the scheduler does. The
local stack's scheduler loop uses the same evaluator on the schedules moto holds, so what the API
announces (next runs) and what fires are the same times.

Daylight saving follows EventBridge Scheduler: a local time skipped by the spring-forward change
does not fire that day; a local time repeated by the fall-back change fires once, at its first
occurrence.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platform_backup.domain.plan import Cycle, Policy

# The scheduler's own day order (1=SUN..7=SAT): one set of weekdays gives one expression, so an
# unchanged plan never looks like a changed schedule.
_AWS_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_EXPRESSION = re.compile(r"^cron\((?P<fields>[^()]*)\)$")
# AWS's extensions (last day, nearest weekday, nth weekday) that this evaluator does not support.
_EXTENSIONS = re.compile(r"^(?:\d*L(?:-\d+)?|\d*W|LW|.*#.*)$")
# Give up after this many candidate days (days in an allowed year and month) without a match: an
# expression such as cron(0 0 31 2 ? *) never fires, and the search must still end. Years and
# months the expression excludes are jumped over, not counted, so cron(0 0 1 1 ? 2040) is found.
_GIVE_UP_AFTER_DAYS = 5 * 366


@dataclass(frozen=True)
class _Field:
    label: str
    low: int
    high: int
    names: Mapping[str, int]
    steps: bool = True


_MINUTES = _Field("minutes", 0, 59, {})
_HOURS = _Field("hours", 0, 23, {})
_DAY_OF_MONTH = _Field("day-of-month", 1, 31, {})
_MONTH = _Field("month", 1, 12, {name: i for i, name in enumerate(_MONTHS, start=1)})
_DAY_OF_WEEK = _Field(
    "day-of-week", 1, 7, {name: i for i, name in enumerate(_AWS_WEEKDAYS, start=1)}, steps=False
)
_YEAR = _Field("year", 1970, 2199, {})


@dataclass(frozen=True)
class CronExpression:
    """A parsed ``cron(minutes hours day-of-month month day-of-week year)`` expression."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int] | None  # None: "?"
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # AWS numbering, 1=SUN..7=SAT; None: "?"
    years: tuple[int, ...]

    @classmethod
    def parse(cls, expr: str) -> CronExpression:
        """Parse an EventBridge Scheduler cron expression; ValueError says what is wrong."""
        match = _EXPRESSION.match(expr.strip())
        if match is None:
            raise ValueError(
                f"'{expr}' is not a cron expression: use cron(min hour dom month dow year)"
            )
        texts = match["fields"].split()
        if len(texts) != 6:
            raise ValueError(f"'{expr}' has {len(texts)} fields; a cron expression has 6")
        days_of_month = _parse_day_field(texts[2], _DAY_OF_MONTH)
        days_of_week = _parse_day_field(texts[4], _DAY_OF_WEEK)
        if (days_of_month is None) == (days_of_week is None):
            raise ValueError(f"'{expr}': exactly one of day-of-month and day-of-week must be '?'")
        return cls(
            minutes=tuple(sorted(_parse_field(texts[0], _MINUTES))),
            hours=tuple(sorted(_parse_field(texts[1], _HOURS))),
            days_of_month=days_of_month,
            months=_parse_field(texts[3], _MONTH),
            days_of_week=days_of_week,
            years=tuple(sorted(_parse_field(texts[5], _YEAR))),
        )

    def fire_times(self, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire instants at or after ``start``, in ``zone``."""
        _require_aware(start, "start")
        start_utc = start.astimezone(UTC)
        fires: list[datetime] = []
        if count <= 0:
            return fires
        for day in self._matching_days(start_utc.astimezone(zone).date()):
            for hour in self.hours:
                for minute in self.minutes:
                    fire = _local_instant(day, hour, minute, zone)
                    if fire is None or fire.astimezone(UTC) < start_utc:
                        continue
                    fires.append(fire)
                    if len(fires) == count:
                        return fires
        return fires

    def _matching_days(self, first: date) -> Iterator[date]:
        day, idle = first, 0
        while idle < _GIVE_UP_AFTER_DAYS:
            if day.year not in self.years:
                later = bisect.bisect_right(self.years, day.year)
                if later == len(self.years):
                    return
                day = date(self.years[later], 1, 1)
            elif day.month not in self.months:
                day = (
                    date(day.year + 1, 1, 1)
                    if day.month == 12
                    else day.replace(month=day.month + 1, day=1)
                )
            else:
                if self._day_matches(day):
                    idle = 0
                    yield day
                else:
                    idle += 1
                day += timedelta(days=1)

    def _day_matches(self, day: date) -> bool:
        if self.days_of_week is not None:
            return day.isoweekday() % 7 + 1 in self.days_of_week
        return self.days_of_month is not None and day.day in self.days_of_month


def _parse_day_field(text: str, field: _Field) -> frozenset[int] | None:
    return None if text == "?" else _parse_field(text, field)


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for element in text.upper().split(","):
        values.update(_parse_element(element, field))
    return frozenset(values)


def _parse_element(element: str, field: _Field) -> range:
    if "?" in element:
        raise ValueError(
            f"{field.label}: '?' stands alone, and only in day-of-month or day-of-week"
        )
    if _EXTENSIONS.match(element):
        raise ValueError(f"{field.label}: '{element}': the L, W and # wildcards are not supported")
    base, slash, step_text = element.partition("/")
    step = 1
    if slash:
        if not field.steps:
            raise ValueError(f"{field.label}: '{element}': '/' is not allowed in this field")
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValueError(f"{field.label}: '{element}': the step must be a whole number >= 1")
        step = int(step_text)
    if base == "*":
        low, high = field.low, field.high
    elif "-" in base:
        first, _, last = base.partition("-")
        low, high = _value(first, field), _value(last, field)
        if low > high:
            raise ValueError(f"{field.label}: '{element}': a range must run from low to high")
    else:
        low = _value(base, field)
        # "a/n" means from a to the end of the field, every n.
        high = field.high if slash else low
    return range(low, high + 1, step)


def _value(text: str, field: _Field) -> int:
    if text in field.names:
        return field.names[text]
    if not text.isdigit():
        raise ValueError(f"{field.label}: '{text}' is not a value of this field")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.label}: {value} is out of range {field.low}-{field.high}")
    return value


def _local_instant(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime | None:
    """The instant of a wall-clock time, or None when the spring-forward change skips it."""
    wall = datetime(day.year, day.month, day.day, hour, minute)
    # fold=0 (the default) picks the first occurrence of a wall time the fall-back change repeats.
    local = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return local if local.replace(tzinfo=None) == wall else None


def _require_aware(moment: datetime, name: str) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with an offset), not {moment}")


def cron_times(expr: str, timezone: str, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` times ``expr``, read in ``timezone``, fires at or after ``start``.

    Aware datetimes in ``timezone``. Fewer than ``count`` when the expression stops firing (its
    last year passed) or finds no match within the search bound.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{timezone}' is not an IANA time zone") from None
    return CronExpression.parse(expr).fire_times(zone, start, count)


def build_cron(policy: Policy) -> str:
    """The EventBridge Scheduler expression of the policy, read in ``policy.timezone``."""
    if policy.cycle == Cycle.HOURLY.value:
        minute = policy.startTime.astimezone(policy.zone).minute
        return f"cron({minute} * * * ? *)"
    if policy.executionTime is None:
        raise ValueError(f"a {policy.cycle} policy needs an executionTime")
    hour, minute = (int(part) for part in policy.executionTime.split(":"))
    if policy.cycle == Cycle.DAILY.value:
        return f"cron({minute} {hour} * * ? *)"
    if not policy.weekdays:
        raise ValueError("a weekly policy needs weekdays")
    days = ",".join(day for day in _AWS_WEEKDAYS if day in policy.weekdays)
    return f"cron({minute} {hour} ? * {days} *)"


def next_runs(policy: Policy, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` runs of the policy from now (or from its start time, if later)."""
    _require_aware(now, "now")
    return cron_times(build_cron(policy), policy.timezone, max(now, policy.startTime), count)


def schedule_start_date(policy: Policy, now: datetime) -> datetime | None:
    """The StartDate for the scheduler: the start time while it is ahead, else None.

    EventBridge Scheduler refuses a StartDate more than a few minutes past, so a start time that
    has come is left out and the schedule fires from now on. The start time is given exactly, not
    a minute early: the scheduler documents that invocations occur "on, or after, the StartDate",
    so a run at the start time itself still fires, and an earlier StartDate could let a match
    before the start time (start 10:15:30, cron minute 15) fire.
    """
    _require_aware(now, "now")
    return policy.startTime.astimezone(UTC) if policy.startTime > now else None
