"""The local stack's own settings, from the environment the contract names (`make run`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from devstack.aws import DEFAULT_ENDPOINT, DEFAULT_REGION, port_of


@dataclass(frozen=True)
class DatabaseAccess:
    """The platform database the stack protects, as its secret will hold it."""

    host: str = "127.0.0.1"
    port: int = 3306
    username: str = "root"
    password: str = ""

    def secret(self) -> dict[str, object]:
        # The RDS secret format, which the functions read deployed as well.
        return {
            "engine": "mariadb",
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
        }


@dataclass(frozen=True)
class LocalConfig:
    api_port: int
    aws_port: int
    region: str
    database: DatabaseAccess
    state_dir: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalConfig:
        source = os.environ if env is None else env
        endpoint = source.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT
        return cls(
            api_port=int(source.get("API_PORT") or 8080),
            aws_port=port_of(endpoint),
            region=source.get("AWS_REGION") or DEFAULT_REGION,
            database=DatabaseAccess(
                host=source.get("PLATFORM_DB_HOST") or "127.0.0.1",
                port=int(source.get("PLATFORM_DB_PORT") or 3306),
                username=source.get("PLATFORM_DB_USER") or "root",
                password=source.get("PLATFORM_DB_PASSWORD", ""),
            ),
            state_dir=source.get("DEVSTACK_STATE") or None,
        )
