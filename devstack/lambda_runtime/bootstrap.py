"""A local Lambda execution environment: one worker process that loads one function's handler
once (init) and then runs one invocation at a time, as the Lambda runtime does.

Started by devstack/workers.py as a script, so it imports nothing of the local stack (no moto,
no boto3 beyond what the handler itself imports). The protocol is one JSON line each way per
message: on stdin the invocations, on the process's original stdout the answers; the handler's
own prints and logs go to stderr, which is the local stack's log.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, BinaryIO


@dataclass
class LambdaContext:
    """What the Lambda runtime hands a handler as its second argument.

    ``deadline_ms`` is the invocation's deadline in epoch milliseconds (the runtime API's
    Lambda-Runtime-Deadline-Ms); without it the deadline is ``timeout_seconds`` from now.
    """

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    deadline_ms: float = 0.0

    def __post_init__(self) -> None:
        if not self.deadline_ms:
            self.deadline_ms = time.time() * 1000 + self.timeout_seconds * 1000
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - time.time() * 1000))


def error_payload(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}


def load_handler(source: str, handler: str, module_name: str) -> Any:
    import_spec = importlib.util.spec_from_file_location(module_name, source)
    if import_spec is None or import_spec.loader is None:
        raise ImportError(f"cannot import {source}")
    module = importlib.util.module_from_spec(import_spec)
    sys.modules[module_name] = module
    import_spec.loader.exec_module(module)
    function = getattr(module, handler, None)
    if not callable(function):
        raise AttributeError(f"{source} has no function {handler!r}")
    return function


def invoke(function: Any, request: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext(
        function_name=request["functionName"],
        invoked_function_arn=request["functionArn"],
        memory_limit_in_mb=request["memoryMb"],
        timeout_seconds=request["timeoutSeconds"],
        aws_request_id=request["requestId"],
        deadline_ms=request["deadlineMs"],
    )
    try:
        result = function(request["event"], context)
    except Exception as exc:
        traceback.print_exc()
        stack = traceback.format_tb(exc.__traceback__)
        return {"error": error_payload(type(exc).__name__, str(exc), stack)}
    try:
        return {"payload": json.dumps(result)}
    except (TypeError, ValueError) as exc:
        return {"error": error_payload("Runtime.MarshalError", f"result is not JSON: {exc}")}


def _send(channel: BinaryIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message).encode() + b"\n")
    channel.flush()


def main(argv: list[str]) -> int:
    source, handler, module_name, function_name = argv
    # The answers keep the original stdout; whatever the handler prints goes to the log.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # The invocations keep the original stdin; a tool the handler starts reads nothing of them.
    requests = os.fdopen(os.dup(0), "rb")
    with open(os.devnull, "rb") as nothing:
        os.dup2(nothing.fileno(), 0)
    # This script's directory is no package of the function's.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    try:
        function = load_handler(source, handler, module_name)
    except Exception as exc:
        traceback.print_exc()
        message = f"{function_name}: {exc}"
        _send(channel, {"init": error_payload("Runtime.ImportModuleError", message)})
        return 1
    _send(channel, {"init": "ok", "pid": os.getpid()})
    for line in requests:
        _send(channel, invoke(function, json.loads(line)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
