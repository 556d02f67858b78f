"""The executor's real handler in a process of its own, as a Lambda worker runs it, so a test can
kill it (SIGKILL to its process group: the handler and the dump tool it started) mid-run.

Run as ``python -m tests.support.executor_process '<event JSON>'`` with the local stack's settings
and ``AWS_ENDPOINT_URL`` in the environment."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from devstack.invoker import LambdaContext

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "executor" / "app.py"


def main() -> None:
    spec = importlib.util.spec_from_file_location("executor_app", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = LambdaContext(
        function_name="pdb-executor",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:pdb-executor",
        memory_limit_in_mb=4096,
        timeout_seconds=900,
    )
    print(json.dumps(module.lambda_handler(json.loads(sys.argv[1]), context)), flush=True)


if __name__ == "__main__":
    main()
