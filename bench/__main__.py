"""``make bench``: in one run, on the same data, into the same local S3 (a moto server in this
process), the times of the dump tool alone (the floor), the classic cron script (gzip), the same
script with zstd, and the executor's pipeline; then the pipeline's peak memory at 1x and 3x data.

Environment: BENCH_ROWS (resource rows of the 1x database, default 3000000; the 3x database has
three times as many), BENCH_DB (name prefix, default "bench"; the row count is appended),
MARIADB_OPTS (client options, default "-h 127.0.0.1 -u root"), BENCH_SKIP_3X=1 to skip the 3x
database (it takes a while to build), BENCH_REPEAT (runs of each contender, interleaved, default
3; the median counts: on two shared cores one run varies by several percent).

The pipeline's time is the backup as a warm Lambda invocation runs it, from the call to its
return (modules imported and the S3 client made beforehand, as at the function's init); the
process's whole wall time, interpreter start included, is printed beside it. The S3 server is
moto as the local stack runs it (devstack/moto_fidelity.py: objects in memory and multipart
completion in linear time), the same for the scripts and the pipeline.

Sections, in order (BENCH_ONLY=<name> runs one alone): coldstart (bench/coldstart.py: each
function's cold start beside a boto3 + Logger handler, no MariaDB), pipeline (this module's
contenders and memory), executor (bench/executor_e2e.py: the whole warm executor handler beside the
floor, and its fixed per-run cost), restore (bench/restore.py: the framed backup against the
unframed one; the parallel restore against `zstd -dc | mariadb` and myloader -t 2; one table
alone; needs mydumper; on the 1x database and on the ZStack-shaped one of bench/zstack_data.py,
BENCH_ZSTACK_MB of SQL, default 1024, then side by side; BENCH_RESTORE_SETS=bench or zstack runs
one), retention (bench/retention.py, no MariaDB), binlog (bench/binlog.py: point-
in-time recovery's archive and replay of BENCH_BINLOG_MB, default 1024, MiB of binary log beside
the same work by hand, on private servers), recovery-point (bench/recovery_point.py: on the local
stack with a 1-minute archive interval, the time from a commit until the recovery window reaches
it; about 5 minutes).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    binlog,
    coldstart,
    executor_e2e,
    recovery_point,
    restore,
    restore_summary,
    retention,
    zstack_data,
)
from devstack.aws import EmbeddedAws
from platform_backup.adapters.dump_process import DUMP_OPTIONS, OUTPUT_BUFFER

MAKE_DB = Path(__file__).resolve().parents[2] / "shared" / "bench" / "make-bench-db.sh"
BUCKET = "pdb-bench"
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss: int
    stdout: str


def tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants, now."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def measure(argv: list[str], env: dict[str, str] | None = None, sample: bool = False) -> Measured:
    """Wall time; with ``sample``, peak resident memory too (the whole process tree, every 20 ms).
    Sampling walks /proc 50 times a second, which costs the measured run about 0.3 s on two
    cores: timed runs do without it, and memory is measured in runs of its own."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    peak = 0
    done = threading.Event()

    def sampling() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, tree_rss(proc.pid))

    sampler = threading.Thread(target=sampling, daemon=True) if sample else None
    if sampler:
        sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    if sampler:
        sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {shlex.join(argv)}")
    return Measured(seconds, peak, out.decode())


def mariadb_opts() -> list[str]:
    return shlex.split(os.environ.get("MARIADB_OPTS", "-h 127.0.0.1 -u root"))


def ensure_db(name: str, rows: int) -> None:
    """Builds the benchmark database unless one with exactly ``rows`` resource rows exists."""
    probe = subprocess.run(
        ["mariadb", *mariadb_opts(), "-N", "-B", "-e", f"SELECT COUNT(*) FROM `{name}`.ResourceVO"],
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0 and probe.stdout.strip() == str(rows).encode():
        print(f"reusing `{name}` ({rows} resource rows)")
        return
    print(f"building `{name}` ({rows} resource rows) ...", flush=True)
    env = {**os.environ, "MARIADB_OPTS": shlex.join(mariadb_opts())}
    subprocess.run(["bash", str(MAKE_DB), str(rows), name], check=True, env=env)


def upload_command(endpoint: str, key: str) -> tuple[str, str]:
    """The scripts' upload step (shell text) and its label."""
    aws = shutil.which("aws") or next(
        (p for p in ("/root/.pyenv/shims/aws",) if Path(p).exists()), None
    )
    if aws:
        command = [aws, "--endpoint-url", endpoint, "s3", "cp", "-", f"s3://{BUCKET}/{key}"]
        return shlex.join(command), "aws s3 cp -"
    # Without the AWS CLI, the closest equivalent: boto3's streaming upload_fileobj from stdin.
    code = "import sys,boto3; boto3.client('s3').upload_fileobj(sys.stdin.buffer, *sys.argv[1:])"
    command = [sys.executable, "-c", code, BUCKET, key]
    return shlex.join(command), "boto3 upload_fileobj(stdin), as no aws CLI was found"


def connection_args() -> list[str]:
    opts, args = mariadb_opts(), []
    for flag, name in (("-h", "--host"), ("-P", "--port"), ("-u", "--user")):
        if flag in opts:
            args += [name, opts[opts.index(flag) + 1]]
    return args


def run_pipeline(
    db: str, key: str, env: dict[str, str], sample: bool = False
) -> tuple[Measured, dict[str, Any]]:
    argv = [sys.executable, "-m", "bench.pipeline_run", *connection_args()]
    measured = measure([*argv, "--bucket", BUCKET, "--key", key, db], env, sample)
    return measured, json.loads(measured.stdout)


def median(measured: list[Measured]) -> Measured:
    return sorted(measured, key=lambda m: m.seconds)[len(measured) // 2]


def mib(size: int) -> str:
    return f"{size / (1 << 20):7.1f} MiB"


def bench_db() -> tuple[str, int]:
    """The 1x database's name and resource rows. Named by size, so that one database can serve
    as another run's 3x."""
    rows = int(os.environ.get("BENCH_ROWS", "3000000"))
    return f"{os.environ.get('BENCH_DB', 'bench')}_{rows}", rows


def floor_command(db: str) -> list[str]:
    """The floor: the dump tool as the executor runs it (output buffer included), > /dev/null."""
    dump = shlex.join(["mariadb-dump", *mariadb_opts(), *DUMP_OPTIONS, "--databases", db])
    return ["bash", "-o", "pipefail", "-c", f"{shlex.join(OUTPUT_BUFFER)} {dump} > /dev/null"]


def main() -> None:
    db, rows = bench_db()
    skip_3x = os.environ.get("BENCH_SKIP_3X") == "1"
    db_3x = f"{os.environ.get('BENCH_DB', 'bench')}_{rows * 3}"
    ensure_db(db, rows)
    if not skip_3x:
        ensure_db(db_3x, rows * 3)

    # The local stack's S3 (moto as devstack runs it), pointed at by this process's environment
    # and so by every command it starts.
    stack = EmbeddedAws(port=0)
    stack.start()
    endpoint, env = stack.endpoint, dict(os.environ)
    stack.client("s3").create_bucket(Bucket=BUCKET)
    try:
        dump = shlex.join(["mariadb-dump", *mariadb_opts(), *DUMP_OPTIONS, "--databases", db])
        upload_label = upload_command(endpoint, "")[1]

        def script(compress: str, key: str) -> list[str]:
            upload = upload_command(endpoint, key)[0]
            return ["bash", "-o", "pipefail", "-c", f"{dump} | {compress} | {upload}"]

        # The floor runs the tool as the executor does, output buffer included; the scripts as an
        # operator would write them.
        floor_dump = shlex.join([*OUTPUT_BUFFER, *shlex.split(dump)])
        print(f"dump options (floor, scripts and pipeline alike): {shlex.join(DUMP_OPTIONS)}")
        print(f"floor: {floor_dump} > /dev/null")
        print(f"upload in the scripts: {upload_label}; S3: moto server at {endpoint}\n", flush=True)

        process_walls: list[float] = []
        report: dict[str, Any] = {}

        def pipeline() -> Measured:
            nonlocal report
            process, report = run_pipeline(db, "pipeline.sql.zst", env)
            process_walls.append(process.seconds)
            return Measured(report["seconds"], process.peak_rss, process.stdout)

        contenders: dict[str, Callable[[], Measured]] = {
            "floor": lambda: measure(floor_command(db)),
            "classic": lambda: measure(script("gzip -6", "classic.sql.gz"), env),
            "zstd script": lambda: measure(script("zstd -3 -q", "script.sql.zst"), env),
            "pipeline": pipeline,
        }
        repeat = int(os.environ.get("BENCH_REPEAT", "3"))
        runs: dict[str, list[Measured]] = {name: [] for name in contenders}
        for _ in range(repeat):
            for name, run in contenders.items():
                runs[name].append(run())
        results = {name: median(measured) for name, measured in runs.items()}

        labels = {
            "floor": "floor: mariadb-dump > /dev/null",
            "classic": "classic: mariadb-dump | gzip -6 | upload",
            "zstd script": "script: mariadb-dump | zstd -3 | upload",
            "pipeline": "executor pipeline (dump->zstd->sha256->multipart)",
        }
        print(f"data: `{db}`, {rows} resource rows, {report['rawBytes'] / 1e9:.2f} GB of SQL,")
        print(f"      pipeline object {report['compressedBytes'] / 1e6:.0f} MB\n")
        print(f"median of {repeat} runs each (all runs, in seconds, in brackets)")
        for name, m in results.items():
            every = " ".join(f"{r.seconds:.2f}" for r in runs[name])
            print(f"{labels[name]:52s} {m.seconds:7.2f} s   [{every}]")
        walls = " ".join(f"{w:.2f}" for w in process_walls)
        print(f"{'  the pipeline process, interpreter start included':52s} [{walls}]")
        ours = results["pipeline"].seconds
        ratios = [
            ("pipeline / floor", ours / results["floor"].seconds, "<= 1.25", 1.25, True),
            ("classic / pipeline", results["classic"].seconds / ours, ">= 2.0", 2.0, False),
            (
                "zstd script / pipeline",
                results["zstd script"].seconds / ours,
                ">= 1.25",
                1.25,
                False,
            ),
        ]
        print()
        for label, value, target, bound, at_most in ratios:
            met = value <= bound if at_most else value >= bound
            print(f"{label:24s} {value:5.2f}x  (target {target}: {'met' if met else 'MISSED'})")

        small = run_pipeline(db, "pipeline-mem.sql.zst", env, sample=True)[0].peak_rss
        print(f"\npipeline peak memory (process tree, mariadb-dump included): 1x {mib(small)}")
        if not skip_3x:
            big, big_report = run_pipeline(db_3x, "pipeline-3x.sql.zst", env, sample=True)
            growth = big.peak_rss / small
            print(
                f"{'':59s} 3x {mib(big.peak_rss)} ({big_report['rawBytes'] / 1e9:.2f} GB of SQL,"
                f" {big.seconds:.1f} s)"
            )
            verdict = "met" if growth <= 1.2 else "MISSED"
            print(f"3x / 1x peak memory      {growth:5.2f}x  (target <= 1.20: {verdict})")
        print(flush=True)
    finally:
        stack.stop()


def cold_starts() -> None:
    for line in coldstart.report():
        print(line, flush=True)
    print(flush=True)


def restore_section() -> None:
    """Issue 15's figures on each data set of BENCH_RESTORE_SETS (default "bench,zstack": the
    1x database, then the ZStack-shaped one of BENCH_ZSTACK_MB), then side by side."""
    chosen = os.environ.get("BENCH_RESTORE_SETS", "bench,zstack").split(",")
    if unknown := set(chosen) - {"bench", "zstack"}:
        raise SystemExit(f"BENCH_RESTORE_SETS: unknown {', '.join(sorted(unknown))}")
    sets: list[tuple[str, str | None]] = []
    if "bench" in chosen:
        db, rows = bench_db()
        ensure_db(db, rows)
        sets.append((db, None))
    if "zstack" in chosen:
        megabytes = int(os.environ.get("BENCH_ZSTACK_MB", "1024"))
        sets.append((zstack_data.ensure(megabytes), zstack_data.SMALL_TABLE))
    stack = EmbeddedAws(port=0, region="us-east-1")
    stack.start()
    measured = []
    try:
        for db, table in sets:
            started = time.perf_counter()
            measured.append(restore.run(db, dict(os.environ), table))
            lines = restore.report(measured[-1])
            lines.append(
                f"(this data set's restore section took {time.perf_counter() - started:.0f} s)"
            )
            for line in ["", *lines]:
                print(line, flush=True)
    finally:
        stack.stop()
    for line in ["", *restore_summary.side_by_side(measured), ""]:
        print(line, flush=True)


def executor() -> None:
    db, rows = bench_db()
    ensure_db(db, rows)
    floor = lambda name: measure(floor_command(name)).seconds  # noqa: E731
    lines = executor_e2e.run(db, floor, ["mariadb", *mariadb_opts()])
    for line in ["", *lines, ""]:
        print(line, flush=True)


SECTIONS: dict[str, Callable[[], None]] = {
    "coldstart": cold_starts,
    "pipeline": main,
    "executor": executor,
    "restore": restore_section,
    "retention": retention.report,
    "binlog": binlog.report,
    "recovery-point": recovery_point.report,
}

if __name__ == "__main__":
    only = os.environ.get("BENCH_ONLY")
    if only is not None and only not in SECTIONS:
        raise SystemExit(f"BENCH_ONLY={only}: one of {', '.join(SECTIONS)}")
    for name, section in SECTIONS.items():
        if only in (None, name):
            section()
