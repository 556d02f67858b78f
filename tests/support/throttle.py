"""DynamoDB throttling caused for real, at the point where the request would go on the wire: the
embedded AWS's ``before-send`` hook (moto's, on every botocore client, pynamodb's included)
answers chosen calls with DynamoDB's throttling error and writes nothing. botocore's standard
retry policy, pynamodb's error wrapping and our classification all run as they would on AWS, and
clients created later (a function's cold start binds its tables again) are throttled too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import standard
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.responses import DynamoHandler
from pynamodb.models import Model

THROTTLED = "ProvisionedThroughputExceededException"
_active: list[Throttle] = []
_moto_call = BotocoreStubber.__call__


@dataclass
class Throttle:
    """Answers ``times`` calls (None: every call) of ``operation`` on ``table`` with a throttle."""

    operation: str
    table: str
    times: int | None = None
    answered: int = 0

    def answer(self, event_name: str, request: Any) -> AWSResponse | None:
        if not event_name.endswith(f".dynamodb.{self.operation}"):
            return None
        body = json.loads(request.body or b"{}")
        tables = {body.get("TableName")} | {
            op.get("TableName") for item in body.get("TransactItems", []) for op in item.values()
        }
        if self.table not in tables or (self.times is not None and self.answered >= self.times):
            return None
        self.answered += 1
        error = {
            "__type": f"com.amazonaws.dynamodb.v20120810#{THROTTLED}",
            "message": "The level of configured provisioned throughput for the table was exceeded",
        }
        headers = {"x-amzn-RequestId": f"throttled-{self.answered}"}
        return AWSResponse(request.url, 400, headers, MockRawResponse(json.dumps(error).encode()))


def _throttling_moto(
    self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any
) -> AWSResponse | None:
    if self.enabled:
        for throttle in list(_active):
            response = throttle.answer(event_name, request)
            if response is not None:
                return response
    return _moto_call(self, event_name, request, **kwargs)


@contextmanager
def throttled(model: type[Model], operation: str, times: int | None = None) -> Iterator[Throttle]:
    """Throttles ``operation`` (PutItem, UpdateItem, DeleteItem, TransactWriteItems) on the
    model's table, alone or in a transaction."""
    meta: Any = model.Meta
    throttle = Throttle(operation, meta.table_name, times)
    _active.append(throttle)
    BotocoreStubber.__call__ = _throttling_moto  # type: ignore[method-assign]
    try:
        yield throttle
    finally:
        _active.remove(throttle)
        if not _active:
            BotocoreStubber.__call__ = _moto_call  # type: ignore[method-assign]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard policy's retries, without its sleeps between them."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@contextmanager
def throttled_in_aws(
    monkeypatch: pytest.MonkeyPatch, table: str, operation: str
) -> Iterator[list[str]]:
    """The embedded AWS's server (in this process) answers ``operation`` (PutItem, UpdateItem,
    DeleteItem) on ``table`` with DynamoDB's throttling error and writes nothing: a function in
    its worker process gets it over the wire, retries it with its SDK's policy and gives up as it
    would on AWS. Yields the operations it throttled, one per call."""
    handler = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
    original = getattr(DynamoHandler, handler)
    answered: list[str] = []

    def throttling(self: DynamoHandler) -> Any:
        if self.body.get("TableName") == table:
            answered.append(operation)
            raise JsonRESTError(
                THROTTLED,
                "The level of configured provisioned throughput for the table was exceeded",
            )
        return original(self)

    with monkeypatch.context() as patch:
        patch.setattr(DynamoHandler, handler, throttling)
        yield answered
