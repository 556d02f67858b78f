"""Query parameters shared by every list."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

Limit = Annotated[int, Query(ge=1, le=100, description="items per page (1-100)")]
NextToken = Annotated[
    str | None, Query(max_length=2048, description="from the previous page; opaque")
]
DEFAULT_LIMIT = 50
