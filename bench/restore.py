"""``make bench``, restore: the benchmark database's dump restored into a new database the classic
way (``zstd -dc dump | mariadb``) and by the restore workflow's Restore step (the object streamed
from S3, decompressed, its database names rewritten and fed to the ``mariadb`` client, by the
same adapters the step uses), in the same run, on the same dump; then the throughput, and from
it the largest database one restore handles within the restore function's time limit.

The dump is one object made by the executor's pipeline into the S3 server of ``env``. The
classic restore gets that dump renamed to its new database beforehand (untimed, so its timed
part is exactly the classic pipeline); the project's renames on the fly, inside its time. The
project's restore runs in a child process (``python -m bench.restore apply``), apart from the S3
server's threads; its time is measured there from the first request to S3 to the client's exit,
as a warm invocation of the step spends it (the interpreter's start and imports are the
function's cold start, which Lambda does not count against the invocation's time limit).

Standalone: ``python -m bench.restore`` with BENCH_DB (an existing benchmark database, default
bench_1000000, built by ``python -m bench``) and MARIADB_OPTS (client options, default
"-h 127.0.0.1 -u root"); it starts its own moto S3 server.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import zstandard

from devstack.template import load_template, properties
from platform_backup.adapters.compression import LEVELS
from platform_backup.adapters.dump_pipeline import run_backup
from platform_backup.adapters.dump_rewrite import DumpRewriter
from platform_backup.adapters.failover_upload import Destination
from platform_backup.adapters.mariadb import DbConnection
from platform_backup.adapters.mysql_restore import MariaDbTarget
from platform_backup.adapters.restore_source import CHUNK, S3BackupSource
from platform_backup.domain.backup import BackupCopy
from platform_backup.domain.frame_index import FrameIndex, restore_phases
from platform_backup.domain.progress import TIME_MARGIN_SECONDS
from platform_backup.domain.time_budget import rate_text
from platform_backup.settings import (
    DEFAULT_RESTORE_APPLY_RATE,
    DEFAULT_RESTORE_DEFER_KEYS_FROM,
    RESTORE_DEFER_KEYS_FROM,
)

REGION = "us-east-1"
# Issue 15: the parallel restore against the classic one, no slower than myloader's 2 threads;
# one small table read as under 1% of the object in under 5% of the full restore's time; the
# framed backup against the unframed one.
TARGET = 0.67
TABLE_BYTES_TARGET = 0.01
TABLE_TIME_TARGET = 0.05
FRAMED_TIME_TARGET = 1.03
FRAMED_BYTES_TARGET = 1.01
WIDTH = int(os.environ.get("BENCH_RESTORE_WIDTH", min(os.cpu_count() or 1, 4)))
# Dirty InnoDB pages left by one restore would be flushed during the next one: each restore
# starts once the server has written back what it flushes by itself (below its adaptive
# flushing mark it keeps a few hundred pages dirty), or after this long.
SETTLE_SECONDS = 120
# Each way twice, in a mirrored order: the best of each, none always first.
ORDER = ("classic", "project", "myloader", "myloader", "project", "classic")


def mariadb_opts() -> list[str]:
    return shlex.split(os.environ.get("MARIADB_OPTS", "-h 127.0.0.1 -u root"))


def connection() -> DbConnection:
    opts = mariadb_opts()

    def option(flag: str, default: str) -> str:
        return opts[opts.index(flag) + 1] if flag in opts else default

    return DbConnection(
        option("-h", "127.0.0.1"), int(option("-P", "3306")), option("-u", "root"), ""
    )


def query(statement: str) -> str:
    done = subprocess.run(
        ["mariadb", *mariadb_opts(), "--batch", "--skip-column-names", "-e", statement],
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


def restore_timeout() -> int:
    """The restore function's Timeout in template.yaml (or the template's global one)."""
    template = load_template()
    declared = properties(template.resources("AWS::Serverless::Function")["RestoreFunction"])
    return int(declared.get("Timeout") or template.function_globals()["Timeout"])


def s3_client(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def settle() -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    seen: list[int] = []
    while time.monotonic() < deadline:
        dirty = query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
        seen.append(int(dirty.split()[-1]))
        if seen[-1] < 100 or (len(seen) > 3 and seen[-1] >= seen[-4]):
            return
        time.sleep(1)


def prepare_classic(s3: Any, bucket: str, key: str, names: dict[str, str], path: Path) -> None:
    """The dump as the classic restore would have it: already naming its new database."""
    rewriter = DumpRewriter(names, "new")
    decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with path.open("wb") as out:
        compressor = zstandard.ZstdCompressor(level=LEVELS["zstd"]).stream_writer(out)
        for chunk in body.iter_chunks(CHUNK):
            compressor.write(rewriter.feed(decompressor.decompress(chunk)))
        compressor.write(rewriter.flush())
        compressor.flush(zstandard.FLUSH_FRAME)
    if not rewriter.completed:
        raise SystemExit("the benchmark dump has no completion line")


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(argv)}")
    return seconds, done.stdout.decode()


def checksums(database: str) -> list[str]:
    tables = query(
        "SELECT TABLE_NAME FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1"
    ).split()
    found = query(f"CHECKSUM TABLE {', '.join(f'`{database}`.`{t}`' for t in tables)}")
    return [line.split("\t", 1)[1] for line in found.splitlines()]


@dataclass(frozen=True)
class Dumped:
    bucket: str
    key: str
    raw_bytes: int
    compressed_bytes: int
    sha256: str
    compression: str


def restore_classic(dump: Path) -> float:
    command = f"zstd -dc {shlex.quote(str(dump))} | {shlex.join(['mariadb', *mariadb_opts()])}"
    return timed(["bash", "-o", "pipefail", "-c", command])[0]


def mydumper_args() -> list[str]:
    opts, args = mariadb_opts(), []
    for flag, name in (("-h", "--host"), ("-P", "--port"), ("-u", "--user")):
        if flag in opts:
            args += [name, opts[opts.index(flag) + 1]]
    return args


def dump_mydumper(db: str, directory: Path) -> None:
    """mydumper's output of the same database (untimed): what myloader restores. Without its
    global read lock: nothing writes the bench's database, and the shared server's other jobs
    (whose long queries would also make mydumper give up) must not wait on it."""
    options = ["-t", "2", "-G", "-E", "-R", "--no-locks"]
    timed(["mydumper", *mydumper_args(), "-B", db, "-o", str(directory), *options])


def restore_myloader(directory: Path, into: str) -> float:
    return timed(["myloader", *mydumper_args(), "-d", str(directory), "-B", into, "-t", "2", "-o"])[
        0
    ]


def restore_project(
    dumped: Dumped, names: dict[str, str], env: dict[str, str], tables: list[str] | None = None
) -> dict[str, Any]:
    spec = {
        "bucket": dumped.bucket,
        "key": dumped.key,
        "sha256": dumped.sha256,
        "compression": dumped.compression,
        "names": names,
        "tables": tables,
    }
    out = timed([sys.executable, "-m", "bench.restore", "apply", json.dumps(spec)], env)[1]
    applied: dict[str, Any] = json.loads(out)
    if tables is None and applied["rawBytes"] != dumped.raw_bytes:
        raise SystemExit(f"the restore applied {applied['rawBytes']} of {dumped.raw_bytes}")
    return applied


def backup(db: str, bucket: str, key: str, s3: Any, framed: bool) -> tuple[float, Dumped]:
    started = time.perf_counter()
    result = run_backup(
        connection(),
        [db],
        [Destination(bucket, key, s3)],
        backup_id=key,
        plan_id="bench",
        framed=framed,
    )
    seconds = time.perf_counter() - started
    dumped = Dumped(
        bucket, key, result.raw_bytes, result.compressed_bytes, result.sha256, result.compression
    )
    return seconds, dumped


def smallest_table(db: str) -> str:
    return query(
        "SELECT TABLE_NAME FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = '{db}' AND TABLE_TYPE = 'BASE TABLE' AND TABLE_ROWS > 0"
        " ORDER BY DATA_LENGTH, TABLE_NAME LIMIT 1"
    ).strip()


@dataclass(frozen=True)
class Figures:
    """One data set's measurements: backups framed and not, the three full restores, one table."""

    db: str
    dumped: Dumped
    times: dict[str, list[float]]
    # The ways whose restored tables differ from the source's (CHECKSUM TABLE).
    differing: list[str]
    backups: dict[str, list[float]]
    sizes: dict[str, int]
    table: str
    one: dict[str, Any]
    table_same: bool
    # A table named by the data set (a small one), not merely the smallest of the database.
    table_named: bool

    @property
    def project(self) -> float:
        return min(self.times["project"])

    def ratios(self) -> dict[str, float]:
        return {
            "project / classic": self.project / min(self.times["classic"]),
            "project / myloader": self.project / min(self.times["myloader"]),
            "one table: bytes read / object": self.one["bytesRead"] / self.dumped.compressed_bytes,
            "one table: time / full restore": self.one["seconds"] / self.project,
            "framed / unframed backup: time": min(self.backups["framed"])
            / min(self.backups["unframed"]),
            "framed / unframed backup: bytes": self.sizes["framed"] / self.sizes["unframed"],
        }


def run(db: str, env: dict[str, str], table: str | None = None) -> Figures:
    """The framed backup against the unframed one, then ``db`` restored the classic way, by
    the project (parallel) and by myloader into new databases (dropped after), and one table
    alone (``table``, else the smallest with rows). ``env`` holds the AWS_* variables of the S3
    server to use."""
    if not shutil.which("myloader") or not shutil.which("mydumper"):
        raise SystemExit(
            "the restore bench needs mydumper and myloader: apt-get install -y mydumper"
        )
    run_id = uuid.uuid4().hex[:8]
    bucket = f"pdb-bench-restore-{run_id}"
    ways = ("classic", "project", "myloader")
    into = {way: f"pdbbench_{run_id}_{way}" for way in ("classic", "project", "myloader", "table")}
    s3 = s3_client(env)
    s3.create_bucket(Bucket=bucket)
    workdir = Path(tempfile.mkdtemp(prefix="pdb-bench-restore-"))
    try:
        backups: dict[str, list[float]] = {"framed": [], "unframed": []}
        sizes: dict[str, int] = {}
        dumped: Dumped | None = None
        for kind in ("framed", "unframed", "unframed", "framed"):
            seconds, made = backup(db, bucket, f"restore/{db}-{kind}.sql.zst", s3, kind == "framed")
            backups[kind].append(seconds)
            sizes[kind] = made.compressed_bytes
            if kind == "framed":
                dumped = made
        assert dumped is not None
        classic_dump = workdir / "dump.sql.zst"
        prepare_classic(s3, bucket, dumped.key, {db: into["classic"]}, classic_dump)
        dump_mydumper(db, workdir / "mydumper")
        source = checksums(db)
        times: dict[str, list[float]] = {way: [] for way in ways}
        differing: list[str] = []
        for way in ORDER:
            settle()
            if way == "classic":
                times[way].append(restore_classic(classic_dump))
            elif way == "myloader":
                times[way].append(restore_myloader(workdir / "mydumper", into[way]))
            else:
                times[way].append(float(restore_project(dumped, {db: into[way]}, env)["seconds"]))
            if checksums(into[way]) != source and way not in differing:
                differing.append(way)
            drop(into[way])
        chosen = table or smallest_table(db)
        settle()
        one = restore_project(dumped, {db: into["table"]}, env, [f"{db}.{chosen}"])
        table_same = (
            query(f"CHECKSUM TABLE `{into['table']}`.`{chosen}`").split()[-1]
            == query(f"CHECKSUM TABLE `{db}`.`{chosen}`").split()[-1]
        )
        return Figures(
            db, dumped, times, differing, backups, sizes, chosen, one, table_same, table is not None
        )
    finally:
        drop(*into.values())
        shutil.rmtree(workdir, ignore_errors=True)
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


def drop(*databases: str) -> None:
    query("; ".join(f"DROP DATABASE IF EXISTS `{name}`" for name in databases))


def report(figures: Figures) -> list[str]:
    db, dumped, times, backups, sizes = (
        figures.db,
        figures.dumped,
        figures.times,
        figures.backups,
        figures.sizes,
    )
    differing, table, one, table_same = (
        figures.differing,
        figures.table,
        figures.one,
        figures.table_same,
    )
    classic, project, myloader = (min(times[w]) for w in ("classic", "project", "myloader"))
    ratio = project / classic
    rate = dumped.raw_bytes / project
    budget = restore_timeout() - TIME_MARGIN_SECONDS
    largest = rate * budget

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    def table_target(ok: bool) -> str:
        return verdict(ok) if figures.table_named else "no target: merely the smallest table"

    def line(label: str, way: str) -> str:
        runs = ", ".join(f"{t:.2f}" for t in times[way])
        return f"{label:58s} {min(times[way]):7.2f} s  (best; runs {runs})"

    framed_time = min(backups["framed"]) / min(backups["unframed"])
    framed_bytes = sizes["framed"] / sizes["unframed"]
    read_share = one["bytesRead"] / dumped.compressed_bytes
    time_share = one["seconds"] / project
    read_verdict = table_target(read_share < TABLE_BYTES_TARGET)
    time_verdict = table_target(time_share < TABLE_TIME_TARGET)
    return [
        f"backup of `{db}` with frames and index / without: time {framed_time:.3f}x (best of 2"
        f" each: {min(backups['framed']):.2f} s / {min(backups['unframed']):.2f} s; target <= "
        f"{FRAMED_TIME_TARGET}: {verdict(framed_time <= FRAMED_TIME_TARGET)}), bytes "
        f"{framed_bytes:.4f}x ({sizes['framed']} / {sizes['unframed']}; target <= "
        f"{FRAMED_BYTES_TARGET}: {verdict(framed_bytes <= FRAMED_BYTES_TARGET)})",
        f"restore of `{db}`: {dumped.raw_bytes / 1e9:.2f} GB of SQL, a "
        f"{dumped.compressed_bytes / 1e6:.0f} MB zstd object; each way {len(ORDER) // 3} times,"
        " mirrored order",
        line("classic: zstd -dc dump | mariadb (dump renamed beforehand)", "classic"),
        line(f"project: Restore step, parallel on {WIDTH} connections", "project"),
        line("myloader -t 2 (mydumper's dump of the same database)", "myloader"),
        f"project / classic        {ratio:5.2f}x  (target <= {TARGET}: {verdict(ratio <= TARGET)})",
        f"project / myloader       {project / myloader:5.2f}x  (target <= 1.00: "
        f"{verdict(project <= myloader)})",
        "every restored table identical to the source (CHECKSUM TABLE): "
        + (f"NO: {', '.join(differing)}" if differing else "yes"),
        f"one table (`{table}`) alone: {one['bytesRead']} bytes read, {read_share:.4%} of the "
        f"object (target < {TABLE_BYTES_TARGET:.0%}: {read_verdict}),"
        f" {one['seconds']:.2f} s, {time_share:.2%} of the full restore (target < "
        f"{TABLE_TIME_TARGET:.0%}: {time_verdict}); identical: " + ("yes" if table_same else "NO"),
        f"restore throughput: {rate / 1e6:.1f} MB/s of SQL; the restore function has "
        f"{budget:.0f} s ({budget + TIME_MARGIN_SECONDS:.0f} s timeout - "
        f"{TIME_MARGIN_SECONDS:.0f} s margin)",
        f"one restore handles a dump of up to {largest / 1e9:.1f} GB of SQL "
        f"(about {largest * dumped.compressed_bytes / dumped.raw_bytes / 1e9:.1f} GB compressed"
        " at this data's ratio)",
        "until a restore of the plan is measured, the default "
        f"{rate_text(DEFAULT_RESTORE_APPLY_RATE)} admits "
        f"{DEFAULT_RESTORE_APPLY_RATE * budget / 1e9:.1f} GB of SQL (larger is refused up front "
        "with the figures)",
    ]


def apply_from_s3(spec: dict[str, Any]) -> dict[str, Any]:
    """The Restore step's data path: a framed backup's frames read by range, checked and
    applied in phases on WIDTH connections; or only the chosen tables' frames."""
    started = time.perf_counter()
    copy = BackupCopy(
        storageId="bench",
        role="local",
        bucket=spec["bucket"],
        region=REGION,
        key=spec["key"],
        manifestKey=spec["key"] + ".manifest.json",
    )
    source = S3BackupSource(REGION)
    index = FrameIndex.from_manifest(source.manifest(copy))
    if index is None:
        raise SystemExit("the benchmark backup has no frame index")
    read = [0]

    def frames(chosen: Any, sql: bool = False) -> Iterator[bytes]:
        base = read[0]

        def count(total: int) -> None:
            read[0] = base + total

        return source.frames(copy, None, chosen, count, sql)

    # The restore function's setting, as it reads it (the default, else the variable).
    target = MariaDbTarget(
        int(float(os.environ.get(RESTORE_DEFER_KEYS_FROM, DEFAULT_RESTORE_DEFER_KEYS_FROM)))
    )
    if spec.get("tables"):
        applied = target.apply(
            connection(),
            frames(index.selection(spec["tables"])),
            compression="zstd",
            names=spec["names"],
            existing="new",
            progress=lambda _applied: None,
            on_start=lambda: None,
        )
        ok = applied.exit_code == 0
    else:
        header = [f for f in index.frames if f.section.kind == "header"]
        applied = target.apply_frames(
            connection(),
            header,
            restore_phases(index),
            partial(frames, sql=True),
            names=spec["names"],
            existing="new",
            width=WIDTH,
            progress=lambda _applied: None,
            on_start=lambda: None,
        )
        ok = applied.exit_code == 0 and applied.completed
    if not ok:
        raise SystemExit(f"the restore failed (exit {applied.exit_code}): {applied.stderr}")
    return {
        "rawBytes": applied.raw_bytes,
        "bytesRead": read[0],
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    # Imported here: the child that times the restore has no use for moto (it takes a second).
    from devstack.aws import EmbeddedAws

    db = os.environ.get("BENCH_DB", "bench_1000000")
    stack = EmbeddedAws(port=0, region=REGION)
    stack.start()
    try:
        for line in report(run(db, dict(os.environ))):
            print(line, flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["apply"]:
        print(json.dumps(apply_from_s3(json.loads(sys.argv[2]))))
    else:
        main()
