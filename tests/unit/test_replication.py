"""Remote copies are proven to hold the backup's bytes before they are recorded."""

from __future__ import annotations

import hashlib

import pytest

from platform_backup.adapters.replication import ReplicationFailed, S3Replicator
from platform_backup.services.ports import ObjectRef
from tests.support.moto_env import REGION, REMOTE_BUCKET, MotoEnv

BODY = b"-- MariaDB dump\n" + bytes(range(256)) * 4096


def _put(aws: MotoEnv, body: bytes) -> ObjectRef:
    aws.client("s3").put_object(Bucket="pdb-primary", Key="p/b.sql.zst", Body=body)
    return ObjectRef("pdb-primary", REGION, "p/b.sql.zst")


def test_a_copy_is_verified_and_kept(aws: MotoEnv) -> None:
    source = _put(aws, BODY)
    target = ObjectRef(REMOTE_BUCKET, REGION, "dr/b.sql.zst")

    S3Replicator().copy(source, target, size=len(BODY), sha256=hashlib.sha256(BODY).hexdigest())

    copied = aws.client("s3").get_object(Bucket=REMOTE_BUCKET, Key="dr/b.sql.zst")["Body"].read()
    assert copied == BODY


@pytest.mark.parametrize("size", [len(BODY), None], ids=["s3-checksum", "read-back"])
def test_a_copy_of_other_bytes_than_the_backup_is_refused_and_removed(
    aws: MotoEnv, size: int | None
) -> None:
    # Given the stored object no longer holds what the backup recorded (damaged in storage)
    recorded = hashlib.sha256(BODY).hexdigest()
    source = _put(aws, BODY[:-1] + b"\x00")
    target = ObjectRef(REMOTE_BUCKET, REGION, "dr/b.sql.zst")

    # When it is copied, then the copy is refused and nothing is left at the target
    with pytest.raises(ReplicationFailed, match="does not match the backup's SHA-256"):
        S3Replicator().copy(source, target, size=size, sha256=recorded)
    listed = aws.client("s3").list_objects_v2(Bucket=REMOTE_BUCKET, Prefix="dr/")
    assert listed.get("KeyCount", 0) == 0
