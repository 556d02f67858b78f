"""Lambda's execution environments, locally: one pool of worker processes per function.

A worker (devstack/lambda_runtime/bootstrap.py) loads its function's handler once and then runs
one invocation at a time; a warm worker is reused, keeping its TMPDIR as a reused execution
environment keeps /tmp. An invocation that reaches the function's Timeout has its worker killed
(SIGKILL, with every process it started) as Lambda stops it, and a worker that dies mid-invocation
(SIGKILL from a test, an out-of-memory kill) fails its invocation as Lambda reports it. A worker
that replaces a killed one gets the killed one's TMPDIR back, as Lambda may start the new runtime
in the same environment: whatever the killed invocation left there is still there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.functions import FunctionSpec
from devstack.lambda_runtime import bootstrap
from devstack.local_settings import LOCAL_SETTINGS
from devstack.template import REPO_ROOT

log = logging.getLogger("devstack.workers")

BOOTSTRAP = Path(bootstrap.__file__).resolve()
LAYER = REPO_ROOT / "shared"  # the shared layer, as Lambda puts it on the path


@dataclass(frozen=True)
class Reply:
    payload: bytes
    function_error: str | None = None


def error_reply(error_type: str, message: str, stack: list[str] | None = None) -> Reply:
    payload = bootstrap.error_payload(error_type, message, stack)
    return Reply(payload=json.dumps(payload).encode(), function_error="Unhandled")


class _Gone(Exception):
    """The worker's answer will not come: it exited, or its time ran out."""

    def __init__(self, timed_out: bool) -> None:
        self.timed_out = timed_out


class Worker:
    """One execution environment: a process running bootstrap.py for one function."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], tmpdir: Path) -> None:
        self.spec = spec
        self.tmpdir = tmpdir
        module_name = "devstack_function_" + spec.name.replace("-", "_")
        args = [str(spec.source), spec.handler, module_name, spec.name]
        # Its own session: a kill reaches every process the handler started (the dump tools).
        self._process = subprocess.Popen(
            [sys.executable, str(BOOTSTRAP), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**env, "TMPDIR": str(tmpdir)},
            cwd=str(spec.source.parent),
            start_new_session=True,
        )
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self._process.pid

    def init(self) -> dict[str, Any] | None:
        """Waits for the handler to load: None when loaded, else Lambda's error payload."""
        try:
            message = self._read(time.monotonic() + self.spec.timeout_seconds)
        except _Gone as gone:
            description = "" if gone.timed_out else self.exit_description()
            self.kill()
            if gone.timed_out:
                text = f"{self.spec.name}: init timed out after {self.spec.timeout_seconds} s"
                return bootstrap.error_payload("Sandbox.Timedout", text)
            text = f"{self.spec.name}: Runtime exited during init: {description}"
            return bootstrap.error_payload("Runtime.ExitError", text)
        if message.get("init") == "ok":
            return None
        self.kill()
        error: dict[str, Any] = message["init"]
        return error

    def call(self, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Sends one invocation and waits for its answer until ``deadline`` (monotonic)."""
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _Gone(timed_out=False) from None
        return self._read(deadline)

    def _read(self, deadline: float) -> dict[str, Any]:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Gone(timed_out=True)
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise _Gone(timed_out=False)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def kill(self) -> None:
        """SIGKILL to the worker and everything it started; waits for the worker to go."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def exit_description(self) -> str:
        """How the worker ended, once its answer channel closed (it is exiting then)."""
        try:
            code: int | None = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}ed"
        return f"exit status {code}"


class WorkerPool:
    """The execution environments of one function: as many as run at once, started on demand,
    kept warm between invocations."""

    def __init__(
        self, spec: FunctionSpec, tmp_root: Path, credentials: Mapping[str, str] | None = None
    ) -> None:
        self.spec = spec
        self._credentials = dict(credentials or {})
        self._tmp_root = tmp_root / spec.name
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._free_tmpdirs: list[Path] = []
        self._stopped = False

    def busy_pids(self) -> list[int]:
        """The workers running an invocation now, init done (a test kills one of them)."""
        with self._lock:
            return [worker.pid for worker in self._busy]

    def invoke(self, event: Any, request_id: str, arn: str) -> Reply:
        taken = self._take()
        if taken is None:
            # The stack stopped while this (asynchronous) invocation was on its way.
            message = f"RequestId: {request_id} Error: the local stack has stopped"
            return error_reply("ServiceException", message)
        worker, init_error = taken
        if init_error is not None:
            return Reply(json.dumps(init_error).encode(), function_error="Unhandled")
        timeout = self.spec.timeout_seconds
        request = {
            "event": event,
            "requestId": request_id,
            "functionName": self.spec.name,
            "functionArn": arn,
            "memoryMb": self.spec.memory_mb,
            "timeoutSeconds": timeout,
            "deadlineMs": time.time() * 1000 + timeout * 1000,
        }
        try:
            answer = worker.call(request, time.monotonic() + timeout)
        except _Gone as gone:
            description = "" if gone.timed_out else worker.exit_description()
            # The kill takes what it started too (the worker may have died alone).
            self._discard(worker)
            if gone.timed_out:
                log.warning("%s timed out after %ss: worker killed", self.spec.name, timeout)
                message = (
                    f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
                )
                return error_reply("Sandbox.Timedout", message)
            log.warning("%s: worker %s exited (%s)", self.spec.name, worker.pid, description)
            message = f"RequestId: {request_id} Error: Runtime exited with error: {description}"
            return error_reply("Runtime.ExitError", message)
        self._release(worker)
        if "error" in answer:
            return Reply(json.dumps(answer["error"]).encode(), function_error="Unhandled")
        return Reply(payload=str(answer["payload"]).encode())

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
            self._busy.clear()
        for worker in workers:
            worker.kill()

    def _take(self) -> tuple[Worker, dict[str, Any] | None] | None:
        """A worker for one invocation (and its init error, if it failed to start); None once
        the pool has stopped: no worker is started after that."""
        with self._lock:
            if self._stopped:
                return None
            if self._idle:
                worker = self._idle.pop()
                self._busy.add(worker)
                return worker, None
            if self._free_tmpdirs:
                tmpdir = self._free_tmpdirs.pop()
            else:
                # Unique under the function's root: a pool replaced when the function's
                # configuration changed starts new environments beside the old ones' /tmp.
                self._tmp_root.mkdir(parents=True, exist_ok=True)
                tmpdir = Path(tempfile.mkdtemp(prefix="env-", dir=self._tmp_root))
        env = {**function_environment(self.spec), **self._credentials}
        worker = Worker(self.spec, env, tmpdir)
        started = time.monotonic()
        error = worker.init()
        if error is not None:
            self._discard(worker)
        else:
            with self._lock:
                stopped = self._stopped
                if not stopped:
                    self._busy.add(worker)
            if stopped:  # the pool stopped while this worker started: it goes too
                worker.kill()
                return None
            log.info(
                "%s: worker %s started in %.1fs",
                self.spec.name,
                worker.pid,
                time.monotonic() - started,
            )
        return worker, error

    def _release(self, worker: Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            self._idle.append(worker)

    def _discard(self, worker: Worker) -> None:
        worker.kill()
        with self._lock:
            self._busy.discard(worker)
            self._free_tmpdirs.append(worker.tmpdir)


def function_environment(spec: FunctionSpec) -> dict[str, str]:
    """The worker's environment: the local stack's (the embedded AWS's endpoint and keys, PATH),
    with only the settings the template gives this function, and Lambda's reserved variables."""
    base = dict(os.environ)
    if spec.environment is not None:
        # Another function's settings are not this one's, as deployed.
        base = {key: value for key, value in base.items() if key not in LOCAL_SETTINGS}
        for name, literal in spec.environment.items():
            value = literal if literal is not None else os.environ.get(name)
            if value is not None:
                base[name] = value
    base.update(spec.overrides or {})
    path = os.pathsep.join(filter(None, [str(LAYER), os.environ.get("PYTHONPATH")]))
    return {
        **base,
        "PYTHONPATH": path,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
    }


def remove_tmp_root(tmp_root: Path) -> None:
    shutil.rmtree(tmp_root, ignore_errors=True)
