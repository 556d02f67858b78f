"""``make bench``, the binary log (point-in-time recovery): about BENCH_BINLOG_MB (default 1024)
MiB of row-based binary log (bench/binlog_data.py) archived by the archiver and replayed by the
restore's replay, each beside the issue's by-hand baseline, interleaved, on the same bytes.

Archive: the local stack (devstack.stack, without its schedule loop) protects a private server
with binary logging, through a plan with point-in-time recovery on (1-minute interval). The
archiver runs in a process of its own (bench/executor_run.py), as Lambda keeps it warm: one
invocation before the workload is written (the function's first, which also opens the plan's
archive), then one scheduled run per measurement, timed from the handler's call to its return
(records, lease, FLUSH BINARY LOGS, each closed file fetched with ``mariadb-binlog --raw``,
zstd, SHA-256, the upload to moto's S3). Between runs the plan's archive is put back as the first
invocation left it (its new segments' records and objects deleted), so every run archives the
whole workload again. The baseline fetches the same closed files with ``mariadb-binlog
--read-from-remote-server --raw`` and compresses them with ``zstd -1`` (sequentially, to disk);
each archive run also closes and archives the file its own FLUSH closes (a few hundred bytes).

Replay: the workload's segments as the last archive run stored them in S3, replayed into a second
private server reset to the workload's starting state (the schema, no rows) by the adapters the
restore workflow's Replay step uses (S3SegmentStore's checked stream, MariaDbBinlogReplayer:
``mariadb-binlog`` per segment, the database filter, one ``mariadb`` session), in a child process
(``python -m bench.binlog replay SPEC``) apart from the S3 server's threads, timed from the first
request to S3 to the client's exit. The baseline is ``mariadb-binlog FILES | mariadb`` of the
server's own files. Every replay is checked: the target's CHECKSUM TABLE equals the source's.

BENCH_REPEAT (runs of each, default 3; the median counts), in the order ABBA... so that neither
always goes first.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import binlog_data
from bench.executor_e2e import (
    Api,
    WarmExecutor,
    create_storages,
    executor_env,
    local_stack,
    trace_lines,
)
from devstack.config import DatabaseAccess
from devstack.private_server import PrivateServer, private_server

ARCHIVE_TARGET = 1.3
REPLAY_TARGET = 1.1
SETTLE_SECONDS = 60


def checksum(server: PrivateServer) -> str:
    return server.sql(f"CHECKSUM TABLE {binlog_data.DATABASE}.resource").split("\t")[-1].strip()


def settle(server: PrivateServer) -> None:
    """Until the server has written back the pages the last replay left dirty (or a minute)."""
    deadline, seen = time.monotonic() + SETTLE_SECONDS, []
    while time.monotonic() < deadline:
        seen.append(
            int(server.sql("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").split()[-1])
        )
        if seen[-1] < 100 or (len(seen) > 3 and seen[-1] >= seen[-4]):
            return
        time.sleep(1)


def order(repeat: int) -> Iterator[tuple[str, str]]:
    for n in range(repeat):
        yield ("baseline", "project") if n % 2 == 0 else ("project", "baseline")


def create_plan(api: Api, storages: dict[str, str], name: str = "bench-binlog") -> str:
    """A plan with point-in-time recovery on, every minute; its backup schedule a month away."""
    start = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    plan = api.call(
        "POST",
        "/v1/plans",
        {
            "name": name,
            "localStorageIds": [storages["primary"], storages["fallback"]],
            "policy": {
                "cycle": "daily",
                "executionTime": "03:00",
                "startTime": start.isoformat(),
                "timezone": "UTC",
            },
            "retention": {"local": {"mode": "count", "value": 2}},
            "pointInTime": {"enabled": True, "archiveIntervalMinutes": 1},
        },
    )
    return str(plan["id"])


@dataclass
class Archived:
    seconds: float
    segments: list[Any]  # platform_backup.domain.recovery.Segment


class ArchiveRuns:
    """The warm archiver, and the plan's archive put back before each run."""

    def __init__(self, plan_id: str, archiver: WarmExecutor, s3: Any) -> None:
        from platform_backup.adapters.archive_repo import DynamoArchiveRepository

        self.plan_id = plan_id
        self.archiver = archiver
        self.repo = DynamoArchiveRepository()
        self.s3 = s3
        self.times = (datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=n) for n in range(10**6))
        self.first = self.repo.state(plan_id)
        self.traced: list[str] = []

    def invoke(self, trace: bool = False) -> float:
        scheduled = next(self.times).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {"planId": self.plan_id, "scheduledTime": scheduled, "kind": "archive"}
        answer = self.archiver.invoke(event, trace=trace)
        if trace:
            self.traced = trace_lines("the binary log", answer)
        return float(answer["seconds"])

    def opened(self) -> None:
        """The first invocation: the plan's archive opens at the file it closes."""
        self.invoke()
        self.first = self.repo.state(self.plan_id)

    def new_segments(self) -> list[Any]:
        found = self.repo.segments(self.plan_id)
        return sorted(
            (s for s in found if s.sequence > self.first.last_sequence), key=lambda s: s.sequence
        )

    def put_back(self) -> None:
        for segment in self.new_segments():
            for copy in segment.copies:
                self.s3.delete_object(Bucket=copy.bucket, Key=copy.key)
            self.repo.remove_segment(self.plan_id, segment.sequence)
        current = self.repo.state(self.plan_id)
        changed = current.last_sequence != self.first.last_sequence
        if changed and self.repo.save_state(current, self.first) is None:
            raise SystemExit("the plan's archive changed while it was put back")

    def run(self, trace: bool = False) -> Archived:
        self.put_back()
        seconds = self.invoke(trace)
        return Archived(seconds, self.new_segments())


def files_after(server: PrivateServer, last_file: str) -> list[str]:
    """The closed files after ``last_file``: what the next archive run finds to archive."""
    return [name for name, _size in binlog_data.closed_files(server) if name > last_file]


def replay_spec(segments: list[Any], files: list[str], target: PrivateServer) -> dict[str, Any]:
    chosen = [s for s in segments if s.file in files]
    if [s.file for s in chosen] != files:
        raise SystemExit(f"the archive holds {[s.file for s in chosen]}, not {files}")
    return {
        "port": target.port,
        "startPosition": 4,
        "rawBytes": sum(s.raw_bytes for s in chosen),
        "segments": [
            {
                "bucket": s.copies[0].bucket,
                "region": s.copies[0].region,
                "key": s.copies[0].key,
                "storageId": s.copies[0].storage_id,
                "sha256": s.sha256,
            }
            for s in chosen
        ],
    }


def replay_project(spec: dict[str, Any]) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "bench.binlog", "replay", json.dumps(spec)],
        stdout=subprocess.PIPE,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the project's replay failed ({done.returncode})")
    answer = json.loads(done.stdout)
    if answer["exitCode"] != 0 or answer["rawBytes"] != spec["rawBytes"]:
        raise SystemExit(f"the project's replay did not apply everything: {answer}")
    return float(answer["seconds"])


def row(label: str, values: list[float]) -> str:
    every = " ".join(f"{v:.2f}" for v in values)
    return f"{label:56s} {statistics.median(values):7.2f} s   [{every}]"


def verdict(value: float, bound: float) -> str:
    return f"(target <= {bound}: {'met' if value <= bound else 'MISSED'})"


def run() -> list[str]:
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    logs = Path(tempfile.mkdtemp(prefix="pdb-bench-binlog-"))
    with (
        private_server(binlog=True) as source,
        private_server(options=["--max-allowed-packet=1G"]) as target,
    ):
        source.sql(binlog_data.SCHEMA)
        access = DatabaseAccess(host="127.0.0.1", port=source.port, username="root")
        with (
            local_stack(logs / "stack.log", access) as stack,
            open(logs / "archiver.log", "wb") as log,
        ):
            from platform_backup.adapters.tables import bind_tables
            from platform_backup.settings import Settings, load

            bind_tables(load(Settings))
            api = Api(stack.api_url)
            plan_id = create_plan(api, create_storages(api))
            archiver = WarmExecutor(
                executor_env(binlog_data.DATABASE, "archiver"), log, "archiver", "archived"
            )
            try:
                runs = ArchiveRuns(plan_id, archiver, stack.aws.client("s3"))
                runs.opened()
                built = time.perf_counter()
                workload = binlog_data.build(source)
                built = time.perf_counter() - built
                files = files_after(source, runs.first.last_file or "")
                times: dict[str, list[float]] = {"baseline": [], "project": []}
                archived: Archived | None = None
                for pair in order(repeat):
                    for which in pair:
                        if which == "baseline":
                            seconds = binlog_data.fetch_and_compress_by_hand(source, files)
                            times["baseline"].append(seconds)
                        else:
                            traced = os.environ.get("BENCH_TRACE") == "1"
                            archived = runs.run(trace=traced and len(times["project"]) == 0)
                            times["project"].append(archived.seconds)
                assert archived is not None
            finally:
                archiver.close()
            raw = sum(s.raw_bytes for s in archived.segments if s.file in files)
            stored = sum(s.compressed_bytes for s in archived.segments if s.file in files)
            extra = [s for s in archived.segments if s.file not in files]
            spec = replay_spec(archived.segments, workload.files, target)
            expected = checksum(source)
            replays: dict[str, list[float]] = {"baseline": [], "project": []}
            for pair in order(min(repeat, 2)):
                for which in pair:
                    binlog_data.reset_target(target)
                    settle(target)
                    if which == "baseline":
                        seconds = binlog_data.replay_by_hand(
                            source.binlog_dir, workload.files, workload.start_position, target
                        )
                    else:
                        seconds = replay_project(spec)
                    if checksum(target) != expected:
                        raise SystemExit(f"the {which} replay left another table than the source's")
                    replays[which].append(seconds)
    archive_ratio = statistics.median(times["project"]) / statistics.median(times["baseline"])
    replay_ratio = statistics.median(replays["project"]) / statistics.median(replays["baseline"])
    mb = workload.raw_bytes / 1e6
    replay_mbs = mb / statistics.median(replays["project"])
    return [
        f"binary log: {len(workload.files)} files, {mb:.0f} MB of row events (built in"
        f" {built:.0f} s); archived as {stored / 1e6:.0f} MB of zstd (logs in {logs})",
        f"archive of {len(files)} closed files ({raw / 1e6:.0f} MB), median of {repeat},"
        " interleaved (all runs in brackets)",
        row("archiver: warm handler, one scheduled run", times["project"]),
        row("by hand: mariadb-binlog --raw, then zstd -1", times["baseline"]),
        f"  each run also archives the file its own FLUSH closes: {len(extra)} more"
        f" ({sum(s.raw_bytes for s in extra)} bytes)",
        f"replay of the workload's {len(workload.files)} files into a reset server,"
        f" median of {len(replays['project'])} (CHECKSUM TABLE equal to the source's each time)",
        row("replay: the Replay step's adapters, segments in S3", replays["project"]),
        row("by hand: mariadb-binlog FILES | mariadb", replays["baseline"]),
        "",
        f"archive / by hand        {archive_ratio:5.2f}x  {verdict(archive_ratio, ARCHIVE_TARGET)}",
        f"replay / by hand         {replay_ratio:5.2f}x  {verdict(replay_ratio, REPLAY_TARGET)}"
        f"  ({replay_mbs:.1f} MB/s of binary log)",
        *(["", *runs.traced] if runs.traced else []),
    ]


def report() -> None:
    for line in ["", *run(), ""]:
        print(line, flush=True)


def replay_main(spec: dict[str, Any]) -> None:
    """The child: the segments replayed as the Replay step does; its time and outcome as JSON."""
    from platform_backup.adapters.binlog_replay import MariaDbBinlogReplayer
    from platform_backup.adapters.mariadb import DbConnection
    from platform_backup.adapters.segment_store import S3SegmentStore
    from platform_backup.domain.recovery import SegmentCopy

    store = S3SegmentStore(os.environ.get("AWS_REGION", "us-east-1"))

    def reader(segment: dict[str, Any]) -> Callable[[], Iterator[bytes]]:
        copy = SegmentCopy(
            segment["storageId"], "local", segment["bucket"], segment["region"], segment["key"]
        )
        return lambda: store.stream(copy, segment["sha256"])

    readers = [reader(s) for s in spec["segments"]]
    conn = DbConnection("127.0.0.1", int(spec["port"]), "root", "")
    started = time.perf_counter()
    replayed = MariaDbBinlogReplayer().replay(
        conn,
        readers,
        start_position=int(spec["startPosition"]),
        stop_before=datetime.now(UTC) + timedelta(days=1),
        names={binlog_data.DATABASE: binlog_data.DATABASE},
        progress=lambda _done: None,
        on_start=lambda: None,
    )
    seconds = time.perf_counter() - started
    answer = {
        "seconds": seconds,
        "rawBytes": replayed.raw_bytes,
        "exitCode": replayed.exit_code,
        "stderr": replayed.stderr,
    }
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["replay"]:
        replay_main(json.loads(sys.argv[2]))
    else:
        report()
