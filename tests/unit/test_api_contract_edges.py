"""The API never answers outside the contract: an unexpected exception is a 500 in the error
shape with a request id; page tokens are signed, and every forged one is a 400 naming the field;
a retried storage create makes no second storage; an event the executor refuses fails."""

from __future__ import annotations

import base64
import json
import sys
import threading
from typing import Any
from urllib.parse import urlencode

import pytest

from platform_backup.adapters import pagination
from tests.support.api import ApiClient, rest_event
from tests.support.moto_env import MotoEnv


def storage_body(name: str = "primary", bucket: str = "pdb-primary") -> dict[str, Any]:
    return {
        "name": name,
        "role": "local",
        "bucket": bucket,
        "region": "us-east-1",
        "capacityBytes": 10**12,
    }


# -- the catch-all ------------------------------------------------------------------------------


def test_an_unexpected_exception_is_a_500_in_the_error_shape_with_the_request_id(
    aws: MotoEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a use case that fails in a way no route expects
    from platform_backup.api import errors
    from platform_backup.composition import api as root

    logged: list[tuple[str, dict[str, Any], BaseException | None]] = []

    def record(message: str, **fields: Any) -> None:
        logged.append((message, fields, sys.exc_info()[1]))

    monkeypatch.setattr(errors.logger, "exception", record)

    def boom(*_: Any) -> None:
        raise KeyError("secret internals")

    monkeypatch.setattr(root.storages(), "page", boom)
    # When the route is called
    outcome = aws.invoker.invoke("pdb-api", rest_event("GET", "/v1/storages"), "req-1234")
    # Then the answer is the contract's shape, a 500 naming the request id, and no stack
    assert outcome.function_error is None
    result = json.loads(outcome.payload)
    assert result["statusCode"] == 500
    error = json.loads(result["body"])["error"]
    assert error["code"] == "InternalError"
    assert error["requestId"] == "req-1234"
    assert "req-1234" in error["message"]
    assert error["details"] == []
    assert "Traceback" not in result["body"] and "secret internals" not in result["body"]
    # And the exception (logger.exception: with its stack) is logged under the request id
    [(_, fields, exc)] = logged
    assert fields == {"request_id": "req-1234"}
    assert isinstance(exc, KeyError)


def test_domain_errors_keep_their_status(api: ApiClient) -> None:
    assert api.get("/v1/storages/nope").status == 404
    assert api.call("PUT", "/v1/storages").status in (404, 405)


# -- page tokens --------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture
def real_token(api: ApiClient) -> str:
    for i in range(3):
        assert api.post("/v1/storages", storage_body(f"s{i}")).status == 201
    page = api.get("/v1/storages?limit=1")
    assert page.status == 200
    token = page.body["nextToken"]
    assert token
    # And it works
    assert api.get("/v1/storages?" + urlencode({"limit": 1, "nextToken": token})).status == 200
    return str(token)


def _forgeries(real: str) -> list[str]:
    body, _, mac = real.partition(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    key = json.loads(payload)
    edited = _b64(json.dumps({"id": {"S": "zzz"}}).encode())
    wrong_type = _b64(json.dumps({"id": {"N": 5}}).encode())
    old_digest = "0123456789abcdef"
    return [
        "garbage",
        "!!!",
        ".",
        body,  # no MAC
        body + ".",  # empty MAC
        body + "." + mac[:-2],  # truncated MAC
        body[:-2] + "." + mac,  # truncated payload
        edited + "." + mac,  # payload edited, MAC kept
        wrong_type + "." + mac,
        _b64(b"[1, 2, 3]") + "." + old_digest,
        _b64(b"not json") + "." + mac,
        _b64(json.dumps(key).encode()) + "." + old_digest,  # the old unkeyed shape
        real + "x",
        "x" * 5000,
        "\u00e9t\u00e9.\u00e9t\u00e9",
    ]


def test_every_forged_page_token_is_a_400_naming_the_field(api: ApiClient, real_token: str) -> None:
    for forged in _forgeries(real_token):
        for url in ("/v1/storages", "/v1/plans", "/v1/executions", "/v1/backups", "/v1/restores"):
            response = api.get(url + "?" + urlencode({"nextToken": forged, "limit": "1"}))
            assert response.status == 400, (url, forged, response.body)
            assert response.error_fields == ["nextToken"], (url, forged)


def test_a_token_of_one_list_is_refused_by_another(api: ApiClient, real_token: str) -> None:
    response = api.get("/v1/executions?" + urlencode({"nextToken": real_token}))
    assert response.status == 400
    assert response.error_fields == ["nextToken"]


def test_a_token_signed_with_another_key_is_refused(api: ApiClient, real_token: str) -> None:
    # Given the same key content signed by another deployment's key
    pagination.bind_key(lambda: b"another deployment's key, 32+ bytes long")
    other = pagination.encode_token({"id": {"S": "x"}})
    from platform_backup.composition import common

    common.reset()  # the API binds its own key again at its next cold start
    response = api.get("/v1/storages?" + urlencode({"nextToken": other}))
    assert response.status == 400
    assert response.error_fields == ["nextToken"]


def test_the_token_does_not_show_the_key_in_the_clear(real_token: str) -> None:
    assert "pdb-page" not in real_token


# -- storages are unique by name ----------------------------------------------------------------


def test_a_retried_storage_create_makes_no_second_storage(api: ApiClient) -> None:
    first = api.post("/v1/storages", storage_body())
    assert first.status == 201
    # When the client retries the same request
    again = api.post("/v1/storages", storage_body())
    # Then 409 naming the existing storage, and the quota counts it once
    assert again.status == 409
    assert first.body["id"] in again.body["error"]["message"]
    assert again.error_fields == ["name"]
    quota = api.get("/v1/quota").body
    assert quota["capacityBytes"] == 10**12
    assert [s["id"] for s in quota["storages"]] == [first.body["id"]]


def test_creates_racing_with_one_name_make_one_storage(api: ApiClient) -> None:
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def create() -> None:
        barrier.wait()
        statuses.append(api.post("/v1/storages", storage_body()).status)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409, 409, 409]
    assert len(api.get("/v1/storages").body["items"]) == 1


def test_a_rename_moves_the_name_and_a_delete_frees_it(api: ApiClient) -> None:
    a = api.post("/v1/storages", storage_body("a")).body
    b = api.post("/v1/storages", storage_body("b")).body
    # A rename onto a taken name is refused, naming the holder
    taken = api.patch(f"/v1/storages/{b['id']}", {"name": "a"})
    assert taken.status == 409 and a["id"] in taken.body["error"]["message"]
    # A rename to a free name frees the old one
    assert api.patch(f"/v1/storages/{a['id']}", {"name": "c"}).body["name"] == "c"
    assert api.post("/v1/storages", storage_body("a")).status == 201
    # A delete frees its name
    assert api.delete(f"/v1/storages/{b['id']}").status == 204
    assert api.post("/v1/storages", storage_body("b")).status == 201


# -- the executor -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"planId": "p1"},
        {"planId": "p1", "scheduledTime": "tomorrow"},
        {"planId": "p1", "scheduledTime": 12345},
    ],
)
def test_an_event_the_executor_refuses_fails_the_invocation(
    aws: MotoEnv, event: dict[str, Any]
) -> None:
    outcome = aws.invoker.invoke("pdb-executor", event)
    assert outcome.function_error is not None
    assert "scheduledTime" in outcome.payload.decode()
