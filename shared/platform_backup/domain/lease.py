"""The plan's job lease, as the use cases see it (adapters/lease.py keeps it in DynamoDB)."""

from __future__ import annotations

from dataclasses import dataclass


class LeaseLost(Exception):
    """The lease expired or was taken over while its holder still worked."""


@dataclass(frozen=True)
class Holder:
    owner: str
    kind: str
    expires_at: float
    reason: str | None
