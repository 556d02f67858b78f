"""Reading one item by an id that may come from a URL: an empty or oversized key is a client's
mistake (not found), never a DynamoDB validation error (500). Every repository reads through
here, so no path can forget the check."""

from __future__ import annotations

from typing import TypeVar

from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

MAX_ID_LENGTH = 256
M = TypeVar("M", bound=Model)


def usable_id(value: str) -> bool:
    return 0 < len(value.encode("utf-8")) <= MAX_ID_LENGTH


def read_item(model: type[M], key: str) -> M | None:
    """The item with this hash key, read consistently, or None."""
    if not usable_id(key):
        return None
    try:
        return model.get(key, consistent_read=True)
    except DoesNotExist:
        return None
