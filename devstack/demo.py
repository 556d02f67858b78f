"""`make demo`: the whole lifecycle on the local stack, step by step with the CLI's own output.

Loads the ZStack platform schema fixture (with sample rows) into throwaway databases (never
anyone's real ones), starts the local stack protecting them, and shows: storages and a plan; a
scheduled backup firing by itself; a manual one; failover when the primary storage refuses
writes; remote sync; retention pruning; a restore into new databases verified identical. Then, on a
private MariaDB server with binary logging and a stack of its own: point-in-time recovery (the
binary log archived every minute, two rows written seconds apart, a restore to a second between
them). Ends with a summary table; exits 0 only if every step held. Everything it made is
removed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from devstack import logs
from devstack.config import DatabaseAccess
from devstack.private_server import PrivateServer, private_server
from devstack.template import REPO_ROOT
from platform_backup_cli.client import ApiClient, CliError

FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
MARIADB = [
    "mariadb",
    "-h",
    "127.0.0.1",
    "-P",
    "3306",
    "-u",
    "root",
    "--default-character-set=utf8mb4",
]
CLI = Path(sys.executable).parent / "platform-backup"
console = Console(width=160)

SAMPLE_ROWS = """
INSERT INTO ResourceVO (uuid, resourceName, resourceType, concreteResourceType)
  SELECT md5(concat('demo', seq)), concat('vm-', seq), 'VmInstanceVO',
  'org.zstack.header.vm.VmInstanceVO' FROM seq_1_to_2000;
INSERT INTO GlobalConfigVO (name, description, category, defaultValue, value)
  SELECT concat('demo.option.', seq), 'a sample option', 'demo', seq, seq FROM seq_1_to_200;
"""


def sql(statement: str, database: str | None = None) -> str:
    done = subprocess.run(
        [*MARIADB, "--batch", "--skip-column-names", *([database] if database else [])],
        input=statement.encode(),
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


@contextmanager
def throwaway_databases() -> Iterator[list[str]]:
    run = uuid.uuid4().hex[:6]
    names = [f"pdbdemo_{run}_zstack", f"pdbdemo_{run}_zstack_rest"]
    try:
        sql(f"CREATE DATABASE `{names[0]}`; CREATE DATABASE `{names[1]}`;")
        fixture = (FIXTURES / "zstack-platform-db.sql").read_bytes()
        subprocess.run([*MARIADB, names[0]], input=fixture, check=True)
        sql(SAMPLE_ROWS, names[0])
        sql(
            "CREATE TABLE RestToken (id INT PRIMARY KEY, token VARCHAR(64)); "
            "INSERT INTO RestToken SELECT seq, md5(seq) FROM seq_1_to_100;",
            names[1],
        )
        yield names
    finally:
        like = f"pdbdemo\\_{run}\\_%"
        for (db,) in (line.split("\t") for line in sql(f"SHOW DATABASES LIKE '{like}'").split()):
            sql(f"DROP DATABASE `{db}`")


def checksums(database: str) -> dict[str, str]:
    tables = sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_type = 'BASE TABLE'",
        database,
    ).split()
    result: dict[str, str] = {}
    for start in range(0, len(tables), 100):
        names = ", ".join(f"`{t}`" for t in tables[start : start + 100])
        for line in sql(f"CHECKSUM TABLE {names}", database).splitlines():
            name, value = line.split("\t")
            result[name.split(".", 1)[1]] = value
    return result


@dataclass
class Demo:
    api: str
    client: ApiClient
    databases: list[str]
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        console.print(f"[bold cyan]$ platform-backup {' '.join(args)}[/]")
        done = subprocess.run(
            [str(CLI), "--api", self.api, *args], capture_output=True, text=True, check=False
        )
        if done.stdout:
            console.print(done.stdout.rstrip(), highlight=False, markup=False)
        if done.stderr:
            console.print(done.stderr.rstrip(), style="dim", highlight=False, markup=False)
        return done

    def step(self, title: str, run: Callable[[], str]) -> None:
        console.print(Rule(title))
        try:
            detail = run()
            held = True
        except (AssertionError, CliError, subprocess.SubprocessError) as exc:
            detail, held = str(exc) or type(exc).__name__, False
        console.print(("[green]held[/]: " if held else "[red]did not hold[/]: ") + detail)
        self.results.append((title, held, detail))

    def wait(self, what: Callable[[], Any], seconds: float, every: float = 1.0) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {seconds:.0f} s")
            time.sleep(every)


def run_demo(demo: Demo) -> None:
    ids: dict[str, str] = {}

    def storages() -> str:
        for name, role, bucket in (
            ("primary", "local", "pdb-primary"),
            ("fallback", "local", "pdb-fallback"),
            ("remote", "remote", "pdb-remote"),
        ):
            done = demo.cli(
                "storages",
                "add",
                "--name",
                name,
                "--role",
                role,
                "--bucket",
                bucket,
                "--region",
                "us-east-1",
                "--prefix",
                "platform-db/",
                "--capacity-bytes",
                str(10 * 1024**3),
            )
            assert done.returncode == 0, done.stderr
        for storage in demo.client.get("/v1/storages")["items"]:
            ids[storage["name"]] = storage["id"]
        demo.cli("storages", "list")
        return "two local storages (primary, failover) and a remote one"

    def plan() -> str:
        start = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        if (start - datetime.now(UTC)).total_seconds() < 25:
            start += timedelta(minutes=1)
        done = demo.cli(
            "plan",
            "create",
            "--name",
            "platform-db",
            "--description",
            "demo",
            "--local-storage-ids",
            "primary,fallback",
            "--remote-sync",
            "--remote-storage-id",
            "remote",
            "--cycle",
            "hourly",
            "--start-time",
            start.isoformat(),
            "--timezone",
            "UTC",
            "--retention-local-mode",
            "count",
            "--retention-local-value",
            "2",
            "--retention-remote-mode",
            "days",
            "--retention-remote-value",
            "30",
        )
        assert done.returncode == 0, done.stderr
        ids["plan"] = demo.client.get("/v1/plans")["items"][0]["id"]
        demo.cli("plan", "next-runs", "--count", "3")
        return f"hourly from {start:%H:%M} UTC, local count 2, remote 30 days"

    def scheduled() -> str:
        console.print("waiting for the schedule to fire by itself ...")
        first = demo.wait(
            lambda: demo.client.get("/v1/executions", planId=ids["plan"])["items"], 150
        )[0]
        done = demo.cli("executions", "watch", first["id"])
        assert done.returncode == 0, "the scheduled backup did not succeed"
        execution = demo.client.get(f"/v1/executions/{first['id']}")
        assert execution["trigger"] == "schedule"
        return f"fired at {execution['scheduledTime']}, {execution['status']}"

    def manual() -> str:
        done = demo.cli("run", "--watch")
        assert done.returncode == 0, "the manual backup did not succeed"
        latest = demo.client.get("/v1/executions", planId=ids["plan"])["items"][0]
        assert latest["trigger"] == "manual" and latest["storageId"] == ids["primary"]
        return "backed up now, into the primary storage"

    def failover() -> str:
        with primary_refuses_writes():
            done = demo.cli("run", "--watch")
        assert done.returncode == 0, "the backup did not succeed on the failover storage"
        latest = demo.client.get("/v1/executions", planId=ids["plan"])["items"][0]
        demo.cli("executions", "show", latest["id"])
        assert latest["storageId"] == ids["fallback"], latest
        assert latest["failoverReason"], latest
        return f"landed on the fallback: {latest['failoverReason']}"

    def remote() -> str:
        backups = demo.client.get("/v1/backups", planId=ids["plan"])["items"]
        demo.cli("backups", "list")
        synced = [b for b in backups if _has(b, "remote")]
        assert len(synced) == len(backups) == 3, f"{len(synced)} of {len(backups)} synced"
        return "every backup has its verified remote copy"

    def retention() -> str:
        def pruned() -> list[dict[str, Any]] | None:
            backups = demo.client.get("/v1/backups", planId=ids["plan"])["items"]
            local = [b for b in backups if _has(b, "local")]
            return backups if len(local) == 2 else None

        backups = demo.wait(pruned, 60)
        demo.cli("backups", "list")
        return f"{len(backups)} backups listed, local copies on the newest 2 only"

    def restore() -> str:
        backups = demo.client.get("/v1/backups", planId=ids["plan"])["items"]
        newest = backups[0]
        done = demo.cli(
            "restore", "start", "--backup", newest["id"], "--suffix", "_verify", "--watch"
        )
        assert done.returncode == 0, "the restore did not succeed"
        for database in demo.databases:
            source, target = checksums(database), checksums(database + "_verify")
            assert source and source == target, f"{database}: restored tables differ"
        return f"restored into *_verify: {len(checksums(demo.databases[0]))} tables identical"

    demo.step("1. Register backup storages", storages)
    demo.step("2. Create the backup plan", plan)
    demo.step("3. A scheduled backup fires by itself", scheduled)
    demo.step("4. Back up now", manual)
    demo.step("5. Failover: the primary storage refuses writes", failover)
    demo.step("6. Remote sync", remote)
    demo.step("7. Retention prunes after each success", retention)
    demo.step("8. Restore into new databases, verified identical", restore)


PITR_USER = "pdbdemo"


def run_point_in_time_demo(demo: Demo, server: PrivateServer) -> None:
    """Against a private server with binary logging: a plan archiving its binary log every
    minute, a full backup, two rows written a few seconds apart, and a restore to a second
    between them."""
    database = demo.databases[0]
    moments: dict[str, datetime] = {}

    def turn_on() -> str:
        done = demo.cli(
            "storages", "add", "--name", "primary", "--role", "local", "--bucket",
            "pdb-primary", "--region", "us-east-1", "--capacity-bytes", str(10 * 1024**3),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        done = demo.cli(
            "plan", "create", "--name", "platform-db", "--local-storage-ids", "primary",
            "--cycle", "hourly", "--start-time", start.isoformat(), "--timezone", "UTC",
            "--retention-local-mode", "count", "--retention-local-value", "3",
            "--point-in-time", "on", "--archive-interval", "1",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        done = demo.cli("run", "--watch")
        assert done.returncode == 0, "the full backup did not succeed"
        return "binary log archived every minute, after a full backup"

    def write_rows() -> str:
        server.sql(f"INSERT INTO {database}.ledger (note) VALUES ('first')")
        first = _server_time(server, database, "first")
        # The next row lands two whole seconds later: the instant between them is unambiguous.
        time.sleep(max(0.0, 2.2 - (datetime.now(UTC) - first).total_seconds()))
        server.sql(f"INSERT INTO {database}.ledger (note) VALUES ('second')")
        second = _server_time(server, database, "second")
        moments.update(first=first, second=second)
        moments["target"] = first.replace(microsecond=0) + timedelta(seconds=1)
        assert moments["target"] < second.replace(microsecond=0), (first, second)
        console.print("waiting for the archive to reach the second row (every minute) ...")

        def recoverable() -> bool:
            window = demo.client.get(f"/v1/plans/{_plan_id(demo)}/recovery-window")
            last = window.get("lastRecoverableTime")
            return bool(last) and datetime.fromisoformat(last) >= second.replace(microsecond=0)

        demo.wait(recoverable, 200, every=5)
        demo.cli("recovery-window")
        return f"'first' at {first:%H:%M:%S.%f}, 'second' at {second:%H:%M:%S.%f}, both archived"

    def restore_between() -> str:
        target = moments["target"].isoformat()
        done = demo.cli(
            "restore", "start", "--point-in-time", target, "--suffix", "_pitr", "--watch"
        )
        assert done.returncode == 0, "the point-in-time restore did not succeed"
        notes = server.sql(f"SELECT note FROM {database}_pitr.ledger ORDER BY id").split()
        assert notes == ["first"], f"restored rows: {notes}"
        return f"restored to {target}: 'first' is there, 'second' is not"

    demo.step("9. Point-in-time recovery: archive the binary log", turn_on)
    demo.step("10. Write two rows, seconds apart", write_rows)
    demo.step("11. Restore to a second between them", restore_between)


def _server_time(server: PrivateServer, database: str, note: str) -> datetime:
    value = server.sql(f"SELECT committed_at FROM {database}.ledger WHERE note = '{note}'")
    return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)


def _plan_id(demo: Demo) -> str:
    return str(demo.client.get("/v1/plans")["items"][0]["id"])


WRITES = ("create_multipart_upload", "upload_part", "complete_multipart_upload", "put_object")


@contextmanager
def primary_refuses_writes() -> Iterator[None]:
    """The embedded AWS (in this process) answers AccessDenied to every write to the primary
    bucket, as a revoked grant would; the executor runs in a worker process of its own."""
    from moto.s3.exceptions import S3AccessDeniedError
    from moto.s3.models import S3Backend

    originals = {name: getattr(S3Backend, name) for name in WRITES}

    def refusing(original: Any) -> Any:
        def write(self: S3Backend, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
            if bucket_name == "pdb-primary":
                raise S3AccessDeniedError()
            return original(self, bucket_name, *args, **kwargs)

        return write

    for name, original in originals.items():
        setattr(S3Backend, name, refusing(original))
    console.print("[yellow]the primary storage now refuses every write (AccessDenied)[/]")
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(S3Backend, name, original)


def _has(backup: dict[str, Any], role: str) -> bool:
    return any(c["role"] == role and c["status"] == "available" for c in backup["copies"])


def summary(results: list[tuple[str, bool, str]]) -> Table:
    table = Table(title="Platform database backup: demonstration")
    table.add_column("step")
    table.add_column("held")
    table.add_column("what was seen")
    for title, held, detail in results:
        table.add_row(title, "[green]yes[/]" if held else "[red]NO[/]", detail)
    return table


def main() -> int:
    from devstack.stack import start_stack

    # The stack's own lines would interleave with the story; warnings and errors still show.
    logs.configure(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with throwaway_databases() as databases:
        os.environ["PLATFORM_DB_NAMES"] = ",".join(databases)
        stack = start_stack(0, 0)
        try:
            console.print(f"local stack: API {stack.api_url}, embedded AWS {stack.aws_endpoint}")
            console.print(f"protecting the throwaway databases {', '.join(databases)}")
            demo = Demo(stack.api_url, ApiClient(stack.api_url), databases)
            run_demo(demo)
        finally:
            stack.stop()
    results = demo.results + point_in_time()
    console.print(summary(results))
    held = all(ok for _, ok, _ in results) and len(results) == 11
    console.print("[green]every step held[/]" if held else "[red]a step did not hold[/]")
    return 0 if held else 1


def point_in_time() -> list[tuple[str, bool, str]]:
    """The point-in-time steps, on their own stack protecting a private server that logs."""
    from devstack.stack import start_stack

    console.print(Rule("point-in-time recovery: a private MariaDB server with binary logging"))
    with private_server(binlog=True) as server:
        database = f"pdbdemo_{uuid.uuid4().hex[:6]}_pitr"
        password = uuid.uuid4().hex
        server.create_user(PITR_USER, password)
        server.sql(
            f"CREATE DATABASE {database}; CREATE TABLE {database}.ledger (id INT AUTO_INCREMENT"
            " PRIMARY KEY, note VARCHAR(32), committed_at DATETIME(6) DEFAULT UTC_TIMESTAMP(6))"
        )
        os.environ["PLATFORM_DB_NAMES"] = database
        access = DatabaseAccess(port=server.port, username=PITR_USER, password=password)
        stack = start_stack(0, 0, database=access)
        try:
            console.print(f"protecting {database} on a private server at 127.0.0.1:{server.port}")
            demo = Demo(stack.api_url, ApiClient(stack.api_url), [database])
            run_point_in_time_demo(demo, server)
        finally:
            stack.stop()
    return demo.results


if __name__ == "__main__":
    sys.exit(main())
