"""The real MariaDB at 127.0.0.1:3306 (root, no password) for tests: SQL as root, and the
shared fixtures (the ZStack platform schema, Sakila) loaded into throwaway databases."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
ROOT = ["mariadb", "-h", "127.0.0.1", "-P", "3306", "-u", "root", "--default-character-set=utf8mb4"]
RUN_ID = uuid.uuid4().hex[:8]


def sql(statement: str, database: str | None = None) -> str:
    """Runs SQL as root; returns tab-separated rows."""
    args = [*ROOT, "--batch", "--skip-column-names", "--raw"]
    done = subprocess.run(
        [*args, *([database] if database else [])],
        input=statement.encode(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def load(database: str, *files: Path, rename: str | None = None) -> None:
    """Loads fixture files into ``database`` (created here); ``rename`` is the name the fixture
    creates for itself (Sakila's ``sakila``), rewritten to ``database``."""
    if rename is None:
        sql(f"CREATE DATABASE `{database}`")
    for path in files:
        text = path.read_text(encoding="utf-8")
        if rename:
            text = text.replace(f"SCHEMA {rename};", f"SCHEMA `{database}`;")
            text = text.replace(f"USE {rename};", f"USE `{database}`;")
            text = text.replace(f"{rename}.", f"`{database}`.")
        subprocess.run([*ROOT, *([] if rename else [database])], input=text.encode(), check=True)
