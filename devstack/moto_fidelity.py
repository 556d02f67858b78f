"""Where moto is less strict than AWS in a way our guarantees depend on, make it as strict.

DynamoDB applies each conditional write and transaction atomically; moto checks conditions and
writes in plain Python, so two threads can both pass a condition that only one would pass on
AWS. Serializing moto's DynamoDB writes restores the atomicity that the single-plan guard, the
lease and the exactly-once execution rely on, so tests of those races test our code, not moto's.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()
_installed = False


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
    _installed = True
