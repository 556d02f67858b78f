"""What a killed run leaves in /tmp is gone at the next invocation: a process working through the
real session code (the option file with the password, a spool a real mariadb-dump writes, a
fifo) in the executor's execution environment on the local stack (its worker's /tmp) is
SIGKILLed, then the executor is invoked there again; only its own prefix's abandoned entries go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_executor import system  # noqa: F401  (the fixture)
from tests.support.schedule_times import on_time
from tests.support.system import EXECUTOR, System

pytestmark = pytest.mark.integration

# A job of the executor stopped in the middle of its dump, as a killed run is: the session's
# directory holds the password file, the spool the dump tool is writing and a fifo.
WORKER = r"""
import os, subprocess, sys
from platform_backup.adapters import scratch
from platform_backup.adapters.mariadb import DbConnection, session
scratch.begin(sys.argv[1])
conn = DbConnection(host="127.0.0.1", port=3306, username="root", password="s3cret-pw")
with session(conn) as db:
    os.mkfifo(db.workdir / "pipe")
    with open(db.workdir / "spool", "wb") as spool:
        spool.write(os.urandom(1 << 20))
        spool.flush()
        dump = subprocess.Popen(
            db.argv("mariadb-dump", "--user=root", "--password=", *sys.argv[2:]),
            stdout=spool, stderr=subprocess.DEVNULL,
        )
        print(db.workdir, flush=True)
        sys.stdin.read()  # until the test lets go (or kills us)
    dump.wait()
"""


@pytest.fixture
def tmp_dir(system: System) -> Path:  # noqa: F811
    """The /tmp of the executor's execution environment, warm after one run."""
    assert system.fire(on_time(2))["status"] == "succeeded", system.executions()
    root = system.stack.invoker.tmpdir_root(EXECUTOR)
    assert root is not None
    [environment] = list(root.iterdir())
    return environment


def _worker(base: Path, function: str, databases: list[str]) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "TMPDIR": str(base)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, function, "--databases", *databases],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    workdir = Path(proc.stdout.readline().strip())
    assert workdir.is_dir(), "the worker did not start"
    return proc, workdir


def test_the_next_invocation_removes_what_a_killed_run_left_and_nothing_else(
    system: System,  # noqa: F811
    tmp_dir: Path,
) -> None:
    # Given an executor job killed mid-dump: its password file, spool and fifo stay in /tmp
    killed, left = _worker(tmp_dir, "executor", system.databases)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert {p.name for p in left.iterdir()} >= {"client.cnf", "spool", "pipe"}
    assert (left / "spool").stat().st_size >= 1 << 20
    # and a loose file under the executor's prefix, a live executor job working in its own
    # directory, another function's leftover and somebody else's files
    stray = tmp_dir / "pdb-executor-stray"
    stray.write_bytes(b"x")
    live, working = _worker(tmp_dir, "executor", system.databases)
    other = tmp_dir / "pdb-restore-abc123"
    other.mkdir()
    (other / "client.cnf").write_text("[client]\n")
    unrelated = tmp_dir / "someone-elses.txt"
    unrelated.write_text("keep me")
    try:
        # When the executor is invoked again (in the same, warm environment)
        result = system.fire(on_time(1))
        assert result["status"] == "succeeded", system.executions()
        # Then what the killed job left is gone, password file and spool included
        assert not left.exists()
        assert not stray.exists()
        # and the live job's directory, the restore's and the unrelated file are untouched
        assert (working / "client.cnf").is_file()
        assert (other / "client.cnf").read_text() == "[client]\n"
        assert unrelated.read_text() == "keep me"
        # and the run itself left nothing behind
        assert sorted(p.name for p in tmp_dir.iterdir() if p.name.startswith("pdb-")) == sorted(
            [working.name, other.name]
        )
    finally:
        assert live.stdin is not None
        live.stdin.close()
        live.wait()
    # The live job, done, removed its own directory.
    assert not working.exists()
