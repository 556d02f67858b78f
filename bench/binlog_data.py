"""The binary log the point-in-time benchmarks read: a private server with binary logging (ROW)
given a workload of inserts and updates until its closed binary-log files hold about
BENCH_BINLOG_MB (default 1024) MiB, and the by-hand baselines the issue names: fetching them with
``mariadb-binlog --read-from-remote-server --raw`` and compressing with ``zstd -1``; replaying them
with ``mariadb-binlog FILES | mariadb``."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.private_server import PrivateServer

DATABASE = "pitr_bench"
ROWS_PER_TRANSACTION = 50_000
SCHEMA = (
    f"CREATE DATABASE IF NOT EXISTS {DATABASE};"
    f" CREATE TABLE IF NOT EXISTS {DATABASE}.resource ("
    " id BIGINT PRIMARY KEY, uuid CHAR(32) NOT NULL, name VARCHAR(255) NOT NULL,"
    " state VARCHAR(32) NOT NULL, payload VARCHAR(512) NOT NULL, updated DATETIME(6) NOT NULL"
    ") ENGINE=InnoDB"
)


def target_bytes() -> int:
    return int(os.environ.get("BENCH_BINLOG_MB", "1024")) * 1024 * 1024


@dataclass(frozen=True)
class Workload:
    files: list[str]  # the closed files holding it, oldest first
    raw_bytes: int
    start_file: str  # the first file of the workload (the schema is created before it)
    start_position: int


def closed_files(server: PrivateServer) -> list[tuple[str, int]]:
    rows = [line.split("\t") for line in server.sql("SHOW BINARY LOGS").splitlines()]
    return [(name, int(size)) for name, size, *_ in rows[:-1]]


def build(server: PrivateServer) -> Workload:
    """Inserts, then updates half of the rows, in transactions of 50,000 rows, until the binary
    log written since the schema holds the target size; then closes the last file."""
    server.sql(SCHEMA)
    server.sql("FLUSH BINARY LOGS")
    start_file = server.sql("SHOW MASTER STATUS").split("\t")[0]
    goal, next_id = target_bytes(), 1
    while True:
        written = sum(size for name, size in closed_files(server) if name >= start_file)
        current = int(server.sql("SHOW MASTER STATUS").split("\t")[1])
        if written + current >= goal:
            break
        last = next_id + ROWS_PER_TRANSACTION
        server.sql(
            f"INSERT INTO {DATABASE}.resource SELECT seq, MD5(seq), CONCAT('vm-', seq),"
            f" 'Running', REPEAT(MD5(seq), 12), NOW(6) FROM seq_{next_id}_to_{last - 1}",
            DATABASE,
        )
        server.sql(
            f"UPDATE {DATABASE}.resource SET state = 'Stopped', updated = NOW(6)"
            f" WHERE id BETWEEN {next_id} AND {next_id + ROWS_PER_TRANSACTION // 2}"
        )
        next_id = last
    server.sql("FLUSH BINARY LOGS")
    files = [(n, s) for n, s in closed_files(server) if n >= start_file]
    return Workload([n for n, _ in files], sum(s for _, s in files), start_file, 4)


def fetch_and_compress_by_hand(server: PrivateServer, files: list[str]) -> float:
    """``mariadb-binlog --read-from-remote-server --raw`` of the files, then ``zstd -1`` of each."""
    with tempfile.TemporaryDirectory(prefix="pdb-bench-binlog-") as work:
        started = time.perf_counter()
        subprocess.run(
            [
                "mariadb-binlog",
                "--no-defaults",
                "--read-from-remote-server",
                "--host=127.0.0.1",
                f"--port={server.port}",
                "--user=root",
                "--raw",
                f"--result-file={work}/",
                *files,
            ],
            check=True,
        )
        subprocess.run(
            ["zstd", "-1", "-q", "--rm", *(str(Path(work) / f) for f in files)], check=True
        )
        return time.perf_counter() - started


def replay_by_hand(binlog_dir: Path, files: list[str], start: int, target: PrivateServer) -> float:
    """``mariadb-binlog FILES | mariadb`` into ``target``."""
    started = time.perf_counter()
    reader = subprocess.Popen(
        [
            "mariadb-binlog",
            "--no-defaults",
            f"--start-position={start}",
            *(str(binlog_dir / f) for f in files),
        ],
        stdout=subprocess.PIPE,
    )
    assert reader.stdout is not None
    client = subprocess.run(
        [
            "mariadb",
            "--no-defaults",
            f"--socket={target.socket}",
            "--user=root",
            "--max-allowed-packet=1G",
        ],
        stdin=reader.stdout,
        check=False,
    )
    reader.stdout.close()
    if reader.wait() != 0 or client.returncode != 0:
        raise RuntimeError("the replay by hand failed")
    return time.perf_counter() - started


def reset_target(target: PrivateServer) -> None:
    """The replay's target as the workload found the source: the schema, no rows."""
    target.sql(f"DROP DATABASE IF EXISTS {DATABASE}; {SCHEMA}")
