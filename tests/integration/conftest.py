"""Integration fixtures: the real MariaDB at 127.0.0.1:3306 (root, no password), its client tools,
and a moto S3 server on a free port. Every database, user and bucket made here has a unique name
and is dropped after."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import moto.s3.models
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from platform_backup.adapters import dump_frames
from platform_backup.adapters.dump_pipeline import run_backup
from platform_backup.adapters.failover_upload import Destination
from platform_backup.adapters.mariadb import DbConnection
from tests.support.databases import FIXTURES, RUN_ID, load, sql

# Rows beside the fixture's seed rows: the MyISAM audit log, binary values of every byte,
# quotes, backslashes, non-ASCII text, NULLs, so the round trip has something to get wrong.
ZSTACK_ROWS = r"""
INSERT INTO AuditsVO (createTime, apiName, clientBrowser, clientIp, duration, error, operator,
  requestDump, resourceType, resourceUuid, success, startTime)
  SELECT seq, concat('org.zstack.header.vm.APIStartVmInstanceMsg-', seq), 'curl', '10.0.0.1',
  seq % 1000, IF(seq % 3 = 0, NULL, 'it''s "broken" \\ ü 中文'), 'admin',
  repeat(md5(seq), 20), 'VmInstanceVO', md5(seq), seq % 2, seq * 1000 FROM seq_1_to_3000;
INSERT INTO BareMetal2UsageHistoryVO (bareMetal2ChassisOfferingUuid, vmUuid, vmName, state,
  accountUuid, dateInLong, createDate)
  SELECT md5(seq), md5(seq + 1), concat('bm-', seq), 'Running', md5(7), seq,
  from_unixtime(1600000000 + seq) FROM seq_1_to_500;
INSERT INTO ResourceVO (uuid, resourceName, resourceType, concreteResourceType)
  SELECT md5(concat('r', seq)), concat('vm-ü-', seq), 'VmInstanceVO',
  'org.zstack.header.vm.VmInstanceVO' FROM seq_1_to_5000;
INSERT INTO GlobalConfigVO (name, description, category, defaultValue, value)
  SELECT concat('option.', seq), 'tab\there\nnewline', 'test', seq, repeat('x', seq % 300)
  FROM seq_1_to_400;
INSERT INTO KeyValueBinaryVO (uuid, contents, createDate)
  SELECT md5(seq), unhex(repeat(concat(lpad(hex(seq % 256), 2, '0'), '00FF0A0D5C27'), 200)),
  from_unixtime(1600000000 + seq) FROM seq_0_to_1023;
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    # Small parts keep the fixtures' dumps multi-part, so failover has parts to replay.
    moto.s3.models.S3_UPLOAD_PART_MIN_SIZE = 1024
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


S3Factory = Callable[[], Any]


@pytest.fixture
def s3_client(aws: str) -> S3Factory:
    """A new S3 client per call: faults injected into one stay out of the others."""

    def make() -> Any:
        config = Config(retries={"mode": "standard", "max_attempts": 3})
        return boto3.client("s3", region_name="us-east-1", config=config)

    return make


@pytest.fixture
def buckets(s3_client: S3Factory) -> Iterator[tuple[str, str]]:
    """A primary and a fallback bucket, emptied (objects and open uploads) and deleted after."""
    s3 = s3_client()
    names = (f"pdbt-{RUN_ID}-{secrets.token_hex(3)}-a", f"pdbt-{RUN_ID}-{secrets.token_hex(3)}-b")
    for name in names:
        s3.create_bucket(Bucket=name)
    yield names
    for name in names:
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
        s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def platform_dbs() -> Iterator[list[str]]:
    """The ZStack platform schema (with rows added) and Sakila, in throwaway databases."""
    zstack, sakila = f"pdbt_{RUN_ID}_zstack", f"pdbt_{RUN_ID}_sakila"
    try:
        load(zstack, FIXTURES / "zstack-platform-db.sql")
        sql(ZSTACK_ROWS, zstack)
        load(
            sakila,
            FIXTURES / "sakila-schema.sql",
            FIXTURES / "sakila-data.sql",
            rename="sakila",
        )
        yield [zstack, sakila]
    finally:
        sql(f"DROP DATABASE IF EXISTS `{zstack}`; DROP DATABASE IF EXISTS `{sakila}`;")


@pytest.fixture
def root_conn() -> DbConnection:
    return DbConnection(host="127.0.0.1", port=3306, username="root", password="")


class SmallFrames(NamedTuple):
    key: str  # the backup's object in the first of ``buckets``; its manifest beside it
    result: Any  # run_backup's


@pytest.fixture
def small_frames_backup(
    platform_dbs: list[str],
    root_conn: DbConnection,
    buckets: tuple[str, str],
    s3_client: S3Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> SmallFrames:
    """Both fixtures backed up in frames of at most 64 KiB of rows, so their bigger tables span
    several (as 64 MiB frames cut a big platform table)."""
    monkeypatch.setattr(dump_frames, "FRAME_RAW_BYTES", 64 << 10)
    key = "b/small-frames.sql.zst"
    result = run_backup(
        root_conn,
        platform_dbs,
        [Destination(buckets[0], key, s3_client())],
        backup_id="bk-sf",
        plan_id="plan-sf",
        work_dir=str(tmp_path),
    )
    return SmallFrames(key, result)


@pytest.fixture
def db_user() -> Iterator[DbConnection]:
    """A dump user with a password only this test knows, with characters option files and shells
    treat specially; dropped after."""
    name = f"pdbt_{RUN_ID}_{secrets.token_hex(3)}"
    password = f"Pw#{secrets.token_hex(12)} \"q\" 'x' \\ $HOME ;"
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    hosts = ("localhost", "127.0.0.1")
    for host in hosts:
        sql(
            f"CREATE USER '{name}'@'{host}' IDENTIFIED BY '{escaped}';"
            f" GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, PROCESS"
            f" ON *.* TO '{name}'@'{host}';"
        )
    try:
        yield DbConnection(host="127.0.0.1", port=3306, username=name, password=password)
    finally:
        for host in hosts:
            sql(f"DROP USER IF EXISTS '{name}'@'{host}'")
