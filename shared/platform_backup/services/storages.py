"""Use cases of backup storages and the authorized quota."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from platform_backup.domain.storage import (
    Quota,
    Storage,
    StoragePatch,
    StorageSpec,
    bucket_allowed,
)
from platform_backup.errors import FieldError, Unprocessable
from platform_backup.services.ports import BucketProbe, Page, StorageRepository


class StorageService:
    def __init__(
        self,
        repo: StorageRepository,
        probe: BucketProbe,
        allowed_bucket_arns: list[str],
        clock: Callable[[], datetime],
    ) -> None:
        self._repo = repo
        self._probe = probe
        self._allowed = allowed_bucket_arns
        self._clock = clock

    def create(self, spec: StorageSpec) -> Storage:
        if not bucket_allowed(spec.bucket, self._allowed):
            message = (
                f"bucket '{spec.bucket}' is not among the buckets this deployment may use: "
                "add its ARN to the AllowedBucketArns parameter and redeploy"
            )
            raise Unprocessable(message, [FieldError("bucket", message)])
        problem = self._probe.problem(spec.bucket, spec.region)
        if problem:
            raise Unprocessable(problem, [FieldError("bucket", problem)])
        storage = Storage(id=uuid.uuid4().hex, createdAt=self._clock(), **spec.model_dump())
        self._repo.create(storage)
        return storage

    def get(self, storage_id: str) -> Storage:
        return self._repo.get(storage_id)

    def page(self, limit: int, token: str | None) -> Page[Storage]:
        return self._repo.page(limit, token)

    def update(self, storage_id: str, patch: StoragePatch) -> Storage:
        current = self._repo.get(storage_id)
        # A bucket whose versioning was turned off since the storage was made is refused too.
        problem = self._probe.problem(current.bucket, current.region)
        if problem:
            raise Unprocessable(problem, [FieldError("bucket", problem)])
        return self._repo.update(storage_id, patch)

    def delete(self, storage_id: str) -> None:
        self._repo.delete(storage_id)

    def quota(self) -> Quota:
        storages: list[Storage] = sorted(self._repo.all(), key=lambda s: s.createdAt)
        capacity = sum(s.capacityBytes for s in storages)
        used = sum(s.usedBytes for s in storages)
        available = sum(s.availableBytes for s in storages)
        return Quota(
            capacityBytes=capacity, usedBytes=used, availableBytes=available, storages=storages
        )
