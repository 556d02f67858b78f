"""The plan's schedule: the expression given to EventBridge Scheduler and the times it fires.

Run times are compared as ISO strings with their offsets, so a run at the wrong side of a
daylight-saving change (same wall time, other offset) fails the test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from platform_backup.domain.plan import Policy
from platform_backup.domain.schedule import (
    CronExpression,
    build_cron,
    cron_times,
    next_runs,
    schedule_start_date,
)


def _policy(**fields: Any) -> Policy:
    return Policy.model_validate(fields)


def _iso(runs: list[datetime]) -> list[str]:
    return [run.isoformat() for run in runs]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


CONTRACT_POLICY = {
    "cycle": "weekly",
    "weekdays": ["SUN", "TUE"],
    "executionTime": "00:00",
    "startTime": "2026-12-01T00:00:00+08:00",
    "timezone": "Asia/Shanghai",
}


# --- build_cron -------------------------------------------------------------------------------


def test_weekly_expression_of_the_contract_example() -> None:
    # Given the contract's weekly plan, Sunday and Tuesday at 00:00
    policy = _policy(**CONTRACT_POLICY)
    # When it is turned into a scheduler expression
    expression = build_cron(policy)
    # Then it fires at minute 0, hour 0, on those two days
    assert expression == "cron(0 0 ? * SUN,TUE *)"


def test_weekly_expression_lists_days_in_the_schedulers_order_whatever_the_input_order() -> None:
    # Given the same weekdays in two different orders
    first = _policy(**{**CONTRACT_POLICY, "weekdays": ["SAT", "TUE", "SUN", "MON"]})
    second = _policy(**{**CONTRACT_POLICY, "weekdays": ["MON", "SUN", "SAT", "TUE"]})
    # When both are turned into expressions
    # Then both read SUN..SAT, so an unchanged plan gives an unchanged schedule
    assert build_cron(first) == build_cron(second) == "cron(0 0 ? * SUN,MON,TUE,SAT *)"


def test_daily_expression() -> None:
    # Given a daily plan at 00:30
    policy = _policy(cycle="daily", executionTime="00:30", startTime="2026-01-01T00:00:00Z")
    # When / Then
    assert build_cron(policy) == "cron(30 0 * * ? *)"


def test_hourly_expression_uses_the_start_minute_read_in_the_plan_timezone() -> None:
    # Given an hourly plan starting at 10:00 UTC, which is 15:30 in Kolkata (UTC+05:30)
    policy = _policy(cycle="hourly", startTime="2026-01-01T10:00:00Z", timezone="Asia/Kolkata")
    # When it is turned into an expression
    # Then it runs at minute 30 of every Kolkata hour, not minute 0
    assert build_cron(policy) == "cron(30 * * * ? *)"


# --- next_runs --------------------------------------------------------------------------------


def test_contract_example_runs_on_sunday_and_tuesday_midnights_in_shanghai() -> None:
    # Given the contract's plan, asked before it starts
    policy = _policy(**CONTRACT_POLICY)
    # When the next four runs are computed
    runs = next_runs(policy, _at("2026-11-20T09:00:00+00:00"), 4)
    # Then the start time (a Tuesday midnight) is the first run, then Sun, Tue, Sun midnights
    assert _iso(runs) == [
        "2026-12-01T00:00:00+08:00",
        "2026-12-06T00:00:00+08:00",
        "2026-12-08T00:00:00+08:00",
        "2026-12-13T00:00:00+08:00",
    ]
    assert runs[0].astimezone(UTC) == _at("2026-11-30T16:00:00+00:00")


def test_start_time_just_after_a_matching_time_skips_it() -> None:
    # Given the contract's plan starting one second after Tuesday midnight
    policy = _policy(**{**CONTRACT_POLICY, "startTime": "2026-12-01T00:00:01+08:00"})
    # When the next run is computed before the start
    runs = next_runs(policy, _at("2026-11-20T00:00:00+00:00"), 1)
    # Then the first run is the following Sunday
    assert _iso(runs) == ["2026-12-06T00:00:00+08:00"]


def test_start_time_in_the_past_runs_from_now() -> None:
    # Given a daily 00:30 plan that started long ago
    policy = _policy(cycle="daily", executionTime="00:30", startTime="2020-01-01T00:00:00Z")
    # When the next runs are computed at 2026-05-10 12:00 UTC
    runs = next_runs(policy, _at("2026-05-10T12:00:00+00:00"), 2)
    # Then they are the coming 00:30s, not the ones since 2020
    assert _iso(runs) == ["2026-05-11T00:30:00+00:00", "2026-05-12T00:30:00+00:00"]


def test_daily_in_a_half_hour_offset_zone() -> None:
    # Given a daily 00:30 plan in Kolkata (UTC+05:30) starting in the future
    policy = _policy(
        cycle="daily",
        executionTime="00:30",
        startTime="2026-06-01T12:00:00+05:30",
        timezone="Asia/Kolkata",
    )
    # When the next runs are computed
    runs = next_runs(policy, _at("2026-05-01T00:00:00+00:00"), 2)
    # Then they are Kolkata's 00:30, which is 19:00 UTC the day before
    assert _iso(runs) == ["2026-06-02T00:30:00+05:30", "2026-06-03T00:30:00+05:30"]
    assert runs[0].astimezone(UTC) == _at("2026-06-01T19:00:00+00:00")


def test_weekly_with_several_days_in_new_york() -> None:
    # Given a weekly plan on Mon, Wed, Fri at 23:45 New York time, starting Wed 2026-07-01 noon
    policy = _policy(
        cycle="weekly",
        weekdays=["FRI", "MON", "WED"],
        executionTime="23:45",
        startTime="2026-07-01T12:00:00-04:00",
        timezone="America/New_York",
    )
    # When the next four runs are computed
    runs = next_runs(policy, _at("2026-06-01T00:00:00+00:00"), 4)
    # Then they fall on those days, at 23:45 local (03:45 UTC the next day)
    assert _iso(runs) == [
        "2026-07-01T23:45:00-04:00",
        "2026-07-03T23:45:00-04:00",
        "2026-07-06T23:45:00-04:00",
        "2026-07-08T23:45:00-04:00",
    ]


def test_hourly_in_shanghai_from_its_start_minute() -> None:
    # Given an hourly plan starting at 10:15 Shanghai time
    policy = _policy(
        cycle="hourly", startTime="2026-12-01T10:15:00+08:00", timezone="Asia/Shanghai"
    )
    # When the next runs are computed before the start
    runs = next_runs(policy, _at("2026-11-01T00:00:00+00:00"), 3)
    # Then the start is the first run and each hour at :15 follows
    assert _iso(runs) == [
        "2026-12-01T10:15:00+08:00",
        "2026-12-01T11:15:00+08:00",
        "2026-12-01T12:15:00+08:00",
    ]


def test_daily_time_skipped_by_spring_forward_does_not_run_that_day() -> None:
    # Given a daily 02:30 plan in New York; on 2026-03-08 clocks jump from 02:00 to 03:00
    policy = _policy(
        cycle="daily",
        executionTime="02:30",
        startTime="2026-03-07T00:00:00-05:00",
        timezone="America/New_York",
    )
    # When three runs are computed
    runs = next_runs(policy, _at("2026-03-01T00:00:00+00:00"), 3)
    # Then 2026-03-08 has no run, and the offset moves from -05:00 to -04:00
    assert _iso(runs) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


def test_daily_time_repeated_by_fall_back_runs_once_at_its_first_occurrence() -> None:
    # Given a daily 01:30 plan in New York; on 2026-11-01 01:00-02:00 happens twice
    policy = _policy(
        cycle="daily",
        executionTime="01:30",
        startTime="2026-10-31T00:00:00-04:00",
        timezone="America/New_York",
    )
    # When three runs are computed
    runs = next_runs(policy, _at("2026-10-01T00:00:00+00:00"), 3)
    # Then 2026-11-01 runs once, at 01:30 EDT (05:30 UTC), not again at 01:30 EST
    assert _iso(runs) == [
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]


def test_start_during_the_repeated_hour_after_the_first_occurrence_waits_a_day() -> None:
    # Given a daily 01:30 plan whose start is 01:10 EST, the second pass through 01:xx
    policy = _policy(
        cycle="daily",
        executionTime="01:30",
        startTime="2026-11-01T01:10:00-05:00",
        timezone="America/New_York",
    )
    # When the next run is computed
    runs = next_runs(policy, _at("2026-10-01T00:00:00+00:00"), 1)
    # Then 01:30 that day already fired at its first occurrence; the next run is the next day
    assert _iso(runs) == ["2026-11-02T01:30:00-05:00"]


def test_hourly_across_spring_forward_skips_the_missing_hour() -> None:
    # Given an hourly plan at :15 in New York, starting before the 2026-03-08 change
    policy = _policy(
        cycle="hourly", startTime="2026-03-08T00:15:00-05:00", timezone="America/New_York"
    )
    # When four runs are computed
    runs = next_runs(policy, _at("2026-03-01T00:00:00+00:00"), 4)
    # Then 02:15 does not exist and is skipped
    assert _iso(runs) == [
        "2026-03-08T00:15:00-05:00",
        "2026-03-08T01:15:00-05:00",
        "2026-03-08T03:15:00-04:00",
        "2026-03-08T04:15:00-04:00",
    ]


def test_hourly_across_fall_back_runs_the_repeated_hour_once() -> None:
    # Given an hourly plan at :15 in New York, starting before the 2026-11-01 change
    policy = _policy(
        cycle="hourly", startTime="2026-11-01T00:15:00-04:00", timezone="America/New_York"
    )
    # When four runs are computed
    runs = next_runs(policy, _at("2026-10-01T00:00:00+00:00"), 4)
    # Then 01:15 runs once (EDT), and the next run is 02:15 EST, two hours later
    assert _iso(runs) == [
        "2026-11-01T00:15:00-04:00",
        "2026-11-01T01:15:00-04:00",
        "2026-11-01T02:15:00-05:00",
        "2026-11-01T03:15:00-05:00",
    ]


def test_next_runs_refuses_a_naive_now() -> None:
    # Given a plan, When asked with a time that has no offset, Then it is refused
    with pytest.raises(ValueError, match="aware"):
        next_runs(_policy(**CONTRACT_POLICY), datetime(2026, 1, 1), 1)


# --- cron_times on general expressions ----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        pytest.param(
            "cron(0/20 9-10 ? * MON-FRI *)",
            "2026-01-02T10:30:00+00:00",  # a Friday
            [
                "2026-01-02T10:40:00+00:00",
                "2026-01-05T09:00:00+00:00",
                "2026-01-05T09:20:00+00:00",
            ],
            id="steps-ranges-and-weekday-names",
        ),
        pytest.param(
            "cron(5/25 8 * * ? *)",
            "2026-01-01T00:00:00+00:00",
            ["2026-01-01T08:05:00+00:00", "2026-01-01T08:30:00+00:00", "2026-01-01T08:55:00+00:00"],
            id="a/n-runs-to-the-end-of-the-field",
        ),
        pytest.param(
            "cron(0 10-20/5 * * ? *)",
            "2026-01-01T00:00:00+00:00",
            ["2026-01-01T10:00:00+00:00", "2026-01-01T15:00:00+00:00", "2026-01-01T20:00:00+00:00"],
            id="range-with-step",
        ),
        pytest.param(
            "cron(0 8 ? * 1,7 *)",
            "2026-01-01T00:00:00+00:00",  # a Thursday
            ["2026-01-03T08:00:00+00:00", "2026-01-04T08:00:00+00:00", "2026-01-10T08:00:00+00:00"],
            id="day-of-week-numbers-1-is-sunday-7-is-saturday",
        ),
        pytest.param(
            "cron(30 12 1,15 jan,Jul ? 2027)",
            "2027-01-10T00:00:00+00:00",
            ["2027-01-15T12:30:00+00:00", "2027-07-01T12:30:00+00:00", "2027-07-15T12:30:00+00:00"],
            id="month-names-any-case",
        ),
        pytest.param(
            "cron(30 12 1,15 JAN,JUL ? 2027)",
            "2027-07-10T00:00:00+00:00",
            ["2027-07-15T12:30:00+00:00"],
            id="stops-after-its-last-year",
        ),
        pytest.param(
            "cron(0 0 29 2 ? *)",
            "2026-03-01T00:00:00+00:00",
            [
                "2028-02-29T00:00:00+00:00",
                "2032-02-29T00:00:00+00:00",
                "2036-02-29T00:00:00+00:00",
            ],
            id="leap-day",
        ),
        pytest.param(
            "cron(0 0 1 1 ? 2040)",
            "2026-03-01T00:00:00+00:00",
            ["2040-01-01T00:00:00+00:00"],
            id="years-without-a-match-are-jumped-not-counted",
        ),
        pytest.param("cron(0 0 31 2 ? *)", "2026-01-01T00:00:00+00:00", [], id="never-fires"),
        pytest.param(
            "cron(0 0 1 1 ? 2020)", "2026-01-01T00:00:00+00:00", [], id="year-already-past"
        ),
    ],
)
def test_cron_times_of_general_expressions(
    expression: str, start: str, expected: list[str]
) -> None:
    # Given an AWS cron expression read in UTC
    # When three fire times are asked for (or fewer: a year field can end the expression)
    runs = cron_times(expression, "UTC", _at(start), 3)
    # Then they are the first matching times at or after the start
    assert _iso(runs) == expected


def test_cron_times_are_given_in_the_requested_zone() -> None:
    # Given a noon expression read in Shanghai and a start of 2025-12-31 20:00 UTC, which is
    # already 2026-01-01 04:00 in Shanghai
    start = _at("2025-12-31T20:00:00+00:00")
    # When two fire times are asked for
    runs = cron_times("cron(0 12 * * ? *)", "Asia/Shanghai", start, 2)
    # Then they are Shanghai noons, the first on the start's Shanghai date
    assert _iso(runs) == ["2026-01-01T12:00:00+08:00", "2026-01-02T12:00:00+08:00"]


def test_cron_times_refuses_an_unknown_zone() -> None:
    with pytest.raises(ValueError, match="IANA"):
        cron_times("cron(0 12 * * ? *)", "Mars/Olympus", _at("2026-01-01T00:00:00+00:00"), 1)


# --- CronExpression.parse ------------------------------------------------------------------------


def test_parse_reads_names_and_aws_day_numbers() -> None:
    # Given an expression with day names, When parsed
    parsed = CronExpression.parse("cron(0 0 ? * SUN,TUE *)")
    # Then the days are AWS numbers (1=SUN) and day-of-month is "?"
    assert parsed.days_of_week == frozenset({1, 3})
    assert parsed.days_of_month is None
    assert parsed.minutes == (0,)
    assert parsed.hours == (0,)


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("cron(0 0 L * ? *)", "not supported"),
        ("cron(0 0 15W * ? *)", "not supported"),
        ("cron(0 0 LW * ? *)", "not supported"),
        ("cron(0 0 ? * 6L *)", "not supported"),
        ("cron(0 0 ? * 3#2 *)", "not supported"),
        ("cron(0 0 ? * MON#1 *)", "not supported"),
        ("cron(60 0 * * ? *)", "minutes: 60 is out of range"),
        ("cron(0 24 * * ? *)", "hours: 24 is out of range"),
        ("cron(0 0 0 * ? *)", "day-of-month: 0 is out of range"),
        ("cron(0 0 32 * ? *)", "day-of-month: 32 is out of range"),
        ("cron(0 0 1 13 ? *)", "month: 13 is out of range"),
        ("cron(0 0 ? * 8 *)", "day-of-week: 8 is out of range"),
        ("cron(0 0 * * ? 2200)", "year: 2200 is out of range"),
        ("cron(0 0 * * ? 1969)", "year: 1969 is out of range"),
        ("cron(0 0 * * ?)", "has 5 fields"),
        ("cron(0 0 * * ? * *)", "has 7 fields"),
        ("cron(0 0 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 0 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(? 0 * * ? *)", "'?' stands alone"),
        ("cron(0 0 1,? * ? *)", "'?' stands alone"),
        ("cron(0 0 ? * */2 *)", "'/' is not allowed"),
        ("cron(0 5-1 * * ? *)", "from low to high"),
        ("cron(0 0 ? * FRI-MON *)", "from low to high"),
        ("cron(*/0 0 * * ? *)", "step must be"),
        ("cron(0 0 1,,2 * ? *)", "is not a value"),
        ("cron(0 0 1 FOO ? *)", "is not a value"),
        ("cron(0 0 1 MON ? *)", "month: 'MON' is not a value"),
        ("rate(5 minutes)", "not a cron expression"),
        ("0 0 * * ? *", "not a cron expression"),
    ],
)
def test_parse_refuses_what_it_cannot_evaluate(expression: str, complaint: str) -> None:
    # Given an expression that is invalid or uses an unsupported wildcard
    # When it is parsed, Then a ValueError names the problem
    with pytest.raises(ValueError, match=complaint.replace("?", r"\?")):
        CronExpression.parse(expression)


# --- schedule_start_date ------------------------------------------------------------------------


def test_start_date_is_the_start_time_while_it_is_ahead() -> None:
    # Given the contract's plan, before its start
    policy = _policy(**CONTRACT_POLICY)
    # When the scheduler's StartDate is computed
    start = schedule_start_date(policy, _at("2026-11-20T00:00:00+00:00"))
    # Then it is exactly the start time, so a run at the start time fires
    assert start == _at("2026-11-30T16:00:00+00:00")


@pytest.mark.parametrize("now", ["2026-11-30T16:00:00+00:00", "2027-01-01T00:00:00+00:00"])
def test_start_date_is_left_out_once_the_start_time_has_come(now: str) -> None:
    # Given the contract's plan at or after its start, When the StartDate is computed
    # Then there is none: the scheduler refuses a StartDate in the past
    assert schedule_start_date(_policy(**CONTRACT_POLICY), _at(now)) is None
