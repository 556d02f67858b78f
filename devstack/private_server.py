"""A private MariaDB server: its own datadir, port, socket and tmpdir, started and stopped by
whoever needs one (tests, ``make demo``, ``make bench``). The shared server on :3306 is never
restarted or reconfigured; a server with binary logging (point-in-time recovery) is one of these.

Its own tmpdir above all: a starting server deletes every ``#sql*`` file in its tmpdir, which in a
shared /tmp are the temporary tables of the platform database's server.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Outside a root PATH the server binary is usually not found by name.
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"

# What point-in-time recovery needs of a server (the README's "Servers for point-in-time
# recovery"): binary logging, row format, a server id; routines load without SUPER.
BINLOG_OPTIONS: tuple[str, ...] = (
    "--binlog-format=ROW",
    "--server-id=7",
    "--log-bin-trust-function-creators=1",
    "--max-binlog-size=64M",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PrivateServer:
    """Root over its own socket for checks; TCP on ``port`` for what the service reaches."""

    workdir: Path
    port: int
    binlog: bool

    @property
    def socket(self) -> Path:
        return self.workdir / "mysqld.sock"

    @property
    def binlog_dir(self) -> Path:
        return self.workdir / "binlog"

    def sql(self, statement: str, database: str | None = None) -> str:
        """Runs SQL as root over the socket; its tab-separated output. Raises on failure."""
        done = subprocess.run(
            [
                "mariadb",
                "--no-defaults",
                f"--socket={self.socket}",
                "--user=root",
                "--batch",
                "--skip-column-names",
                "--raw",
                "--default-character-set=utf8mb4",
                *([database] if database else []),
            ],
            input=statement.encode(),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"SQL on the private server failed: {done.stderr.decode()}")
        return done.stdout.decode()

    def create_user(self, username: str, password: str, grants: str = "ALL PRIVILEGES") -> None:
        escaped = password.replace("\\", "\\\\").replace("'", "\\'")
        self.sql(
            f"CREATE USER '{username}'@'%' IDENTIFIED BY '{escaped}';"
            f" GRANT {grants} ON *.* TO '{username}'@'%';"
        )


def _start(server: PrivateServer, options: Sequence[str]) -> subprocess.Popen[bytes]:
    data, tmp = server.workdir / "data", server.workdir / "tmp"
    tmp.mkdir()
    own = [f"--datadir={data}", f"--tmpdir={tmp}", f"--user={getpass.getuser()}"]
    install = subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            *own,
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        capture_output=True,
        check=False,
    )
    if install.returncode != 0:
        raise RuntimeError(install.stdout.decode() + install.stderr.decode())
    binlog = (
        [f"--log-bin={server.binlog_dir / 'mysql-bin'}", *BINLOG_OPTIONS]
        if server.binlog
        else ["--skip-log-bin"]
    )
    if server.binlog:
        server.binlog_dir.mkdir()
    log = server.workdir / "error.log"
    process = subprocess.Popen(
        [
            MARIADBD,
            "--no-defaults",
            *own,
            f"--socket={server.socket}",
            f"--port={server.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={server.workdir / 'mysqld.pid'}",
            f"--log-error={log}",
            "--innodb-buffer-pool-size=128M",
            *binlog,
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ping = ["mariadb-admin", "--no-defaults", f"--socket={server.socket}", "-u", "root", "ping"]
    ready_by = time.monotonic() + 60
    while subprocess.run(ping, capture_output=True, check=False).returncode != 0:
        if process.poll() is not None or time.monotonic() > ready_by:
            reason = log.read_text() if log.exists() else "no error log"
            process.kill()
            raise RuntimeError(f"the private server did not start: {reason[-2000:]}")
        time.sleep(0.1)
    return process


@contextmanager
def private_server(
    *, binlog: bool = False, options: Sequence[str] = (), port: int | None = None
) -> Iterator[PrivateServer]:
    """Started in a temporary directory on a free port; stopped and removed whatever happens."""
    # Short: a socket path is limited to about 100 characters.
    workdir = Path(tempfile.mkdtemp(prefix="pdb-srv-"))
    server = PrivateServer(workdir, port or free_port(), binlog)
    process: subprocess.Popen[bytes] | None = None
    try:
        process = _start(server, options)
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
