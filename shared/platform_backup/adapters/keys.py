"""Ids that come from a URL are checked before they become DynamoDB keys: an empty or oversized
key is a client's mistake (404), not a DynamoDB error (500)."""

from __future__ import annotations

MAX_ID_LENGTH = 256


def usable_id(value: str) -> bool:
    return 0 < len(value.encode("utf-8")) <= MAX_ID_LENGTH
