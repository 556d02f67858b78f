"""Ids in URLs that could never be keys (oversized) are answered 404, never a 5xx."""

from __future__ import annotations

import pytest

from tests.support.api import ApiClient

HUGE = "x" * 300


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/storages/{HUGE}"),
        ("DELETE", f"/v1/storages/{HUGE}"),
        ("GET", f"/v1/plans/{HUGE}"),
        ("GET", f"/v1/executions/{HUGE}"),
        ("GET", f"/v1/backups/{HUGE}"),
        ("DELETE", f"/v1/backups/{HUGE}"),
        ("GET", f"/v1/restores/{HUGE}"),
    ],
)
def test_an_id_that_cannot_exist_is_404(api: ApiClient, method: str, path: str) -> None:
    response = api.call(method, path)
    assert response.status == 404, response.body
    assert response.body["error"]["code"] == "NotFound"
