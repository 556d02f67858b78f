"""Backup storages: where dumps are kept. A local storage holds the plan's copies (the first one
of the plan is primary, the second its failover); a remote storage holds the off-site copies."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

# S3's rules for bucket names (general purpose buckets).
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
StorageRole = Literal["local", "remote"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StorageSpec(_Model):
    name: str = Field(min_length=1, max_length=128)
    role: StorageRole
    bucket: str = Field(pattern=BUCKET_PATTERN, description="an existing S3 bucket")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="e.g. us-east-1")
    prefix: str = Field(
        default="",
        max_length=512,
        pattern=r"^([A-Za-z0-9!_.*'()-]+/)*$",
        description="key prefix, empty or ending with '/'",
    )
    capacityBytes: int = Field(ge=1, le=2**63 - 1, description="authorized quota in bytes")


class StoragePatch(_Model):
    """Fields an operator may change once the storage holds backups: the name and the quota.
    The bucket, region, prefix and role identify where existing copies are, so they stay."""

    name: str | None = Field(default=None, min_length=1, max_length=128)
    capacityBytes: int | None = Field(default=None, ge=1, le=2**63 - 1)


class Storage(StorageSpec):
    id: str
    usedBytes: int = 0
    createdAt: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def availableBytes(self) -> int:
        return max(self.capacityBytes - self.usedBytes, 0)


class Quota(BaseModel):
    capacityBytes: int
    usedBytes: int
    availableBytes: int
    storages: list[Storage]


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def bucket_allowed(bucket: str, allowed_arns: list[str]) -> bool:
    """Whether the deployment lets its roles reach this bucket. ``*`` allows any (local stack)."""
    arn = bucket_arn(bucket)
    for allowed in allowed_arns:
        if allowed == "*":
            return True
        pattern = "^" + re.escape(allowed).replace(r"\*", ".*") + "$"
        if re.match(pattern, arn):
            return True
    return False
