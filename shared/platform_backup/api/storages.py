"""Backup storages and the authorized quota."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from platform_backup.api.models import ItemList, created, no_content, responses
from platform_backup.api.params import DEFAULT_LIMIT, Limit, NextToken
from platform_backup.composition import api as root
from platform_backup.domain.catalog import CatalogRebuild, CatalogRebuildRequest
from platform_backup.domain.storage import Quota, Storage, StoragePatch, StorageSpec

router = Router()


@router.post(
    "/v1/storages",
    summary="Register a backup storage",
    responses=responses(201, Storage, 409, 422, 503, body=True),
    tags=["storages"],
)
def create_storage(spec: Annotated[StorageSpec, Body()]) -> Response[Storage]:
    return created(root.storages().create(spec))


@router.get(
    "/v1/storages", summary="List backup storages", responses=responses(200, ItemList[Storage])
)
def list_storages(limit: Limit = DEFAULT_LIMIT, nextToken: NextToken = None) -> ItemList[Storage]:
    page = root.storages().page(limit, nextToken)
    return ItemList[Storage](items=page.items, nextToken=page.next_token)


@router.get(
    "/v1/storages/<storage_id>",
    summary="Show a storage",
    responses=responses(200, Storage, 404),
)
def get_storage(storage_id: str) -> Storage:
    return root.storages().get(storage_id)


@router.patch(
    "/v1/storages/<storage_id>",
    summary="Rename a storage or change its quota",
    responses=responses(200, Storage, 404, body=True),
)
def patch_storage(storage_id: str, patch: Annotated[StoragePatch, Body()]) -> Storage:
    return root.storages().update(storage_id, patch)


@router.delete(
    "/v1/storages/<storage_id>",
    summary="Remove a storage no plan uses and that holds no backups",
    responses=responses(204, None, 404, 409),
)
def delete_storage(storage_id: str) -> Response[None]:
    root.storages().delete(storage_id)
    return no_content()


@router.get(
    "/v1/quota", summary="Authorized, used and available bytes", responses=responses(200, Quota)
)
def get_quota() -> Quota:
    return root.storages().quota()


@router.post(
    "/v1/storages/<storage_id>/catalog-rebuilds",
    summary="Re-create the backup records of a lost or damaged catalog from this storage",
    description=(
        "Reads the storage's manifests in key order, verifies each dump's size and SHA-256 "
        "against its manifest and records the backups the catalog lacks; deletes nothing. "
        "One call works for up to the API's time limit: while `complete` is false, call again "
        "with `startAfter` set to the answer's `nextStartAfter`."
    ),
    responses=responses(200, CatalogRebuild, 404, 503, body=True),
    tags=["storages"],
)
def rebuild_catalog(
    storage_id: str, request: Annotated[CatalogRebuildRequest, Body()]
) -> CatalogRebuild:
    from platform_backup.services.ports import Deadline  # the use case's, loaded with it

    context = router.lambda_context
    deadline = Deadline(lambda: context.get_remaining_time_in_millis() / 1000)
    return root.catalog_rebuilder().rebuild(storage_id, deadline, request.startAfter)
