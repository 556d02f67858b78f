"""Reading one item by an id that may come from a URL: an empty or oversized key is a client's
mistake (not found), never a DynamoDB validation error (500). Every repository reads through
here, so no path can forget the check."""

from __future__ import annotations

from typing import TypeVar

from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from platform_backup.errors import NotFound

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


def not_found(noun: str, key: str) -> NotFound:
    """The 404 for a missing item, naming it (an id from a URL is cut to 64 characters)."""
    return NotFound(f"{noun} '{key[:64]}' does not exist")


def required_item(model: type[M], key: str, noun: str) -> M:
    """The item with this hash key, read consistently, or NotFound naming it."""
    item = read_item(model, key)
    if item is None:
        raise not_found(noun, key)
    return item
