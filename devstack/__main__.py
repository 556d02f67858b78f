"""`make run`: start the local stack and keep it running until interrupted."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from devstack import logs
from devstack.config import LocalConfig
from devstack.stack import start_stack


def main() -> int:
    logs.configure()
    config = LocalConfig.from_env()
    if config.state_dir:
        print(
            "DEVSTACK_STATE: persistence is not supported; every start begins with an empty "
            "embedded AWS (unset DEVSTACK_STATE)",
            file=sys.stderr,
        )
        return 2
    try:
        stack = start_stack(
            config.api_port, config.aws_port, region=config.region, database=config.database
        )
    except OSError as exc:  # a port in use, most likely another `make run`
        ports = f"API_PORT {config.api_port}, embedded AWS port {config.aws_port}"
        print(f"cannot start the local stack ({ports}): {exc}", file=sys.stderr)
        return 1
    # Installed once started: until then SIGINT/SIGTERM simply end the process.
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for line in stack.resources.summary():
        print(f"  {line}")
    print(f"API:          {stack.api_url}")
    print(f"Embedded AWS: {stack.aws_endpoint} (region {config.region}, any access key)")
    print("Ctrl-C stops.", flush=True)
    stopping.wait()
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
