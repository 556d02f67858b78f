from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api import ApiClient
from tests.support.moto_env import MotoEnv, moto_env


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never reach a network endpoint: moto answers in-process."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PlatformDatabaseBackup")


@pytest.fixture
def aws() -> Iterator[MotoEnv]:
    with moto_env() as env:
        yield env


@pytest.fixture
def api(aws: MotoEnv) -> ApiClient:
    return ApiClient(aws.invoker)
