"""``make bench``, the recovery point: on the local stack as ``make run`` starts it (devstack.stack,
its schedule loop firing the plans' schedules, every function in this process), protecting a
private server with binary logging, a plan with point-in-time recovery on and a 1-minute archive
interval; after its first full backup, rows are committed and each is timed from its commit until
it is recoverable: until ``lastRecoverableTime`` of GET /v1/plans/{id}/recovery-window reaches
the commit's second (polled every half second).

The commits fall at different moments of the archive's minute (BENCH_RP_COMMITS, default 3: 2 s,
22 s and 42 s after a run was seen), since the wait depends on how long before the next run a
commit lands: at most about one interval plus one run. The worst is held to the target.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from bench.binlog import create_plan
from bench.executor_e2e import Api, create_storages, local_stack
from devstack.config import DatabaseAccess
from devstack.private_server import PrivateServer, private_server

DATABASE = "pitr_rp"
# The archive interval of bench.binlog.create_plan's plan.
INTERVAL_MINUTES = 1
TARGET_SECONDS = 120.0
POLL_SECONDS = 0.5


def wait_for(what: Callable[[], Any], seconds: float, label: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"recovery point: {label} not within {seconds:.0f} s")


def last_recoverable(api: Api, plan_id: str) -> datetime | None:
    found = api.call("GET", f"/v1/plans/{plan_id}/recovery-window")["lastRecoverableTime"]
    return datetime.fromisoformat(found) if found else None


def commit(server: PrivateServer) -> datetime:
    """One row committed; the moment its commit returned."""
    server.sql(f"INSERT INTO {DATABASE}.commits (committed_at) VALUES (UTC_TIMESTAMP(6))")
    return datetime.now(UTC)


def measure(server: PrivateServer, api: Api, plan_id: str, commits: int) -> list[float]:
    def reached(moment: datetime) -> Callable[[], bool]:
        second = moment.replace(microsecond=0)
        return lambda: (last := last_recoverable(api, plan_id)) is not None and last >= second

    # The first window: the backup's position, reached by the first archive run after it.
    wait_for(reached(datetime.now(UTC) - timedelta(seconds=1)), 240, "the first window")
    seen = time.monotonic()  # just after an archive run: the poll sees each within half a second
    waits: list[float] = []
    spacing = INTERVAL_MINUTES * 60 / commits
    for n in range(commits):
        # The n-th commit lands n/commits of an interval (and 2 s) after a run was seen.
        time.sleep(max(0.0, seen + n * spacing + 2 - time.monotonic()))
        committed = commit(server)
        wait_for(reached(committed), 4 * 60 * INTERVAL_MINUTES, "a commit's recovery")
        waits.append((datetime.now(UTC) - committed).total_seconds())
        seen = time.monotonic()
    return waits


def run() -> list[str]:
    commits = int(os.environ.get("BENCH_RP_COMMITS", "3"))
    logs = Path(tempfile.mkdtemp(prefix="pdb-bench-rp-"))
    with private_server(binlog=True) as server:
        server.sql(
            f"CREATE DATABASE {DATABASE}; CREATE TABLE {DATABASE}.commits"
            " (id INT AUTO_INCREMENT PRIMARY KEY, committed_at DATETIME(6) NOT NULL)"
        )
        access = DatabaseAccess(host="127.0.0.1", port=server.port, username="root")
        with (
            mock.patch.dict(os.environ, {"PLATFORM_DB_NAMES": DATABASE}),
            local_stack(logs / "stack.log", access, schedules=True) as stack,
        ):
            api = Api(stack.api_url)
            plan_id = create_plan(api, create_storages(api), "bench-recovery-point")
            execution = api.call("POST", f"/v1/plans/{plan_id}/executions")

            def backed_up() -> bool:
                found = api.call("GET", f"/v1/executions/{execution['id']}")
                if found["status"] not in ("queued", "running", "succeeded"):
                    raise SystemExit(f"recovery point: the full backup ended {found['status']}")
                return bool(found["status"] == "succeeded")

            wait_for(backed_up, 300, "the full backup")
            waits = measure(server, api, plan_id, commits)
    worst = max(waits)
    every = " ".join(f"{w:.1f}" for w in waits)
    met = "met" if worst <= TARGET_SECONDS else "MISSED"
    return [
        f"recovery point under the local stack (archive every {INTERVAL_MINUTES} min; logs in"
        f" {logs}): a commit until lastRecoverableTime reaches it",
        f"  {commits} commits at even phases of the interval: median"
        f" {statistics.median(waits):.1f} s, worst {worst:.1f} s   [{every}]",
        f"recovery point (worst)   {worst:5.1f} s  (target <= {TARGET_SECONDS:.0f} s: {met})",
    ]


def report() -> None:
    for line in ["", *run(), ""]:
        print(line, flush=True)
