"""Whether a restore fits the restore function's time, decided before anything is touched: the
backup's raw SQL at the plan's measured apply rate (or the configured default), against one
step's time. Used by the API (422 at request time), Validate, the Restore step (against the
time it has left, and in place against a whole step for the rollback that would follow) and
Rollback (started only when it fits)."""

from __future__ import annotations

from platform_backup.domain.time_budget import (
    MEASURABLE_APPLY_BYTES,
    ApplyEstimate,
    apply_estimate,
    step_budget_text,
    usable_seconds,
)
from platform_backup.errors import DomainError
from platform_backup.observability import logger
from platform_backup.services.ports import ApplyRates


class RestoreBudget:
    def __init__(self, rates: ApplyRates, default_rate: float, step_seconds: float) -> None:
        self._rates = rates
        self._default_rate = default_rate
        self.step_seconds = step_seconds

    def estimate(self, plan_id: str, raw_bytes: int) -> ApplyEstimate:
        return apply_estimate(raw_bytes, self._rates.measured(plan_id), self._default_rate)

    def step_refusal(self, plan_id: str, raw_bytes: int) -> str | None:
        """The figures when applying ``raw_bytes`` cannot fit one whole step, or None."""
        estimate = self.estimate(plan_id, raw_bytes)
        if estimate.seconds <= usable_seconds(self.step_seconds):
            return None
        return f"{estimate.describe()}; the restore step has {step_budget_text(self.step_seconds)}"

    def left_refusal(self, plan_id: str, raw_bytes: int, remaining: float) -> str | None:
        """The figures when applying ``raw_bytes`` cannot fit the ``remaining`` seconds, or None."""
        estimate = self.estimate(plan_id, raw_bytes)
        usable = usable_seconds(remaining)
        if estimate.seconds <= usable:
            return None
        return f"{estimate.describe()}; this step has {usable:.0f} s left after its margin"

    def learn(self, plan_id: str, raw_bytes: int, seconds: float) -> None:
        """Keeps the rate of an apply big enough to measure (small ones are mostly overhead)."""
        if raw_bytes < MEASURABLE_APPLY_BYTES or seconds <= 0:
            return
        try:
            self._rates.record(plan_id, raw_bytes / seconds)
        except DomainError:
            # The restore itself succeeded: a rate not kept only leaves the last one in use.
            logger.exception("restore rate not recorded", plan_id=plan_id)
