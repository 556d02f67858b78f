"""The one invoker: every Lambda invocation that reaches the embedded AWS runs the real handler
through it.

Moto cannot run Lambda code without Docker, so the stack replaces moto's LambdaFunction.invoke,
the point every path goes through: boto3 lambda.invoke (the API gateway, the API's calls to the
scheduler, "run now", the schedule loop, Step Functions' tasks) and moto's own deliveries
(EventBridge rules, SNS, SQS event sources).

The local stack runs each function in worker processes (devstack/workers.py: the Timeout
enforced, the function's own environment, warm workers reused). Without workers the handler runs
in this process: the unit tests' in-process moto (mock_aws), which no other process can reach.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaFunction

from devstack.functions import FunctionSpec
from devstack.lambda_runtime.bootstrap import LambdaContext
from devstack.workers import WorkerPool

log = logging.getLogger("devstack.invoker")

ACCOUNT_ID = "123456789012"
# Lambda's waits before the first and the second retry of a failed asynchronous invocation.
RETRY_DELAYS_SECONDS = (60.0, 120.0)

__all__ = ["ACCOUNT_ID", "Invoker", "LambdaContext", "Outcome"]


@dataclass(frozen=True)
class Outcome:
    payload: bytes
    function_error: str | None = None


class Invoker:
    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        region: str,
        sqs: Any = None,
        workers: bool = False,
        credentials: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        """``sqs`` (a boto3 client) records failed asynchronous invocations on the function's
        on-failure queue; without it they are only logged. ``workers``: each function runs in
        its own worker processes (the local stack), else in this process. ``credentials``: the
        AWS credentials a function's workers sign with (its role's), by function name."""
        self.functions = dict(functions)
        self.region = region
        self.sqs = sqs
        self.workers = workers
        self.credentials = credentials
        self._modules: dict[str, ModuleType] = {}
        self._load_lock = threading.Lock()
        self._original: Any = None
        self._pools: dict[str, WorkerPool] = {}
        self._tmp_root: Path | None = None
        self._stopped = False  # stop_workers(): no worker starts after it
        self.retry_delays = RETRY_DELAYS_SECONDS  # a test shortens them

    def busy_worker_pids(self, name: str) -> list[int]:
        """The pids of the function's workers running an invocation now: a test kills one
        (SIGKILL) to cause the crash of a running function."""
        pool = self._pools.get(name)
        return pool.busy_pids() if pool is not None else []

    def tmpdir_root(self, name: str) -> Path | None:
        """Where the function's workers have their TMPDIRs (one per execution environment)."""
        return self._tmp_root / name if self._tmp_root is not None else None

    def retire_workers(self, name: str) -> None:
        """The function's workers stop; its next invocation starts a new execution environment
        (as after a configuration update, or when Lambda recycles environments)."""
        with self._load_lock:
            pool = self._pools.pop(name, None)
        if pool is not None:
            pool.stop()

    def stop_workers(self) -> None:
        with self._load_lock:
            self._stopped = True
            pools = list(self._pools.values())
            self._pools.clear()
            tmp_root, self._tmp_root = self._tmp_root, None
        for pool in pools:
            pool.stop()
        if tmp_root is not None:
            shutil.rmtree(tmp_root, ignore_errors=True)

    # -- moto hook -------------------------------------------------------------------------

    def install(self) -> None:
        """Route moto's Lambda invocations to this invoker (undone by uninstall)."""
        if self._original is not None:
            return
        self._original = LambdaFunction.invoke
        invoker = self

        def invoke(fn: LambdaFunction, body: Any, headers: Any, response_headers: Any) -> bytes:
            return invoker.handle_moto_invoke(fn.function_name, body, headers, response_headers)

        LambdaFunction.invoke = invoke  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            LambdaFunction.invoke = self._original  # type: ignore[method-assign]
            self._original = None

    def handle_moto_invoke(
        self, name: str, body: Any, request_headers: Any, response_headers: dict[str, str]
    ) -> bytes:
        invocation_type = _header(request_headers, "x-amz-invocation-type") or "RequestResponse"
        event = _parse_event(body)
        response_headers["x-amz-executed-version"] = "$LATEST"
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            self.invoke_async(name, event)
            return b""
        outcome = self.invoke(name, event)
        if outcome.function_error:
            response_headers["x-amz-function-error"] = outcome.function_error
        return outcome.payload

    # -- running handlers ------------------------------------------------------------------

    def invoke(self, name: str, event: Any, request_id: str | None = None) -> Outcome:
        """Run the function's handler now, in this thread, as a RequestResponse invocation."""
        started = time.monotonic()
        spec = self.functions.get(name)
        if spec is None:
            outcome = _error_outcome(
                "ResourceNotFoundException",
                f"function {name!r} is not registered with the local stack "
                f"(registered: {', '.join(sorted(self.functions))})",
            )
        else:
            outcome = self._run(spec, event, request_id or str(uuid.uuid4()))
        elapsed_ms = (time.monotonic() - started) * 1000
        result = f"error {outcome.function_error}" if outcome.function_error else "ok"
        log.info("invoke %s %.0fms %s", name, elapsed_ms, result)
        return outcome

    def invoke_async(self, name: str, event: Any) -> threading.Thread:
        """Run the handler in a background thread, as Lambda's Event invocation does."""
        log.info("invoke %s (Event) accepted", name)
        thread = threading.Thread(
            target=self._invoke_event, args=(name, event), name=f"invoke-{name}", daemon=True
        )
        thread.start()
        return thread

    def _invoke_event(self, name: str, event: Any) -> None:
        # Retried as Lambda does, as often as the function's MaximumRetryAttempts says.
        request_id = str(uuid.uuid4())
        outcome = self.invoke(name, event, request_id)
        spec = self.functions.get(name)
        attempts = 1
        retries = spec.retry_attempts if spec is not None else 0
        for delay in self.retry_delays[:retries]:
            if outcome.function_error is None:
                break
            log.info("%s: failed asynchronous invocation retried in %.0fs", name, delay)
            time.sleep(delay)
            outcome = self.invoke(name, event, request_id)
            attempts += 1
        if outcome.function_error is None or spec is None or not spec.on_failure_queue:
            return
        if self.sqs is None:
            log.warning("%s: no SQS client, failure not sent to %s", name, spec.on_failure_queue)
            return
        record = self._failure_record(spec, event, outcome, request_id, attempts)
        queue_url = self.sqs.get_queue_url(QueueName=spec.on_failure_queue)["QueueUrl"]
        self.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
        log.info("%s: failed invocation recorded on %s", name, spec.on_failure_queue)

    def _failure_record(
        self, spec: FunctionSpec, event: Any, outcome: Outcome, request_id: str, attempts: int
    ) -> dict[str, Any]:
        """Lambda's invocation record for an on-failure destination."""
        return {
            "version": "1.0",
            "timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "requestContext": {
                "requestId": request_id,
                "functionArn": f"{self._arn(spec.name)}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": outcome.function_error,
            },
            "responsePayload": json.loads(outcome.payload),
        }

    def _arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}"

    def _run(self, spec: FunctionSpec, event: Any, request_id: str) -> Outcome:
        if self.workers:
            if not spec.source.is_file():
                message = f"{spec.name}: handler file {spec.source} does not exist"
                return _error_outcome("Runtime.ImportModuleError", message)
            pool = self._pool(spec)
            if pool is None:
                message = f"{spec.name}: the local stack has stopped; the invocation was not run"
                return _error_outcome("ServiceException", message)
            reply = pool.invoke(event, request_id, self._arn(spec.name))
            return Outcome(payload=reply.payload, function_error=reply.function_error)
        try:
            handler = self._handler(spec)
        except Exception as exc:
            log.exception("cannot load %s from %s", spec.name, spec.source)
            return _error_outcome("Runtime.ImportModuleError", f"{spec.name}: {exc}")
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=self._arn(spec.name),
            aws_request_id=request_id,
            memory_limit_in_mb=spec.memory_mb,
            timeout_seconds=spec.timeout_seconds,
        )
        try:
            result = handler(event, context)
        except Exception as exc:
            log.exception("%s raised", spec.name)
            stack = traceback.format_tb(exc.__traceback__)
            return _error_outcome(type(exc).__name__, str(exc), stack)
        if context.get_remaining_time_in_millis() == 0:
            # Deployed, Lambda would have stopped the handler; locally it only gets said.
            log.warning("%s ran past its %ss timeout", spec.name, spec.timeout_seconds)
        try:
            return Outcome(payload=json.dumps(result).encode())
        except (TypeError, ValueError) as exc:
            return _error_outcome("Runtime.MarshalError", f"result is not JSON: {exc}")

    def _pool(self, spec: FunctionSpec) -> WorkerPool | None:
        """The function's pool (made on first use); None once the workers were stopped."""
        with self._load_lock:
            if self._stopped:
                return None
            pool = self._pools.get(spec.name)
            if pool is None or pool.spec != spec:
                if pool is not None:  # the test changed the function: its old workers go
                    pool.stop()
                if self._tmp_root is None:
                    self._tmp_root = Path(tempfile.mkdtemp(prefix="devstack-lambda-"))
                role = self.credentials(spec.name) if self.credentials is not None else None
                pool = self._pools[spec.name] = WorkerPool(spec, self._tmp_root, role)
            return pool

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, LambdaContext], Any]:
        with self._load_lock:
            module = self._modules.get(spec.name)
            if module is None:
                module = _load_module(spec)
                self._modules[spec.name] = module
        handler = getattr(module, spec.handler, None)
        if not callable(handler):
            raise AttributeError(f"{spec.source} has no function {spec.handler!r}")
        return handler


def _load_module(spec: FunctionSpec) -> ModuleType:
    if not spec.source.is_file():
        raise FileNotFoundError(f"handler file {spec.source} does not exist")
    # Every function's entry file is app.py: a name per function keeps them apart.
    module_name = "devstack_function_" + spec.name.replace("-", "_")
    import_spec = importlib.util.spec_from_file_location(module_name, spec.source)
    if import_spec is None or import_spec.loader is None:
        raise ImportError(f"cannot import {spec.source}")
    module = importlib.util.module_from_spec(import_spec)
    thresholds = gc.get_threshold()
    try:
        import_spec.loader.exec_module(module)
    finally:
        # A handler's init freezes what exists when it ends and holds off full collections
        # meanwhile (platform_backup/startup.py): right for a Lambda environment, which inits
        # once. This process loads every function, again for every test's invoker: frozen, the
        # garbage earlier ones left (moto's backends, botocore's sessions) would never be freed,
        # and an init that raised would leave full collections off for good.
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return module


def _header(headers: Any, name: str) -> str | None:
    # Werkzeug's headers ignore case; moto's internal deliveries pass plain dicts.
    for key, value in dict(headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _parse_event(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if not body:
        return {}
    return json.loads(body) if isinstance(body, str) else body


def _error_outcome(error_type: str, message: str, stack: list[str] | None = None) -> Outcome:
    payload = {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}
    return Outcome(payload=json.dumps(payload).encode(), function_error="Unhandled")
