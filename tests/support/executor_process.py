"""The executor's real handler in a process of its own, as a Lambda worker runs it, so a test can
kill it (SIGKILL to its process group: the handler and the dump tool it started) mid-run.

Run as ``python -m tests.support.executor_process '<event JSON>'`` with the local stack's settings
and ``AWS_ENDPOINT_URL`` in the environment."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "executor" / "app.py"


@dataclass
class Context:
    """What Lambda's runtime hands the handler (what powertools and the handler read)."""

    function_name: str = "pdb-executor"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:pdb-executor"
    memory_limit_in_mb: int = 4096
    timeout_seconds: int = 900
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self.started)
        return max(0, int(left * 1000))


def main() -> None:
    spec = importlib.util.spec_from_file_location("executor_app", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print(json.dumps(module.lambda_handler(json.loads(sys.argv[1]), Context())), flush=True)


if __name__ == "__main__":
    main()
