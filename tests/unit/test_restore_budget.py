"""The restore's time check: the estimate from a backup's size and the plan's apply rate (measured
on its last big enough restore, kept in DynamoDB, or the default), and the figures it gives."""

from __future__ import annotations

from platform_backup.adapters.apply_rates import DynamoApplyRates
from platform_backup.services.restore_budget import RestoreBudget
from tests.support.moto_env import MotoEnv
from tests.support.throttle import no_backoff

__all__ = ["no_backoff"]

GB = 1_000_000_000


def _budget() -> RestoreBudget:
    return RestoreBudget(DynamoApplyRates(), default_rate=10_000_000.0, step_seconds=900.0)


def test_a_backup_fitting_the_step_at_the_default_rate_passes(aws: MotoEnv) -> None:
    # 8.7 GB at 10 MB/s is 870 s: exactly the step less its margin
    assert _budget().step_refusal("plan-1", int(8.7 * GB)) is None


def test_a_backup_too_big_for_the_step_is_refused_with_the_figures(aws: MotoEnv) -> None:
    refusal = _budget().step_refusal("plan-1", int(12.1 * GB))
    assert refusal is not None
    assert refusal.startswith("estimated 1210 s to apply 12.1 GB at 10.0 MB/s, the default rate")
    assert refusal.endswith("the restore step has 870 s (900 s less a 30 s margin)")


def test_the_rate_measured_on_a_big_restore_replaces_the_default(aws: MotoEnv) -> None:
    budget = _budget()
    # Given a restore of 2 GB that took 100 s (20 MB/s)
    budget.learn("plan-1", 2 * GB, 100.0)
    # Then 12.1 GB fits (605 s), and the figures say the rate was measured
    assert budget.step_refusal("plan-1", int(12.1 * GB)) is None
    refusal = budget.step_refusal("plan-1", 20 * GB)
    assert refusal is not None and "at 20.0 MB/s, measured on this plan's last restore" in refusal
    # And the rate is the plan's own
    assert budget.estimate("plan-2", GB).measured is False


def test_a_small_restore_teaches_no_rate(aws: MotoEnv) -> None:
    budget = _budget()
    # A 1 MB restore taking 1 s is mostly connecting and creating tables, not 1 MB/s
    budget.learn("plan-1", 1_000_000, 1.0)
    assert budget.estimate("plan-1", GB).measured is False
    assert budget.step_refusal("plan-1", int(8 * GB)) is None


def test_the_time_left_decides_within_a_step(aws: MotoEnv) -> None:
    budget = _budget()
    assert budget.left_refusal("plan-1", 100_000_000, remaining=45.0) is None  # 10 s of 15
    refusal = budget.left_refusal("plan-1", 200_000_000, remaining=45.0)
    assert refusal is not None and refusal.endswith("this step has 15 s left after its margin")


def test_a_throttled_rate_record_keeps_the_last_rate_and_fails_nothing(
    aws: MotoEnv, no_backoff: None
) -> None:
    from platform_backup.adapters.tables import LockItem
    from tests.support.throttle import throttled

    budget = _budget()
    budget.learn("plan-1", 2 * GB, 100.0)
    # When recording the next measured rate is throttled past the SDK's retries
    with throttled(LockItem, "UpdateItem") as throttle:
        budget.learn("plan-1", 2 * GB, 50.0)
    # Then the restore that measured it is not failed by it, and the last rate stays in use
    assert throttle.answered > 0
    assert budget.estimate("plan-1", GB).rate == 20_000_000.0
