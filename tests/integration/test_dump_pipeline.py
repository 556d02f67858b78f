"""The dump pipeline against the real MariaDB, the real mariadb-dump and a moto S3 server:
what it stores restores with nothing but the plain client; when the primary storage fails the
backup lands on the fallback from the same single dump; every failure leaves nothing behind and
never shows the password."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError, ConnectionClosedError

from platform_backup.adapters import compression, dump_frames, dump_pipeline, dump_process
from platform_backup.adapters.dump_pipeline import BackupResult, Progress, run_backup
from platform_backup.adapters.dump_process import DumpFailed
from platform_backup.adapters.failover_upload import (
    Destination,
    FailoverNeedsRedump,
    UploadFailed,
)
from platform_backup.adapters.mariadb import (
    DatabasesMissing,
    DatabaseUnavailable,
    DbConnection,
    MariaDbTools,
    estimate_size,
)
from tests.integration.conftest import S3Factory, free_port
from tests.support.databases import ROOT, sql

pytestmark = pytest.mark.integration

PART = 16 << 10  # small parts: the fixtures' dumps span many, so failover has parts to replay


# -- helpers ---------------------------------------------------------------------------------


class Watched:
    """Client tools wrapped by scripts that record each run's argv and environment."""

    def __init__(self, directory: Path) -> None:
        self.log = directory / "runs.log"
        self.tools = MariaDbTools(
            client=str(self._wrap(directory, "mariadb")),
            dump=str(self._wrap(directory, "mariadb-dump")),
        )

    def _wrap(self, directory: Path, binary: str) -> Path:
        real = subprocess.run(["which", binary], capture_output=True, check=True).stdout.strip()
        script = directory / f"watched-{binary}"
        script.write_text(
            "#!/bin/sh\n"
            f"{{ printf 'ARGV %s\\n' \"$*\"; env | sed 's/^/ENV /'; }} >> '{self.log}'\n"
            f'exec {real.decode()} "$@"\n'
        )
        script.chmod(0o700)
        return script

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def dump_runs(self) -> list[str]:
        return [line for line in self.text().splitlines() if "--databases" in line]


@pytest.fixture
def watched(tmp_path: Path) -> Watched:
    directory = tmp_path / "tools"
    directory.mkdir()
    return Watched(directory)


@pytest.fixture
def work_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "work"
    directory.mkdir()
    yield directory
    assert list(directory.iterdir()) == [], "spool or option file left behind"


def backup(
    conn: DbConnection,
    databases: list[str],
    targets: list[Destination],
    watched: Watched,
    work_dir: Path,
    **options: Any,
) -> BackupResult:
    return run_backup(
        conn,
        databases,
        targets,
        backup_id="bk-1",
        plan_id="plan-1",
        part_size=PART,
        work_dir=str(work_dir),
        tools=watched.tools,
        **options,
    )


def targets_for(s3_client: S3Factory, buckets: tuple[str, ...]) -> list[Destination]:
    return [
        Destination(bucket, f"backups/plan-1/bk-1{i}.sql.zst", s3_client(), label=f"storage-{i}")
        for i, bucket in enumerate(buckets)
    ]


def stored(s3: Any, bucket: str) -> list[str]:
    return [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def open_uploads(s3: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def state_of(databases: list[str]) -> dict[str, Any]:
    """Everything a restore must bring back: per table its checksum and row count; views,
    routines and triggers with their definitions."""
    state: dict[str, Any] = {}
    for db in databases:
        tables = sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES"
            f" WHERE TABLE_SCHEMA = '{db}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1"
        ).split()
        names = ", ".join(f"`{t}`" for t in tables)
        counts = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM `{t}`" for t in tables)
        state[db] = {
            "checksums": sql(f"CHECKSUM TABLE {names} EXTENDED", db),
            "rows": dict(line.split("\t") for line in sql(counts, db).splitlines()),
            "views": sql(
                "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS"
                f" WHERE TABLE_SCHEMA = '{db}' ORDER BY 1"
            ),
            "routines": sql(
                "SELECT ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION FROM"
                f" information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}' ORDER BY 1, 2"
            ),
            "triggers": sql(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM"
                f" information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}' ORDER BY 1"
            ),
        }
    return state


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, operation)


class Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


# Faults injected into the primary's client. Each returns a counter of the calls it hit.
def deny_create(client: Any) -> list[int]:
    hits: list[int] = []

    def handler(**_: Any) -> None:
        hits.append(1)
        raise client_error("AccessDenied", "CreateMultipartUpload")

    client.meta.events.register("before-call.s3.CreateMultipartUpload", handler)
    return hits


def throttle_parts(client: Any) -> list[int]:
    """Every UploadPart answers 503 SlowDown on the wire, so botocore's retries run out."""
    hits: list[int] = []
    body = (
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    )

    def handler(request: Any, **_: Any) -> AWSResponse:
        hits.append(1)
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/xml"
        return AWSResponse(request.url, 503, headers, Raw(body))

    client.meta.events.register("before-send.s3.UploadPart", handler)
    return hits


def fail_after_parts(count: int) -> Callable[[Any], list[int]]:
    def inject(client: Any) -> list[int]:
        hits: list[int] = []

        def handler(**_: Any) -> None:
            hits.append(1)
            if len(hits) > count:
                raise ConnectionClosedError(endpoint_url="http://primary")

        client.meta.events.register("before-call.s3.UploadPart", handler)
        return hits

    return inject


def fail_complete(client: Any) -> list[int]:
    hits: list[int] = []

    def handler(**_: Any) -> None:
        hits.append(1)
        raise client_error("InternalError", "CompleteMultipartUpload")

    client.meta.events.register("before-call.s3.CompleteMultipartUpload", handler)
    return hits


def download(s3: Any, bucket: str, key: str, path: Path) -> bytes:
    s3.download_file(bucket, key, str(path))
    return path.read_bytes()


# -- backup and restore ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compression", "decompress"), [("zstd", "zstd -dc"), ("gzip", "gzip -dc")]
)
def test_backup_restores_with_the_plain_client_to_the_same_tables_views_routines_and_triggers(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
    tmp_path: Path,
    compression: str,
    decompress: str,
) -> None:
    # Given the platform schema with rows and Sakila, and their state before the backup
    before = state_of(platform_dbs)
    reports: list[Progress] = []
    # When they are backed up
    result = backup(
        root_conn,
        platform_dbs,
        targets_for(s3_client, buckets),
        watched,
        work_dir,
        compression=compression,
        progress=reports.append,
    )
    # and the databases are dropped and restored from the object with nothing but the client
    s3 = s3_client()
    dump = tmp_path / "dump"
    data = download(s3, result.destination.bucket, result.destination.key, dump)
    sql("".join(f"DROP DATABASE `{db}`;" for db in platform_dbs))
    restore = f"{decompress} {dump} | {' '.join(ROOT)}"
    subprocess.run(["bash", "-o", "pipefail", "-c", restore], check=True)
    # Then every table has the same checksum and row count, and views, routines, triggers match
    after = state_of(platform_dbs)
    assert after == before
    zstack, sakila = (before[db] for db in platform_dbs)
    assert all(int(n) > 0 for n in sakila["rows"].values())
    seeded = ("AuditsVO", "BareMetal2UsageHistoryVO", "ResourceVO", "KeyValueBinaryVO")
    assert all(int(zstack["rows"][t]) > 0 for t in seeded)
    assert zstack["views"] and zstack["routines"] and zstack["triggers"]
    assert sakila["views"] and sakila["routines"] and sakila["triggers"]
    # and the object is the one the result and the manifest describe, from the primary
    assert result.destination.bucket == buckets[0] and result.abandoned == []
    assert hashlib.sha256(data).hexdigest() == result.sha256
    manifest = json.loads(
        s3.get_object(Bucket=buckets[0], Key=result.destination.manifest_key)["Body"].read()
    )
    assert manifest == result.manifest
    assert manifest["sha256"] == result.sha256 and manifest["compressedBytes"] == len(data)
    assert manifest["databases"] == platform_dbs
    assert manifest["compression"]["algorithm"] == compression
    # (a zstd object is framed and indexed: tests/integration/test_frame_index.py)
    assert ("frameIndex" in manifest) == (compression == "zstd")
    assert sorted(manifest["nonTransactionalTables"]) == [
        f"{platform_dbs[0]}.AuditsVO",
        f"{platform_dbs[0]}.BareMetal2UsageHistoryVO",
    ]
    assert len(manifest["tables"]) == sum(len(s["rows"]) for s in before.values())
    assert "--single-transaction" in manifest["dumpOptions"]
    assert "--lock-all-tables" not in manifest["dumpOptions"]
    # and progress went forward to the whole dump
    assert reports[-1].tables_done == reports[-1].tables_total == len(manifest["tables"])
    assert reports[-1].bytes_dumped == result.raw_bytes == manifest["rawBytes"]
    assert [r.bytes_dumped for r in reports] == sorted(r.bytes_dumped for r in reports)
    assert len(watched.dump_runs()) == 1
    assert open_uploads(s3, buckets[0]) == [] and stored(s3, buckets[1]) == []


def test_size_estimate_counts_every_listed_database(
    platform_dbs: list[str], root_conn: DbConnection
) -> None:
    # Given the two databases, When their size is estimated one by one and together
    each = [estimate_size(root_conn, [db]) for db in platform_dbs]
    # Then the estimate of both is the sum, and each holds data
    assert all(size > 0 for size in each)
    assert estimate_size(root_conn, platform_dbs) == sum(each)


def test_missing_database_fails_before_any_dump(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
) -> None:
    # Given a plan listing a database the server does not have
    missing = f"{platform_dbs[0]}_nope"
    # When it is backed up
    with pytest.raises(DatabasesMissing, match=missing):
        backup(
            root_conn,
            [platform_dbs[0], missing],
            targets_for(s3_client, buckets),
            watched,
            work_dir,
        )
    # Then no dump ran and nothing was stored
    assert watched.dump_runs() == []
    s3 = s3_client()
    assert all(stored(s3, b) == [] and open_uploads(s3, b) == [] for b in buckets)


def filtered_dump(directory: Path, shell_filter: str) -> MariaDbTools:
    """mariadb-dump with its output passed through a filter: to fake what this server does not
    do (binary logging), or to break what mariadb-dump never breaks on its own."""
    real = subprocess.run(["which", "mariadb-dump"], capture_output=True, check=True).stdout
    script = directory / "filtered-mariadb-dump"
    script.write_text(
        f'#!/bin/bash\nset -o pipefail\n{real.decode().strip()} "$@" | {shell_filter}\n'
    )
    script.chmod(0o700)
    return MariaDbTools(dump=str(script))


def test_binlog_position_in_the_dump_is_recorded_in_the_manifest(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    # Given a dump that carries the position comments --master-data=2 --gtid write
    tools = filtered_dump(
        tmp_path,
        "sed -e \"1a -- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000042',"
        ' MASTER_LOG_POS=1234;" -e "1a -- SET GLOBAL gtid_slave_pos=\'0-1-99\';"',
    )
    # When the databases are backed up
    result = run_backup(
        root_conn,
        platform_dbs,
        targets_for(s3_client, buckets),
        backup_id="bk",
        plan_id="p",
        work_dir=str(work_dir),
        tools=tools,
    )
    # Then the manifest holds the position and the GTID
    binlog = dict(result.manifest["binlog"])
    observed = datetime.fromisoformat(binlog.pop("observedAt"))
    assert binlog == {"file": "mariadb-bin.000042", "position": 1234, "gtid": "0-1-99"}
    # with the time the snapshot was known to be taken by (the dump's first bytes)
    assert datetime.now(UTC) - timedelta(minutes=5) < observed <= datetime.now(UTC)


def test_dump_cut_short_is_never_completed_even_when_the_tool_exits_0(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    # Given a dump whose output loses its last line (its completion line) but exits 0
    tools = filtered_dump(tmp_path, "head -n -1")
    # When the databases are backed up
    with pytest.raises(DumpFailed, match="completion line"):
        run_backup(
            root_conn,
            platform_dbs,
            targets_for(s3_client, buckets),
            backup_id="bk",
            plan_id="p",
            part_size=PART,
            work_dir=str(work_dir),
            tools=tools,
        )
    # Then the parts already uploaded are aborted and nothing is stored
    s3 = s3_client()
    assert all(stored(s3, b) == [] and open_uploads(s3, b) == [] for b in buckets)


def dump_tool_exited(parent: int) -> bool:
    """Whether a mariadb-dump child of ``parent`` has exited and is not yet waited for (the
    pipeline waits for it once it has taken all of its output)."""
    for task in Path(f"/proc/{parent}/task").iterdir():
        # Threads and children come and go while this reads: one gone meanwhile is skipped.
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    name, _, rest = Path(f"/proc/{child}/stat").read_text().rpartition(")")
                    if name.endswith("(mariadb-dump") and rest.split()[0] == "Z":
                        return True
    return False


def test_the_dump_tool_finishes_while_the_compression_is_behind(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    work_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dump tool holds the snapshot open; compression yields it the CPU, and must not hold
    it back in turn: the dump's output waits in the read ring, not in a full pipe."""
    # Given a ring big enough for these databases' dump (the fixtures' small tables come in
    # small reads), and a compression that takes its first chunk only once the dump tool has
    # exited
    monkeypatch.setattr(dump_process, "RING_BUFFERS", 1024)
    dump_exited, release = threading.Event(), threading.Event()
    real = compression.compressor

    class Held:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def compress(self, data: Any) -> bytes:
            release.wait()
            return bytes(self.inner.compress(data))

        def flush(self) -> bytes:
            return bytes(self.inner.flush())

    def watch() -> None:
        # The compression is released whatever happens here, so the test can fail but not hang.
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not dump_exited.is_set():
                if dump_tool_exited(os.getpid()):
                    dump_exited.set()
                time.sleep(0.02)
        finally:
            release.set()

    monkeypatch.setattr(dump_pipeline, "compressor", lambda kind, level: Held(real(kind, level)))

    class HeldFrames(dump_frames.FramedZstd):
        # A framed backup (zstd's default) compresses through FramedZstd instead.
        def write(self, data: Any) -> None:
            release.wait()
            super().write(data)

    monkeypatch.setattr(dump_pipeline, "FramedZstd", HeldFrames)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # When the databases (more SQL than the pipe and the dump tool's buffer hold) are backed up
    result = run_backup(
        root_conn,
        platform_dbs,
        targets_for(s3_client, buckets),
        backup_id="bk",
        plan_id="p",
        work_dir=str(work_dir),
    )
    # Then the dump tool had exited before the first byte was compressed, and the backup is whole
    assert dump_exited.is_set(), "the dump tool waited for the compression"
    assert result.raw_bytes > 4 * dump_process.PIPE_SIZE
    assert stored(s3_client(), buckets[0]) == [
        result.destination.key,
        result.destination.manifest_key,
    ]


# -- failover --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason", "calls"),
    [
        (deny_create, "AccessDenied", 1),
        (throttle_parts, "SlowDown", 4),  # the first try and the client's 3 retries
        (fail_after_parts(3), "ConnectionClosedError", 4),
        (fail_complete, "InternalError", 1),
    ],
    ids=["access-denied", "throttled-past-retries", "fails-after-3-parts", "fails-at-complete"],
)
def test_primary_failure_lands_the_backup_on_the_fallback_from_one_dump(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
    tmp_path: Path,
    fault: Callable[[Any], list[int]],
    reason: str,
    calls: int,
) -> None:
    # Given a primary storage that fails in one way
    targets = targets_for(s3_client, buckets)
    hits = fault(targets[0].client)
    # When the databases are backed up
    result = backup(root_conn, platform_dbs, targets, watched, work_dir)
    # Then the whole backup sits on the fallback, with the primary's reason reported
    s3 = s3_client()
    assert len(hits) == calls
    assert result.destination == targets[1]
    assert [a.destination for a in result.abandoned] == [targets[0]]
    assert reason in result.abandoned[0].reason and reason in (result.failover_reason or "")
    data = download(s3, buckets[1], targets[1].key, tmp_path / "dump")
    assert hashlib.sha256(data).hexdigest() == result.sha256
    text = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    assert len(text) == result.raw_bytes
    assert text.rstrip().rsplit(b"\n", 1)[-1].startswith(b"-- Dump completed")
    assert sorted(stored(s3, buckets[1])) == sorted([targets[1].key, targets[1].manifest_key])
    # and the primary keeps nothing, no upload is open anywhere, and the database was dumped once
    assert stored(s3, buckets[0]) == []
    assert open_uploads(s3, buckets[0]) == [] and open_uploads(s3, buckets[1]) == []
    assert len(watched.dump_runs()) == 1


def test_missing_primary_bucket_fails_over(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
) -> None:
    # Given a primary storage whose bucket does not exist
    targets = targets_for(s3_client, (f"{buckets[0]}-gone", buckets[1]))
    # When the databases are backed up
    result = backup(root_conn, platform_dbs, targets, watched, work_dir)
    # Then the fallback has it, and the reason names the missing bucket
    s3 = s3_client()
    assert result.destination == targets[1]
    assert "NoSuchBucket" in result.abandoned[0].reason
    assert targets[1].key in stored(s3, buckets[1]) and open_uploads(s3, buckets[1]) == []
    assert len(watched.dump_runs()) == 1


@pytest.mark.parametrize(
    ("primary_fault", "fallback_fault"),
    [(fail_after_parts(2), throttle_parts), (deny_create, fail_complete)],
    ids=["mid-upload-then-throttled", "denied-then-complete-fails"],
)
def test_both_storages_failing_fails_and_leaves_nothing(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
    primary_fault: Callable[[Any], list[int]],
    fallback_fault: Callable[[Any], list[int]],
) -> None:
    # Given a primary and a fallback that both fail
    targets = targets_for(s3_client, buckets)
    primary_fault(targets[0].client)
    fallback_fault(targets[1].client)
    # When the databases are backed up
    with pytest.raises(UploadFailed) as failed:
        backup(root_conn, platform_dbs, targets, watched, work_dir)
    # Then the error gives each storage's reason, and neither keeps an object or an open upload
    assert [a.destination for a in failed.value.abandoned] == targets
    assert buckets[0] in failed.value.message and buckets[1] in failed.value.message
    s3 = s3_client()
    assert all(stored(s3, b) == [] and open_uploads(s3, b) == [] for b in buckets)
    assert len(watched.dump_runs()) == 1


def test_without_a_spool_a_failure_mid_upload_asks_for_a_second_dump(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
) -> None:
    # Given no room to spool, and a primary failing after two parts
    targets = targets_for(s3_client, buckets)
    fail_after_parts(2)(targets[0].client)
    # When the databases are backed up
    with pytest.raises(FailoverNeedsRedump):
        backup(root_conn, platform_dbs, targets, watched, work_dir, spool=False)
    # Then nothing is left on either storage
    s3 = s3_client()
    assert all(stored(s3, b) == [] and open_uploads(s3, b) == [] for b in buckets)


# -- database failures and the password --------------------------------------------------------


def assert_password_hidden(password: str, watched: Watched, *texts: str) -> None:
    runs = watched.text()
    assert runs, "the wrapped tools never ran"
    assert password not in runs  # neither argv nor environment of any child
    for line in runs.splitlines():
        if line.startswith("ARGV") and line != "ARGV --version":
            assert line.split()[1].startswith("--defaults-extra-file=")
    for text in texts:
        assert password not in text


def test_dump_as_a_password_user_keeps_the_password_out_of_argv_env_logs_and_records(
    platform_dbs: list[str],
    db_user: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a dump user with a password full of characters shells and option files care about
    caplog.set_level(logging.DEBUG)
    # When the databases are backed up as that user
    result = backup(db_user, platform_dbs, targets_for(s3_client, buckets), watched, work_dir)
    # Then the backup is stored, and the password is in no child argv or environment, log line,
    # result or manifest
    assert result.destination.bucket == buckets[0]
    assert_password_hidden(
        db_user.password, watched, caplog.text, repr(result), json.dumps(result.manifest)
    )
    assert db_user.password not in repr(db_user)


@pytest.mark.parametrize("failure", ["wrong-password", "unreachable"])
def test_login_failure_is_a_clear_error_without_the_password(
    platform_dbs: list[str],
    db_user: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    # Given a connection with the wrong password, or to a port where no server listens
    if failure == "wrong-password":
        conn = DbConnection(db_user.host, db_user.port, db_user.username, db_user.password + "x")
        expected = "Access denied"
    else:
        conn = DbConnection("127.0.0.1", free_port(), db_user.username, db_user.password)
        expected = "Can't connect"
    caplog.set_level(logging.DEBUG)
    # When the databases are backed up
    with pytest.raises(DatabaseUnavailable, match=expected) as failed:
        backup(conn, platform_dbs, targets_for(s3_client, buckets), watched, work_dir)
    # Then nothing is stored and the password is nowhere
    s3 = s3_client()
    assert all(stored(s3, b) == [] and open_uploads(s3, b) == [] for b in buckets)
    assert_password_hidden(conn.password, watched, caplog.text, str(failed.value))


@contextlib.contextmanager
def table_locked(database: str, table: str) -> Iterator[None]:
    """Holds a WRITE lock on one table from another session: the dump waits at that table."""
    session = subprocess.Popen(
        [*ROOT, "--unbuffered", "--skip-column-names", "--batch", database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert session.stdin and session.stdout
    session.stdin.write(f"LOCK TABLES `{table}` WRITE; SELECT 'locked';\n".encode())
    session.stdin.flush()
    assert session.stdout.readline().strip() == b"locked"
    try:
        yield
    finally:
        session.stdin.write(b"UNLOCK TABLES;\n")
        session.communicate(timeout=30)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def test_connection_killed_mid_dump_fails_clearly_and_leaves_nothing(
    platform_dbs: list[str],
    db_user: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a dump that is held at a table in the second database, parts already uploaded
    caplog.set_level(logging.DEBUG)
    reports: list[Progress] = []
    s3 = s3_client()
    waiting = (
        "SELECT ID FROM information_schema.PROCESSLIST"
        f" WHERE USER = '{db_user.username}' AND STATE LIKE 'Waiting for table metadata lock'"
    )
    with table_locked(platform_dbs[1], "payment"), ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            backup,
            db_user,
            platform_dbs,
            targets_for(s3_client, buckets),
            watched,
            work_dir,
            progress=reports.append,
        )
        wait_for(lambda: sql(waiting).strip() != "", "the dump waits for the lock")
        wait_for(lambda: bool(reports) and reports[-1].tables_done > 0, "a progress report")
        assert open_uploads(s3, buckets[0]) != []
        # When its server connection is killed
        sql(f"KILL {sql(waiting).split()[0]}")
        with pytest.raises(DumpFailed) as failed:
            future.result()
    # Then the error says why (mariadb-dump's error, without its --verbose progress lines), no
    # object or open upload is left, and the password is nowhere
    assert "mariadb-dump failed" in failed.value.message
    assert "\n-- " not in failed.value.message and "Retrieving" not in failed.value.message
    assert all(stored(s3, b) == [] and open_uploads(s3, b) == [] for b in buckets)
    assert_password_hidden(db_user.password, watched, caplog.text, str(failed.value))
    # and while it was held, progress showed it part-way through the tables
    held = reports[-1]
    assert 0 < held.tables_done < held.tables_total and held.bytes_dumped > 0


def test_progress_callback_raising_stops_the_dump_and_leaves_nothing(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
) -> None:
    # Given a caller that wants the run stopped (its lease is lost) while the dump is held
    class LeaseLost(Exception):
        pass

    calls = threading.Event()

    def progress(_: Progress) -> None:
        calls.set()
        raise LeaseLost

    # When the databases are backed up
    with table_locked(platform_dbs[1], "payment"), pytest.raises(LeaseLost):
        backup(
            root_conn,
            platform_dbs,
            targets_for(s3_client, buckets),
            watched,
            work_dir,
            progress=progress,
        )
    # Then the caller's error comes back and nothing is left
    assert calls.is_set()
    s3 = s3_client()
    assert all(stored(s3, b) == [] and open_uploads(s3, b) == [] for b in buckets)


def test_a_stop_asked_when_the_dump_has_ended_aborts_the_upload_and_leaves_nothing(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    watched: Watched,
    work_dir: Path,
) -> None:
    # Given a caller whose time runs out just as the dump ends (its report of every table done)
    class OutOfTime(Exception):
        pass

    def progress(report: Progress) -> None:
        if report.tables_total and report.tables_done == report.tables_total:
            raise OutOfTime

    # When the databases are backed up
    with pytest.raises(OutOfTime):
        backup(
            root_conn,
            platform_dbs,
            targets_for(s3_client, buckets),
            watched,
            work_dir,
            progress=progress,
        )
    # Then the upload was aborted: no object that no backup record will describe is left
    s3 = s3_client()
    assert all(stored(s3, b) == [] and open_uploads(s3, b) == [] for b in buckets)
