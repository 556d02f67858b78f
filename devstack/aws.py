"""The embedded AWS: moto's server in this process, and the environment that points boto3 at it."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from moto.moto_api._internal.models import moto_api_backend
from moto.server import ThreadedMotoServer

from devstack import moto_fidelity
from devstack.local_settings import LOCAL_SETTINGS

DEFAULT_ENDPOINT = "http://127.0.0.1:5000"
DEFAULT_REGION = "us-east-1"
# Any key works against moto; fixed ones keep a developer's real credentials out of the way.
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"


class PortInUse(OSError):
    pass


def _require_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"{host}:{port} is in use ({exc.strerror})") from None


def port_of(endpoint: str) -> int:
    parts = urlsplit(endpoint)
    return parts.port or (443 if parts.scheme == "https" else 80)


class EmbeddedAws:
    def __init__(
        self,
        port: int,
        region: str = DEFAULT_REGION,
        host: str = "127.0.0.1",
        run_workflows: bool = True,
    ) -> None:
        """``run_workflows=False``: a state machine's executions are started but not run (a
        test runs their steps itself)."""
        self.host = host
        self.run_workflows = run_workflows
        self.region = region
        self._requested_port = port
        self._server: ThreadedMotoServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_config: dict[str, Any] | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the embedded AWS is not started")
        return self._server.get_host_and_port()[1]

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        # Backends are process-wide: a stack started before in this process must not leak in.
        moto_api_backend.reset()
        # Conditional writes must race locally as they do on DynamoDB (see moto_fidelity).
        moto_fidelity.install()
        # Moto's server thread dies on a taken port while start() waits for it forever.
        _require_free(self.host, self._requested_port)
        self._server = ThreadedMotoServer(
            ip_address=self.host, port=self._requested_port, verbose=False
        )
        self._server.start()
        self._set_environment()
        self._saved_config = moto_api_backend.get_config()
        # The Step Functions engine then runs state machines for real, calling Lambda through
        # boto3 at localhost:$MOTO_PORT, i.e. back into this server and the in-process invoker.
        # Set before any state machine is made: moto keeps them in the engine this chose.
        moto_api_backend.set_config(
            {"stepfunctions": {"execute_state_machine": self.run_workflows}}
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._saved_config is not None:
            moto_api_backend.set_config(self._saved_config)
            self._saved_config = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def client(self, service: str, read_timeout: int = 60, attempts: int = 3) -> Any:
        """A boto3 client of the embedded AWS; ``attempts=1`` for calls that must not repeat."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
            config=Config(
                read_timeout=read_timeout,
                retries={"mode": "standard", "total_max_attempts": attempts},
            ),
        )

    def _set_environment(self) -> None:
        """Point every boto3 client of this process (the handlers' included) at moto.

        Done before any handler module is imported: handlers read their settings once.
        """
        values = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "MOTO_PORT": str(self.port),
        }
        # A developer's session token or profile would otherwise sign with real credentials.
        cleared = ("AWS_SESSION_TOKEN", "AWS_PROFILE")
        defaults = {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "pdb-local",
            **LOCAL_SETTINGS,
        }
        for key in (*values, *cleared, *defaults):
            self._saved_env.setdefault(key, os.environ.get(key))
        os.environ.update(values)
        for key in cleared:
            os.environ.pop(key, None)
        for key, value in defaults.items():
            os.environ.setdefault(key, value)
