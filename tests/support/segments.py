"""Archiving a private server's binary log as the archiver will (until the archiver replaces
this in the tests): FLUSH BINARY LOGS, then the file just closed, read from the server's
binlog directory, compressed into one zstd frame (level 1), put under
``<prefix>binlog/<plan>/<server id>/<file>.zst`` in the plan's bucket, and recorded as a segment
(covered_until = the server's time just before the FLUSH; opened_at = the file's first event)."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from datetime import UTC, datetime
from typing import Any

import zstandard

from devstack.private_server import PrivateServer
from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.domain.recovery import Segment, SegmentCopy, file_index

SERVER_ID = 7


def segment_key(prefix: str, plan_id: str, file: str) -> str:
    return f"{prefix}binlog/{plan_id}/{SERVER_ID}/{file}.zst"


def archive_now(
    server: PrivateServer, s3: Any, plan_id: str, storage_id: str, bucket: str, prefix: str
) -> Segment:
    """Closes the file being written and archives it; the segment recorded."""
    covered = server.sql("SELECT UTC_TIMESTAMP(6)").strip()
    server.sql("FLUSH BINARY LOGS")
    files = sorted(p for p in server.binlog_dir.iterdir() if p.suffix[1:].isdigit())
    closed = files[-2]
    raw = closed.read_bytes()
    (opened,) = struct.unpack_from("<I", raw, 4)
    stored = zstandard.ZstdCompressor(level=1).compress(raw)
    key = segment_key(prefix, plan_id, closed.name)
    s3.put_object(Bucket=bucket, Key=key, Body=stored)
    repo = DynamoArchiveRepository()
    previous = repo.state(plan_id)
    continues = previous.last_file is not None and file_index(closed.name)[1] == (
        file_index(previous.last_file)[1] + 1
    )
    segment = Segment(
        plan_id=plan_id,
        sequence=previous.last_sequence + 1,
        file=closed.name,
        server_id=SERVER_ID,
        covered_until=datetime.fromisoformat(covered).replace(tzinfo=UTC),
        opened_at=datetime.fromtimestamp(opened, UTC),
        first_gtid=None,
        last_gtid=None,
        last_event_at=None,
        raw_bytes=len(raw),
        compressed_bytes=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        compression="zstd",
        archived_at=datetime.now(UTC),
        continues=continues,
        copies=(SegmentCopy(storage_id, "local", bucket, "us-east-1", key),),
    )
    state = dataclasses.replace(
        previous,
        last_sequence=segment.sequence,
        last_file=segment.file,
        server_id=SERVER_ID,
        covered_until=segment.covered_until,
    )
    assert repo.add_segment(previous, segment, state) is not None
    return segment
