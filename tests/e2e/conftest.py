"""The local stack as `make run` starts it: `python -m devstack` in its own process, on free
ports, stopped (SIGTERM, as Ctrl-C would) when the session ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.databases import FIXTURES, RUN_ID, load, sql

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# Importing the handlers and creating every resource takes a few seconds; a loaded CI box more.
START_DEADLINE_SECONDS = 120


@dataclass(frozen=True)
class RunningStack:
    api_url: str
    aws_endpoint: str
    log_path: Path

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's embedded AWS."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.aws_endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _wait_until_up(process: subprocess.Popen[bytes], stack: RunningStack) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    # The API port opens last, after every resource exists.
    while not (_answers(f"{stack.aws_endpoint}/moto-api/") and _answers(stack.api_url)):
        if process.poll() is not None:
            raise RuntimeError(
                f"the local stack exited with {process.returncode}:\n"
                + stack.log_path.read_text(errors="replace")[-4000:]
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"the local stack did not come up; its log: {stack.log_path}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def platform_databases() -> Iterator[list[str]]:
    """The platform database the local stack protects: the ZStack schema fixture with its seed
    rows, and a small second database, under throwaway names (never anyone's real ones)."""
    zstack, rest = f"pdbe2e_{RUN_ID}_zstack", f"pdbe2e_{RUN_ID}_rest"
    try:
        load(zstack, FIXTURES / "zstack-platform-db.sql")
        sql(f"CREATE DATABASE `{rest}`")
        sql(
            "CREATE TABLE ApiToken (id INT PRIMARY KEY, token VARCHAR(64)) ENGINE=InnoDB; "
            "INSERT INTO ApiToken SELECT seq, md5(seq) FROM seq_1_to_100;",
            rest,
        )
        yield [zstack, rest]
    finally:
        sql(f"DROP DATABASE IF EXISTS `{zstack}`; DROP DATABASE IF EXISTS `{rest}`;")


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, platform_databases: list[str]
) -> Iterator[RunningStack]:
    api_port, aws_port = _free_port(), _free_port()
    log_path = tmp_path_factory.mktemp("devstack") / "devstack.log"
    running = RunningStack(
        api_url=f"http://127.0.0.1:{api_port}",
        aws_endpoint=f"http://127.0.0.1:{aws_port}",
        log_path=log_path,
    )
    env = {
        **os.environ,
        "API_PORT": str(api_port),
        "AWS_ENDPOINT_URL": running.aws_endpoint,
        "AWS_REGION": REGION,
        "PLATFORM_DB_NAMES": ",".join(platform_databases),
        "PYTHONUNBUFFERED": "1",
        # As pytest's pythonpath, in case the package is not installed into the virtualenv.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT / "shared"), str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    env.pop("DEVSTACK_STATE", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
        )
    try:
        _wait_until_up(process, running)
        yield running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # Each function called the embedded AWS as its template role: every call it was not granted
    # is in the log (devstack.iam_local), and fails the session that made it.
    ungranted = sorted(
        {
            line.split("ungranted call: ", 1)[1].strip()
            for line in log_path.read_text(errors="replace").splitlines()
            if "ungranted call: " in line
        }
    )
    assert not ungranted, "calls template.yaml does not grant:\n" + "\n".join(ungranted)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # The console's browser tests leave a screenshot of each page here, for review.
    shots = REPO_ROOT / ".artifacts" / "console-screenshots"
    if shots.is_dir():
        terminalreporter.write_line(f"console screenshots: {shots}")
