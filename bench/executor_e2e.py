"""``make bench``, the whole executor: a warm executor handler's time per scheduled run, from the
call to its return (records, lease, preflight, dump and upload, manifest, remote sync, events),
beside the floor (the dump tool alone, > /dev/null), and its fixed per-run cost.

The local stack (devstack.stack: the embedded AWS with the tables, buckets, secret and rules the
template declares) runs in this process; storages and plans are made through its API, as an
operator would. The executor runs in a process of its own (bench/executor_run.py), as Lambda
runs it: functions/executor/app.py loaded by path, one warm-up invocation, then the measured
ones. Each run is a scheduled event with a time of its own (a new execution each time).

Three plans in turn: a tiny database (two tables of 100 rows), where the dump takes about nothing,
so that the handler's time there is its fixed per-run cost; the benchmark database, held to the
target; and the benchmark database again with a remote storage, whose server-side copy is a second
movement of the whole backup and is printed beside the target, not in it.
Retention (the rule on the success event, run by the local stack in this process) is waited for
after each run, so it never overlaps a measured one.

Environment: BENCH_REPEAT (interleaved runs of each contender, default 3, the median counts),
BENCH_TRACE=1 (the last run on each database lists its AWS calls and
subprocesses with their times), BENCH_PROFILE (a directory: one more tiny run under cProfile, its
statistics written there and the top of them printed).
"""

from __future__ import annotations

import io
import json
import logging
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from unittest import mock

from bench.coldstart import function_environment
from devstack.config import DatabaseAccess, LocalConfig
from devstack.stack import Stack, start_stack
from devstack.template import REPO_ROOT, load_template
from platform_backup.adapters import aws as aws_clients
from platform_backup.adapters.tables import TABLES, transaction_connection
from platform_backup.composition import common as composition

TINY_DB = "bench_tiny"
TINY_SQL = f"""
CREATE DATABASE IF NOT EXISTS `{TINY_DB}`;
USE `{TINY_DB}`;
CREATE TABLE IF NOT EXISTS Small1 (id INT PRIMARY KEY, name VARCHAR(64)) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS Small2 (id INT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB;
INSERT IGNORE INTO Small1 SELECT seq, md5(seq) FROM seq_1_to_100;
INSERT IGNORE INTO Small2 SELECT seq, sha1(seq) FROM seq_1_to_100;
"""
STORAGES = (("primary", "local"), ("fallback", "local"), ("remote", "remote"))
REMOTE_BUCKET = "pdb-remote"  # devstack.resources creates it beside the template's buckets
TARGET = 1.25


@dataclass(frozen=True)
class Figures:
    handler: list[float]
    floor: list[float]

    @property
    def handler_median(self) -> float:
        return statistics.median(self.handler)

    @property
    def floor_median(self) -> float:
        return statistics.median(self.floor)


class Api:
    """The local stack's API over HTTP (JSON in and out)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")


class WarmExecutor:
    """One function's process (bench/executor_run.py: the executor unless ``function`` names
    another), warm after its first invocation; an answer whose status is not ``succeeded`` ends
    the bench."""

    def __init__(
        self,
        env: dict[str, str],
        log: IO[bytes],
        function: str = "executor",
        succeeded: str = "succeeded",
    ) -> None:
        self.succeeded = succeeded
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.executor_run", function],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            text=True,
        )
        self.log = log

    def invoke(
        self, event: dict[str, Any], profile: str | None = None, trace: bool = False
    ) -> dict[str, Any]:
        """The answer: the handler's ``seconds``, its ``result``, and its ``trace`` if asked."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"event": event, "profile": profile, "trace": trace}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the executor process ended; its log: {self.log.name}")
        answer = json.loads(line)
        if answer["result"].get("status") != self.succeeded:
            result = answer["result"]
            raise SystemExit(f"the run did not succeed: {result} (log {self.log.name})")
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def make_tiny_db(mariadb: list[str]) -> None:
    subprocess.run([*mariadb, "--batch"], input=TINY_SQL.encode(), check=True)


def create_storages(api: Api) -> dict[str, str]:
    ids: dict[str, str] = {}
    for name, role in STORAGES:
        storage = api.call(
            "POST",
            "/v1/storages",
            {
                "name": name,
                "role": role,
                "bucket": REMOTE_BUCKET if role == "remote" else f"pdb-{name}",
                "region": "us-east-1",
                "prefix": "platform-db/",
                "capacityBytes": 1 << 50,
            },
        )
        ids[name] = storage["id"]
    return ids


def create_plan(api: Api, storages: dict[str, str], remote_sync: bool) -> str:
    """The one plan there may be (deleted before the next is made): two local storages, the
    second the failover, and a remote one, as the demo's plan. It starts a month from now, so
    the stack's schedule loop never fires it during the bench."""
    start = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    spec: dict[str, Any] = {
        "name": "bench",
        "localStorageIds": [storages["primary"], storages["fallback"]],
        "remoteSync": remote_sync,
        "policy": {
            "cycle": "daily",
            "executionTime": "03:00",
            "startTime": start.isoformat(),
            "timezone": "UTC",
        },
        "retention": {"local": {"mode": "count", "value": 2}},
    }
    if remote_sync:
        spec["remoteStorageId"] = storages["remote"]
        spec["retention"]["remote"] = {"mode": "count", "value": 2}
    return str(api.call("POST", "/v1/plans", spec)["id"])


def wait_for_invocations() -> None:
    """Joins what the stack invoked asynchronously (retention, after a success event)."""
    time.sleep(0.2)  # EventBridge's delivery starts on the request's thread, just after it
    for thread in threading.enumerate():
        if thread.name.startswith("invoke-"):
            thread.join()


@contextmanager
def stdout_to(path: Path) -> Iterator[None]:
    """This process's standard output (file descriptor 1) into a file: the handlers the stack
    runs here (API, retention) log there, and would bury the figures."""
    sys.stdout.flush()
    saved = os.dup(1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.close(fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def forget_clients() -> None:
    """The handlers this process runs keep their clients and use cases: a stack started before
    in this process (another section) left them pointing at its endpoint, now gone."""
    composition.reset()
    aws_clients.client.cache_clear()
    transaction_connection.cache_clear()
    for model, _field in TABLES.values():
        model._connection = None


@contextmanager
def local_stack(
    log: Path, database: DatabaseAccess | None = None, schedules: bool = False
) -> Iterator[Stack]:
    """The local stack protecting ``database`` (the environment's by default), without its
    schedule loop unless asked (the monitor's 5-minute rule would run in the middle of a
    measurement)."""
    for noisy in ("werkzeug", "botocore", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    forget_clients()
    with mock.patch.dict(os.environ), stdout_to(log), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No application metrics to publish")
        stack = start_stack(0, 0, database=database or LocalConfig.from_env().database)
        if not schedules:
            stack.schedules.stop()
        try:
            yield stack
        finally:
            stack.stop()


def executor_env(database: str, function: str = "executor") -> dict[str, str]:
    """This process's environment (the embedded AWS's endpoint and credentials included) with
    the function's own variables from the template and the database it backs up."""
    declared = function_environment(load_template()).get(function, {})
    function_dir = REPO_ROOT / "functions" / function
    env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_LOG_LEVEL"}
    return {
        **env,
        **declared,
        "PLATFORM_DB_NAMES": database,
        "PYTHONPATH": f"{function_dir}:{REPO_ROOT / 'shared'}:{REPO_ROOT}",
    }


def profile_top(path: str, count: int = 25) -> list[str]:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("cumulative").print_stats(count)
    return [line for line in out.getvalue().splitlines() if line.strip()]


@dataclass
class Phase:
    """One plan on one database, its warm executor, and what was measured."""

    plan_id: str
    executor: WarmExecutor
    times: Iterator[datetime]
    figures: Figures

    def handler(self, profile: str | None = None, trace: bool = False) -> dict[str, Any]:
        scheduled = next(self.times).isoformat().replace("+00:00", "Z")
        event = {"planId": self.plan_id, "scheduledTime": scheduled}
        answer = self.executor.invoke(event, profile, trace)
        wait_for_invocations()
        return answer


def trace_lines(label: str, answer: dict[str, Any]) -> list[str]:
    """One traced run: its AWS calls and subprocesses by kind (count, total), then in order
    (consecutive calls of one kind on one thread in one line)."""
    spans: list[dict[str, Any]] = answer["trace"]
    totals: dict[str, list[float]] = {}
    for span in spans:
        totals.setdefault(span["what"], []).append(span["seconds"])
    # A spawn is within its subprocess.run, or is the dump's own start: left out of the sum.
    main = sum(
        s["seconds"]
        for s in spans
        if s["thread"] == "MainThread" and not s["what"].startswith("spawn")
    )
    lines = [
        f"trace of a run on {label}: handler {answer['seconds']:.3f} s; AWS calls and subprocesses"
        f" on the handler's thread {main:.3f} s, the rest is Python and waits",
        f"  {'what':58s} {'count':>5s} {'total s':>8s}",
    ]
    for what, values in sorted(totals.items(), key=lambda item: -sum(item[1])):
        lines.append(f"  {what:58s} {len(values):5d} {sum(values):8.3f}")
    lines.append("  in order (start s, seconds, thread, what)")
    runs: list[list[dict[str, Any]]] = []
    for span in sorted(spans, key=lambda s: s["start"]):
        last = runs[-1][-1] if runs else None
        if last and (last["what"], last["thread"]) == (span["what"], span["thread"]):
            runs[-1].append(span)
        else:
            runs.append([span])
    for group in runs:
        first, seconds = group[0], sum(s["seconds"] for s in group)
        times = f" x{len(group)}" if len(group) > 1 else ""
        lines.append(
            f"  {first['start']:7.3f} {seconds:6.3f}  {first['thread']:24s} {first['what']}{times}"
        )
    return lines


def run(db: str, floor_seconds: Callable[[str], float], mariadb: list[str]) -> list[str]:
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    profile_dir = os.environ.get("BENCH_PROFILE")
    traced = os.environ.get("BENCH_TRACE") == "1"
    make_tiny_db(mariadb)
    times = (datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=n) for n in range(1_000_000))
    # (database, remote sync): the backup alone is held to the target; the same backup with its
    # remote copy is printed beside it (a second movement of the whole backup, not dump work).
    phases = {"tiny": (TINY_DB, False), "bench": (db, False), "synced": (db, True)}
    figures = {which: Figures([], []) for which in phases}
    warm: dict[str, float] = {}
    extra: list[str] = []
    logs = Path(tempfile.mkdtemp(prefix="pdb-bench-executor-"))
    with local_stack(logs / "stack.log") as stack:
        api = Api(stack.api_url)
        storages = create_storages(api)
        # One database per phase, each with its own plan: the plan's last backup sets the next
        # run's expected size and duration, which a backup of the other database would skew.
        for which, (database, remote_sync) in phases.items():
            plan_id = create_plan(api, storages, remote_sync)
            with open(logs / f"executor-{which}.log", "wb") as log:
                phase = Phase(
                    plan_id, WarmExecutor(executor_env(database), log), times, figures[which]
                )
                try:
                    warm[which] = phase.handler()["seconds"]
                    for n in range(repeat):
                        phase.figures.floor.append(floor_seconds(database))
                        # The last run is traced, if asked: the wrappers cost microseconds.
                        answer = phase.handler(trace=traced and n == repeat - 1)
                        phase.figures.handler.append(answer["seconds"])
                        if "trace" in answer:
                            extra += ["", *trace_lines(f"`{database}`", answer)]
                    if which == "tiny" and profile_dir:
                        path = Path(profile_dir).resolve() / "executor-tiny.prof"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        seconds = phase.handler(profile=str(path))["seconds"]
                        extra += [
                            "",
                            f"cProfile of one tiny run ({seconds:.2f} s profiled): {path}",
                        ]
                        extra += profile_top(str(path))
                finally:
                    phase.executor.close()
            api.call("DELETE", f"/v1/plans/{plan_id}")

    big, tiny, synced = figures["bench"], figures["tiny"], figures["synced"]
    ratio = big.handler_median / big.floor_median
    fixed = tiny.handler_median - tiny.floor_median

    def row(label: str, values: list[float]) -> str:
        every = " ".join(f"{v:.2f}" for v in values)
        return f"{label:52s} {statistics.median(values):7.2f} s   [{every}]"

    return [
        f"the whole executor: warm handler per scheduled run, median of {repeat},"
        f" interleaved with the floor (all runs in brackets; logs in {logs})",
        f"  first invocation after init: tiny {warm['tiny']:.2f} s, bench {warm['bench']:.2f} s",
        row(f"executor handler, `{db}`", big.handler),
        row(f"floor: mariadb-dump > /dev/null, `{db}`", big.floor),
        row(f"executor handler + remote sync, `{db}`", synced.handler),
        row("floor beside it", synced.floor),
        row(f"executor handler, `{TINY_DB}` (2 tables)", tiny.handler),
        row(f"floor, `{TINY_DB}`", tiny.floor),
        "",
        f"handler / floor          {ratio:5.2f}x  (target <= {TARGET}:"
        f" {'met' if ratio <= TARGET else 'MISSED'})",
        f"fixed per-run cost       {fixed:5.2f} s  (tiny handler - tiny floor)",
        f"handler - floor          {big.handler_median - big.floor_median:5.2f} s"
        f"  (on `{db}`: the fixed cost and what grows with the data)",
        f"remote sync adds         {synced.handler_median - big.handler_median:5.2f} s"
        "  (server-side copy, verified by S3's SHA-256;"
        f" {synced.handler_median / synced.floor_median:.2f}x the floor with it)",
        *extra,
    ]
