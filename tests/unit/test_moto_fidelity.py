"""The local stack's faster multipart completion answers exactly as moto's own does: same
object, ETag and checksum, and the same refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeMultipart, s3_backends

from devstack import moto_fidelity

MIB = 1 << 20
BUCKET = "fidelity-bucket"


@pytest.fixture
def s3() -> Iterator[Any]:
    moto_fidelity.install()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def open_upload(s3: Any, sizes: list[int], **checksum: str) -> tuple[FakeMultipart, list[Any]]:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="k", **checksum)["UploadId"]
    body = []
    for number, size in enumerate(sizes, 1):
        data = os.urandom(size)
        done = s3.upload_part(
            Bucket=BUCKET, Key="k", UploadId=upload, PartNumber=number, Body=data, **checksum
        )
        body.append((number, done["ETag"]))
    backend = s3_backends["123456789012"]["aws"]
    return backend.get_bucket(BUCKET).multiparts[upload], body


@pytest.mark.parametrize(
    "checksum",
    [{}, {"ChecksumAlgorithm": "CRC32"}, {"ChecksumAlgorithm": "SHA256"}],
    ids=["default CRC64NVME full object", "CRC32 composite", "SHA256 composite"],
)
def test_completion_matches_moto(s3: Any, checksum: dict[str, str]) -> None:
    multipart, body = open_upload(s3, [5 * MIB, 6 * MIB, 1000], **checksum)
    whole, etag, checksum = moto_fidelity._complete(multipart, iter(body))
    assert (bytes(whole), etag, checksum) == moto_fidelity.moto_complete(multipart, iter(body))
    assert len(whole) == 11 * MIB + 1000 and etag.endswith("-3")


def test_a_completed_object_reads_back_as_its_parts(s3: Any) -> None:
    """Completion keeps the parts (S3 copies nothing either); reads see the joined bytes."""
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="big")["UploadId"]
    data = [os.urandom(5 * MIB), os.urandom(1234)]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket=BUCKET, Key="big", UploadId=upload, PartNumber=n, Body=chunk
            )["ETag"],
        }
        for n, chunk in enumerate(data, 1)
    ]
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    whole = b"".join(data)
    assert s3.head_object(Bucket=BUCKET, Key="big")["ContentLength"] == len(whole)
    ranged = s3.get_object(Bucket=BUCKET, Key="big", Range="bytes=5242000-5242999")
    assert ranged["Body"].read() == whole[5242000:5243000]
    assert s3.get_object(Bucket=BUCKET, Key="big")["Body"].read() == whole
    s3.copy_object(Bucket=BUCKET, Key="copy", CopySource={"Bucket": BUCKET, "Key": "big"})
    s3.put_object(Bucket=BUCKET, Key="big", Body=b"replaced")
    assert s3.get_object(Bucket=BUCKET, Key="big")["Body"].read() == b"replaced"
    assert s3.get_object(Bucket=BUCKET, Key="copy")["Body"].read() == whole
    s3.delete_object(Bucket=BUCKET, Key="copy")
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_completion_refuses_what_moto_refuses(s3: Any) -> None:
    multipart, body = open_upload(s3, [1000, 5 * MIB])
    cases = [
        (EntityTooSmall, body),
        (InvalidPart, [(1, '"0123"')]),
        (InvalidPart, [(7, body[0][1])]),
        (MalformedXML, []),
    ]
    for error, parts in cases:
        for complete in (moto_fidelity._complete, moto_fidelity.moto_complete):
            with pytest.raises(error):
                complete(multipart, iter(parts))


FREED_PROBE = """
import os
import sys
from pathlib import Path
from devstack import moto_fidelity

def resident() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

kept = moto_fidelity._keep_freed_memory() if sys.argv[1] == "keep" else True
before = resident()
block = b"x" * (64 << 20)
del block
print(kept, resident() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("mode", ["keep", "default"])
def test_the_process_hosting_moto_keeps_what_it_freed(mode: str) -> None:
    """A part-sized block freed by one request is reused by the next, not returned to the
    kernel (and zeroed again on first touch); by default glibc returns it."""
    done = subprocess.run(
        [sys.executable, "-c", FREED_PROBE, mode], capture_output=True, text=True, check=True
    )
    kept, grown = done.stdout.split()
    assert kept == "True"
    if mode == "keep":
        assert int(grown) >= 60 << 20
    else:
        assert int(grown) < 8 << 20
