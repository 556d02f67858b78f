"""Outcome events on EventBridge (retention consumes the successes)."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client
from platform_backup.observability import logger

SOURCE = "platform-backup"


class EventBridgePublisher:
    def __init__(self, region: str, bus: str) -> None:
        self._region = region
        self._bus = bus

    def publish(self, detail_type: str, detail: dict[str, object]) -> None:
        entry = {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
            "EventBusName": self._bus,
        }
        try:
            response = client("events", self._region).put_events(Entries=[entry])
        except (ClientError, BotoCoreError):
            # The execution record is the source of truth; a lost event delays pruning to the
            # next success and is caught by the staleness alarm, it never loses a backup.
            logger.exception("outcome event not published", detail_type=detail_type)
            return
        if response.get("FailedEntryCount"):
            logger.error("outcome event refused", detail_type=detail_type, response=response)
