"""Reading chosen frames of a framed backup from S3 (a restore of chosen tables): ranged GETs
of the frames, neighbours joined into one read, each frame checked against the index before it
is handed on (its compressed length, that it is one whole zstd frame whose content checksum
holds, and the length of the SQL it holds)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import zstandard

from platform_backup.domain.frame_index import Frame, merged_ranges
from platform_backup.errors import ChecksumMismatch

# Frames closer than this are read in one request (the bytes between are read and dropped), up
# to this much per request: a whole restore is not one GET held in memory before its first frame
# is applied, and no response waits half-read while the connections are busy.
JOIN_GAP = 64 << 10
JOIN_LIMIT = 16 << 20


def check_frame(frame: Frame, data: bytes, where: str) -> bytes:
    """The frame's SQL; raises ChecksumMismatch unless ``data`` is exactly the frame the index
    describes."""
    if len(data) != frame.length:
        raise ChecksumMismatch(
            f"{where}: frame at {frame.offset} is {len(data)} bytes, not {frame.length}"
        )
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        text = decompressor.decompress(data)
    except zstandard.ZstdError as exc:
        raise ChecksumMismatch(f"{where}: frame at {frame.offset} is damaged ({exc})") from None
    if not decompressor.eof or decompressor.unused_data or len(text) != frame.raw_length:
        raise ChecksumMismatch(
            f"{where}: frame at {frame.offset} does not hold the {frame.raw_length} bytes of SQL "
            "the index says"
        )
    return text


def read_frames(
    read_range: Callable[[int, int], bytes],
    frames: Sequence[Frame],
    on_read: Callable[[int], None],
    where: str,
    sql: bool = False,
) -> Iterator[bytes]:
    """``frames`` (in the object's order) read with ``read_range(start, end)`` (end exclusive);
    with ``sql``, the SQL the check decompressed instead of the frames (no second pass)."""
    ordered = sorted(frames, key=lambda f: f.offset)
    done = 0
    read = 0
    for start, end in merged_ranges(ordered, JOIN_GAP, JOIN_LIMIT):
        data = read_range(start, end)
        read += len(data)
        on_read(read)
        while done < len(ordered) and ordered[done].end <= end:
            frame = ordered[done]
            piece = data[frame.offset - start : frame.end - start]
            text = check_frame(frame, piece, where)
            yield text if sql else piece
            done += 1


def s3_range_reader(
    s3: Any, bucket: str, key: str, version: str | None
) -> Callable[[int, int], bytes]:
    extra = {"VersionId": version} if version and version != "null" else {}

    def read(start: int, end: int) -> bytes:
        response = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **extra)
        return bytes(response["Body"].read())

    return read
