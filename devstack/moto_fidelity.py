"""Where moto behaves unlike AWS in a way that matters here, make it behave like AWS.

DynamoDB applies each conditional write and transaction atomically; moto checks conditions and
writes in plain Python, so two threads can both pass a condition that only one would pass on
AWS. Serializing moto's DynamoDB writes restores the atomicity that the single-plan guard, the
lease and the exactly-once execution rely on, so tests of those races test our code, not moto's.

S3 completes a multipart upload in milliseconds. Moto spools every part and object over 5 MB to
a temporary file and, to complete, grows one bytearray part by part, reads each part twice and
copies the whole object once more: over a second of CPU for a 250 MB backup, on the same cores
as the dump tool, which made the local stack (and ``make bench``) measure moto rather than our
pipeline. Here objects stay in memory and completion reads each part once and joins them once;
the checks, the ETag and the checksums are moto's own (tests/unit/test_moto_fidelity.py).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.s3 import models as s3_models
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeMultipart
from moto.s3.utils import compute_checksum
from moto.utilities.utils import md5_hash

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()
_installed = False
# Objects up to this size stay in memory (moto's default spools anything over 5 MB to disk).
S3_IN_MEMORY_BYTES = 1 << 40
# Moto's own completion, which ours must match.
moto_complete = FakeMultipart.complete


def install() -> None:
    global _installed
    if _installed:
        return
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def atomic(
            self: DynamoDBBackend, *args: Any, __original: Any = original, **kwargs: Any
        ) -> Any:
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, atomic)
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(S3_IN_MEMORY_BYTES))
    FakeMultipart.complete = _complete  # type: ignore[method-assign]
    _installed = True


def _complete(
    self: FakeMultipart, body: Iterator[tuple[int, str]]
) -> tuple[bytes, str, tuple[str, str, int] | None]:
    """FakeMultipart.complete with the same checks and results, in linear time."""
    algorithm = self.metadata.get("x-amz-checksum-algorithm") or "CRC64NVME"
    checksum_type = self.metadata.get("x-amz-checksum-type") or (
        "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    )
    values: list[bytes] = []
    md5s = bytearray()
    last = None
    for number, etag in body:
        part = self.parts.get(number)
        part_etag = part.etag.replace('"', "") if part is not None else None
        if part is None or part_etag != etag.replace('"', ""):
            raise InvalidPart()
        # Read at each call, as moto does: tests may lower it for small parts.
        if last is not None and last.contentsize < s3_models.S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        md5s.extend(bytes.fromhex(part_etag))
        values.append(part.value)
        last = part
    if not values:
        raise MalformedXML
    whole = b"".join(values)
    if checksum_type == "COMPOSITE":
        parts = b"".join(compute_checksum(v, algorithm, encode_base64=False) for v in values)
        checksum = (checksum_type, compute_checksum(parts, algorithm).decode(), len(values))
    else:
        checksum = (checksum_type, compute_checksum(whole, algorithm).decode(), 1)
    return whole, f"{md5_hash(bytes(md5s)).hexdigest()}-{len(values)}", checksum
