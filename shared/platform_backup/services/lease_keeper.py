"""Keeping the plan's lease while a backup or a restore works: renewed on a thread, a lost lease
raised in the job's own thread at its next check (a progress report)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from platform_backup.domain.lease import LeaseLost
from platform_backup.observability import logger

LEASE_TTL_SECONDS = 60.0
HEARTBEAT_SECONDS = 15.0


class LeaseKeeper:
    """Calls ``renew`` every HEARTBEAT_SECONDS until stopped or until it raises LeaseLost; any
    other error (a passing DynamoDB one) is logged and the next beat tries again."""

    def __init__(self, renew: Callable[[], None], name: str) -> None:
        self._renew = renew
        self._stop = threading.Event()
        self.lost: LeaseLost | None = None
        self._thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def check(self) -> None:
        if self.lost is not None:
            raise self.lost

    def stop(self) -> None:
        """No renewal happens after this returns (one in flight is waited for), so a write of
        the lease that follows (a release, a hand-over) is the last."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._renew()
            except LeaseLost as exc:
                self.lost = exc
                return
            except Exception:
                logger.exception("lease renewal failed; retrying at the next beat")
