"""The local stack's faster multipart completion answers exactly as moto's own does: same
object, ETag and checksum, and the same refusals."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
    ours = moto_fidelity._complete(multipart, iter(body))
    assert ours == moto_fidelity.moto_complete(multipart, iter(body))
    assert len(ours[0]) == 11 * MIB + 1000 and ours[1].endswith("-3")


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
