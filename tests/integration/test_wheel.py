"""`pip install` of the built wheel, as an operator gets the CLI: into a fresh virtualenv, with the
dependencies pyproject.toml declares (resolved to the development pins, so pip's cache serves them)
and nothing from this repository on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("storages", "quota", "plan", "run", "executions", "backups", "restore")
# What a checkout holds that is no source: left out of the copy the wheel is built from, so stale
# build output (build/lib of an older layout) cannot leak into it.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".aws-sam",
    ".devstack",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
)


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    return done


def must(*args: str | Path) -> str:
    done = run(*args)
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel built from a copy of the source, and a fresh virtualenv it is installed into."""
    tmp = tmp_path_factory.mktemp("wheel")
    source, dist, venv = tmp / "source", tmp / "dist", tmp / "venv"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    pip = (sys.executable, "-m", "pip")
    must(*pip, "wheel", "--no-deps", "--wheel-dir", dist, source)
    (wheel,) = dist.glob("*.whl")
    # The virtualenv gets no pip of its own: this environment's pip installs into it.
    must(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    must(*pip, "--python", python, "install", "-c", ROOT / "requirements-dev.txt", wheel)
    return wheel, venv


def cli(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PLATFORM_BACKUP_API")}
    return run(venv / "bin" / "platform-backup", *args, env=env)


def test_the_wheel_holds_only_the_two_packages(installed: tuple[Path, Path]) -> None:
    wheel, venv = installed
    # When the wheel's and the virtualenv's top-level names are read
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
    site = Path(
        must(
            venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"
        ).strip()
    )
    # Then only platform_backup and platform_backup_cli are installed, no `cli`, no `devstack`
    assert {t for t in top if not t.endswith(".dist-info")} == {
        "platform_backup",
        "platform_backup_cli",
    }
    assert not {"cli", "devstack"} & {p.name for p in site.iterdir()}


def test_help_lists_the_commands(installed: tuple[Path, Path]) -> None:
    # When the installed command is asked for help
    done = cli(installed[1], "--help")
    # Then it starts (its imports are installed) and names every command group
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert command in done.stdout, command


def test_every_module_of_the_package_imports(installed: tuple[Path, Path]) -> None:
    # When every module of the functions' package is imported in the virtualenv
    code = (
        "import importlib, pkgutil, platform_backup\n"
        "for m in pkgutil.walk_packages(platform_backup.__path__, 'platform_backup.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    done = run(installed[1] / "bin" / "python", "-c", code)
    # Then none lacks a dependency
    assert done.returncode == 0, done.stderr


def test_an_unreachable_api_is_one_line_naming_it(installed: tuple[Path, Path]) -> None:
    # Given an API address nothing listens on
    url = "http://127.0.0.1:1"
    # When a command needs the API
    done = cli(installed[1], "--api", url, "storages", "list")
    # Then it fails with one line on stderr that names the address, and no traceback
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot reach the API at {url}" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
