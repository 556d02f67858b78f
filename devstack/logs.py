"""Logging of the local stack: one line per request and invocation, not the libraries' chatter."""

from __future__ import annotations

import logging
import sys


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    for noisy in ("werkzeug", "botocore", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
