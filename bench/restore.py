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
from platform_backup.domain.progress import TIME_MARGIN_SECONDS
from platform_backup.domain.time_budget import rate_text
from platform_backup.settings import DEFAULT_RESTORE_APPLY_RATE

REGION = "us-east-1"
TARGET = 1.1
# Dirty InnoDB pages left by one restore would be flushed during the next one: each restore
# starts once the server has written back what it flushes by itself (below its adaptive
# flushing mark it keeps a few hundred pages dirty), or after this long.
SETTLE_SECONDS = 120
# Each way twice, in the order ABBA: the best of each, neither always first.
ORDER = ("classic", "project", "project", "classic")


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
    rewriter = DumpRewriter(names, replace_existing=False)
    decompressor = zstandard.ZstdDecompressor().decompressobj()
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


def restore_project(dumped: Dumped, names: dict[str, str], env: dict[str, str]) -> float:
    spec = {
        "bucket": dumped.bucket,
        "key": dumped.key,
        "sha256": dumped.sha256,
        "compression": dumped.compression,
        "names": names,
    }
    out = timed([sys.executable, "-m", "bench.restore", "apply", json.dumps(spec)], env)[1]
    applied = json.loads(out)
    if applied["rawBytes"] != dumped.raw_bytes:
        raise SystemExit(f"the restore applied {applied['rawBytes']} of {dumped.raw_bytes}")
    return float(applied["seconds"])


def run(db: str, env: dict[str, str]) -> list[str]:
    """Restores ``db``'s dump both ways into new databases (dropped after); lines to print.
    ``env`` holds the AWS_* variables of the S3 server to use."""
    run_id = uuid.uuid4().hex[:8]
    bucket, key = f"pdb-bench-restore-{run_id}", f"restore/{db}.sql.zst"
    into = {"classic": f"pdbbench_{run_id}_classic", "project": f"pdbbench_{run_id}_project"}
    s3 = s3_client(env)
    s3.create_bucket(Bucket=bucket)
    workdir = Path(tempfile.mkdtemp(prefix="pdb-bench-restore-"))
    try:
        result = run_backup(
            connection(), [db], [Destination(bucket, key, s3)], backup_id=run_id, plan_id="bench"
        )
        dumped = Dumped(
            bucket,
            key,
            result.raw_bytes,
            result.compressed_bytes,
            result.sha256,
            result.compression,
        )
        classic_dump = workdir / "dump.sql.zst"
        prepare_classic(s3, bucket, key, {db: into["classic"]}, classic_dump)
        source = checksums(db)
        times: dict[str, list[float]] = {"classic": [], "project": []}
        identical = True
        for way in ORDER:
            settle()
            if way == "classic":
                times[way].append(restore_classic(classic_dump))
            else:
                times[way].append(restore_project(dumped, {db: into[way]}, env))
            identical = identical and checksums(into[way]) == source
            drop(into[way])
        return report(db, dumped, times, identical)
    finally:
        drop(*into.values())
        shutil.rmtree(workdir, ignore_errors=True)
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


def drop(*databases: str) -> None:
    query("; ".join(f"DROP DATABASE IF EXISTS `{name}`" for name in databases))


def report(db: str, dumped: Dumped, times: dict[str, list[float]], identical: bool) -> list[str]:
    classic, project = min(times["classic"]), min(times["project"])
    ratio = project / classic
    rate = dumped.raw_bytes / project
    budget = restore_timeout() - TIME_MARGIN_SECONDS
    largest = rate * budget
    met = "met" if ratio <= TARGET else "MISSED"

    def line(label: str, way: str) -> str:
        runs = ", ".join(f"{t:.2f}" for t in times[way])
        return f"{label:58s} {min(times[way]):7.2f} s  (best; runs {runs})"

    return [
        f"restore of `{db}`: {dumped.raw_bytes / 1e9:.2f} GB of SQL, a "
        f"{dumped.compressed_bytes / 1e6:.0f} MB zstd object; each way {len(ORDER) // 2} times,"
        " alternating",
        line("classic: zstd -dc dump | mariadb (dump renamed beforehand)", "classic"),
        line("project: Restore step (S3 -> zstd -> rename -> mariadb)", "project"),
        f"project / classic        {ratio:5.2f}x  (target <= {TARGET}: {met})",
        "every restored table identical to the source (CHECKSUM TABLE): "
        + ("yes" if identical else "NO"),
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
    """The Restore step's data path: the source's verified stream into the target's apply."""
    started = time.perf_counter()
    copy = BackupCopy(
        storageId="bench",
        role="local",
        bucket=spec["bucket"],
        region=REGION,
        key=spec["key"],
        manifestKey=spec["key"] + ".manifest.json",
    )
    chunks: Iterator[bytes] = S3BackupSource(REGION).stream(copy, None, spec["sha256"])
    applied = MariaDbTarget().apply(
        connection(),
        chunks,
        compression=spec["compression"],
        names=spec["names"],
        replace_existing=False,
        progress=lambda _applied: None,
        on_start=lambda: None,
    )
    if applied.exit_code != 0 or not applied.completed:
        raise SystemExit(f"the restore failed (exit {applied.exit_code}): {applied.stderr}")
    return {"rawBytes": applied.raw_bytes, "seconds": time.perf_counter() - started}


def main() -> None:
    # Imported here: the child that times the restore has no use for moto (it takes a second).
    from devstack.aws import EmbeddedAws

    db = os.environ.get("BENCH_DB", "bench_1000000")
    stack = EmbeddedAws(port=0, region=REGION)
    stack.start()
    try:
        for line in run(db, dict(os.environ)):
            print(line, flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["apply"]:
        print(json.dumps(apply_from_s3(json.loads(sys.argv[2]))))
    else:
        main()
