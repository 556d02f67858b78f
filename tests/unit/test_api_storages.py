"""Backup storages and the quota, through the real API handler on moto."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import ApiClient


def storage_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "primary",
        "role": "local",
        "bucket": "pdb-primary",
        "region": "us-east-1",
        "prefix": "platform-db/",
        "capacityBytes": 107374182400,
    }
    body.update(overrides)
    return body


def test_register_a_storage_shows_its_quota(api: ApiClient) -> None:
    # When
    created = api.post("/v1/storages", storage_body())
    # Then
    assert created.status == 201
    storage = created.body
    assert storage["name"] == "primary"
    assert storage["bucket"] == "pdb-primary"
    assert storage["usedBytes"] == 0
    assert storage["availableBytes"] == 107374182400
    assert storage["id"] and storage["createdAt"]
    assert api.get(f"/v1/storages/{storage['id']}").body == storage


def test_a_bucket_that_does_not_exist_is_refused_with_422(api: ApiClient) -> None:
    response = api.post("/v1/storages", storage_body(bucket="no-such-bucket"))
    assert response.status == 422
    assert response.error_fields == ["bucket"]
    assert "does not exist" in response.body["error"]["message"]


def test_a_region_botocore_cannot_reach_is_refused_with_422_not_500(api: ApiClient) -> None:
    # (found by the API fuzz: a well-formed but unknown region name made boto3 raise)
    region = "jm-zhrvat-lrvxzkzx-jpbzkllmel-qhmf-drmeic-qyvvuyd-wtgt-up-pgo-og-h-6"
    response = api.post("/v1/storages", storage_body(region=region))
    assert response.status == 422, response.body
    assert f"region '{region}' is not an AWS region name" in response.body["error"]["message"]


def test_a_bucket_the_deployment_does_not_allow_is_refused_with_422(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment that allows only its own buckets
    from platform_backup.composition import api as root

    monkeypatch.setattr(root.storages(), "_allowed", ["arn:aws:s3:::pdb-primary"])
    # When a storage names another existing bucket
    response = api.post("/v1/storages", storage_body(bucket="pdb-remote"))
    # Then
    assert response.status == 422
    assert response.error_fields == ["bucket"]
    assert "AllowedBucketArns" in response.body["error"]["message"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"role": "offsite"}, "role"),
        ({"capacityBytes": 0}, "capacityBytes"),
        ({"name": ""}, "name"),
        ({"region": "moon"}, "region"),
        ({"prefix": "no-trailing-slash"}, "prefix"),
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_storage_fields_get_400_naming_the_field(
    api: ApiClient, overrides: dict[str, Any], field: str
) -> None:
    response = api.post("/v1/storages", storage_body(**overrides))
    assert response.status == 400
    assert response.body["error"]["code"] == "ValidationError"
    assert field in response.error_fields


def test_a_body_that_is_not_json_gets_400(api: ApiClient) -> None:
    response = api.call("POST", "/v1/storages", "{not json")
    assert response.status == 400
    assert response.body["error"]["code"] == "ValidationError"


def test_list_paginates_and_refuses_a_tampered_token(api: ApiClient) -> None:
    # Given three storages
    ids = {api.post("/v1/storages", storage_body(name=f"s{i}")).body["id"] for i in range(3)}
    # When listing one at a time
    seen: list[str] = []
    token = None
    while True:
        url = "/v1/storages?limit=1" + (f"&nextToken={token}" if token else "")
        page = api.get(url)
        assert page.status == 200
        seen += [item["id"] for item in page.body["items"]]
        token = page.body["nextToken"]
        if token is None:
            break
        last_token = token
    # Then every storage is listed once
    assert sorted(seen) == sorted(ids)
    # And a token changed by a client is refused, naming it
    tampered = last_token[:-1] + ("0" if last_token[-1] != "0" else "1")
    response = api.get(f"/v1/storages?limit=1&nextToken={tampered}")
    assert response.status == 400
    assert response.error_fields == ["nextToken"]


def test_patch_changes_name_and_quota_only(api: ApiClient) -> None:
    storage = api.post("/v1/storages", storage_body()).body
    patched = api.patch(f"/v1/storages/{storage['id']}", {"capacityBytes": 5, "name": "p2"})
    assert patched.status == 200
    assert (patched.body["name"], patched.body["capacityBytes"]) == ("p2", 5)
    assert patched.body["availableBytes"] == 5
    moved = api.patch(f"/v1/storages/{storage['id']}", {"bucket": "pdb-fallback"})
    assert moved.status == 400
    assert moved.error_fields == ["bucket"]


def test_unknown_storage_is_404(api: ApiClient) -> None:
    for response in (
        api.get("/v1/storages/nope"),
        api.patch("/v1/storages/nope", {"name": "x"}),
        api.delete("/v1/storages/nope"),
    ):
        assert response.status == 404
        assert response.body["error"]["code"] == "NotFound"


def test_delete_a_free_storage(api: ApiClient) -> None:
    storage = api.post("/v1/storages", storage_body()).body
    assert api.delete(f"/v1/storages/{storage['id']}").status == 204
    assert api.get(f"/v1/storages/{storage['id']}").status == 404


def test_quota_sums_every_storage(api: ApiClient) -> None:
    api.post("/v1/storages", storage_body(capacityBytes=100))
    api.post("/v1/storages", storage_body(name="remote", role="remote", capacityBytes=50))
    quota = api.get("/v1/quota")
    assert quota.status == 200
    assert quota.body["capacityBytes"] == 150
    assert quota.body["usedBytes"] == 0
    assert quota.body["availableBytes"] == 150
    assert len(quota.body["storages"]) == 2


def test_an_unknown_route_answers_404_in_the_error_shape(api: ApiClient) -> None:
    response = api.get("/v1/nothing-here")
    assert response.status == 404
    assert response.body["error"]["code"] == "NotFound"


def test_a_bucket_without_versioning_is_refused_with_422_naming_the_setting(
    api: ApiClient,
) -> None:
    # Given a bucket that keeps no versions
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="pdb-unversioned")
    # When a storage names it
    response = api.post("/v1/storages", storage_body(bucket="pdb-unversioned"))
    # Then it is refused, naming the setting to turn on
    assert response.status == 422, response.body
    assert response.error_fields == ["bucket"]
    assert "versioning never enabled" in response.body["error"]["message"]
    assert "VersioningConfiguration Status Enabled" in response.body["error"]["message"]


def test_patching_a_storage_whose_bucket_stopped_versioning_is_refused(api: ApiClient) -> None:
    # Given a storage, then its bucket's versioning suspended
    import boto3

    created = api.post("/v1/storages", storage_body()).body
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_bucket_versioning(Bucket="pdb-primary", VersioningConfiguration={"Status": "Suspended"})
    # When it is patched
    response = api.patch(f"/v1/storages/{created['id']}", {"capacityBytes": 10**12})
    # Then 422 naming the setting, and the storage is unchanged
    assert response.status == 422, response.body
    assert response.error_fields == ["bucket"]
    assert "versioning suspended" in response.body["error"]["message"]
    assert api.get(f"/v1/storages/{created['id']}").body["capacityBytes"] == 107374182400
