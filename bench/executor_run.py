"""A warm function, as Lambda keeps one: functions/<name>/app.py (the executor unless the first
argument names another, e.g. ``archiver``) imported by path once (the function's init), then
one invocation of its ``lambda_handler`` per line of stdin (``{"event": ..., "profile": path or
null}``), each answered on stdout with the handler's own
time, from the call to its return (``{"seconds": ..., "result": ...}``).

The handler's logs and metrics (powertools writes them to stdout) go to stderr, so that stdout
carries the answers only. With a ``profile`` path, that invocation runs under cProfile and its
statistics are written there. With ``"trace": true``, the answer carries ``trace``: every AWS
call (botocore's, pynamodb's included) and every subprocess that invocation made, with its
start (seconds after the call), duration and thread.
"""

from __future__ import annotations

import cProfile
import functools
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.client

from devstack.invoker import ACCOUNT_ID, LambdaContext

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
TIMEOUT_SECONDS = 900


class Tracer:
    """Records the AWS calls and subprocesses of the invocations it is switched on for."""

    def __init__(self) -> None:
        self.on = False
        self.origin = 0.0
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def span(self, what: str, started: float) -> None:
        if not self.on:
            return
        ended = time.perf_counter()
        with self._lock:
            self.spans.append(
                {
                    "what": what,
                    "start": started - self.origin,
                    "seconds": ended - started,
                    "thread": threading.current_thread().name,
                }
            )

    def install(self) -> None:
        tracer = self
        # Every AWS call of botocore (pynamodb's included) goes through this private method.
        client_class: Any = botocore.client.BaseClient
        make_api_call: Callable[..., Any] = client_class._make_api_call
        run: Callable[..., Any] = subprocess.run
        popen_init: Callable[..., Any] = subprocess.Popen.__init__

        @functools.wraps(make_api_call)
        def traced_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            started = time.perf_counter()
            try:
                return make_api_call(client, operation, params)
            finally:
                service = client.meta.service_model.service_name
                table = f" {params['TableName']}" if "TableName" in params else ""
                tracer.span(f"{service} {operation}{table}", started)

        @functools.wraps(run)
        def traced_run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return run(*args, **kwargs)
            finally:
                argv = args[0] if args else kwargs.get("args", [])
                tracer.span(f"subprocess.run {_program(argv)}", started)

        @functools.wraps(popen_init)
        def traced_popen(process: Any, *args: Any, **kwargs: Any) -> None:
            started = time.perf_counter()
            popen_init(process, *args, **kwargs)
            argv = args[0] if args else kwargs.get("args", [])
            tracer.span(f"spawn {_program(argv)}", started)

        client_class._make_api_call = traced_call
        subprocess.run = traced_run
        subprocess.Popen.__init__ = traced_popen  # type: ignore[method-assign,assignment]


def _program(argv: Any) -> str:
    first = argv[0] if isinstance(argv, list | tuple) and argv else argv
    return Path(str(first)).name


def main() -> None:
    code_dir = sys.argv[1] if len(sys.argv) > 1 else "executor"
    function_name = f"pdb-{code_dir}"
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.path.insert(0, str(FUNCTIONS / code_dir))
    tracer = Tracer()
    tracer.install()
    app = importlib.import_module("app")
    region = os.environ.get("AWS_REGION", "us-east-1")
    arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
    for line in sys.stdin:
        request: dict[str, Any] = json.loads(line)
        context = LambdaContext(
            function_name=function_name,
            invoked_function_arn=arn,
            memory_limit_in_mb=int(os.environ.get("BENCH_MEMORY_MB", "1024")),
            timeout_seconds=TIMEOUT_SECONDS,
        )
        profile = request.get("profile")
        profiler = cProfile.Profile() if profile else None
        tracer.spans, tracer.on = [], bool(request.get("trace"))
        started = tracer.origin = time.perf_counter()
        if profiler is not None:
            result = profiler.runcall(app.lambda_handler, request["event"], context)
        else:
            result = app.lambda_handler(request["event"], context)
        seconds = time.perf_counter() - started
        tracer.on = False
        if profiler is not None and profile:
            profiler.dump_stats(str(profile))
        answer = {"seconds": seconds, "result": result}
        if request.get("trace"):
            answer["trace"] = tracer.spans
        answers.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
