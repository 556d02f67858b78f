"""`make demo` is part of the suite: the whole lifecycle, every step held."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_demonstration_holds_every_step() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devstack.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "every step held" in output
    # Each function ran as its template role and made no call the role does not grant
    assert "ungranted call" not in output, output[-6000:]
    for step in range(1, 12):
        assert f"{step}. " in output
