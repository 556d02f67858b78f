"""The three lists of runtime dependencies agree: the Lambda layer's pins (shared/requirements.txt)
are those of the development environment (requirements-dev.txt), the ranges pyproject.toml
declares for `pip install .` hold those pins, and whatever the shipped code imports is declared."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "platform_backup"
CLI = ROOT / "platform_backup_cli"
FIRST_PARTY = {"platform_backup", "platform_backup_cli"}


def pins(path: Path) -> dict[NormalizedName, Requirement]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = requirement
    return found


def pinned_version(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned"
    return spec.version


def declared() -> dict[NormalizedName, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = (Requirement(line) for line in project["dependencies"])
    return {canonicalize_name(r.name): r for r in requirements}


def imported_distributions(package: Path) -> dict[NormalizedName, str]:
    """The distributions the package's modules import, each with one module that does."""
    owners = packages_distributions()
    found: dict[NormalizedName, str] = {}
    for module in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in FIRST_PARTY:
                    continue
                assert top in owners, f"{module.relative_to(ROOT)} imports {top}: not installed"
                for distribution in owners[top]:
                    found.setdefault(canonicalize_name(distribution), str(module.relative_to(ROOT)))
    return found


DEV = pins(ROOT / "requirements-dev.txt")
LAYER = pins(ROOT / "shared" / "requirements.txt")


@pytest.mark.parametrize("name", sorted(LAYER))
def test_the_layer_pins_what_development_pins(name: NormalizedName) -> None:
    assert name in DEV, f"{name} is in shared/requirements.txt but not in requirements-dev.txt"
    assert pinned_version(LAYER[name]) == pinned_version(DEV[name]), name


@pytest.mark.parametrize("name", sorted(declared()))
def test_each_declared_range_holds_the_development_pin(name: NormalizedName) -> None:
    requirement = declared()[name]
    assert name in DEV, f"{requirement} is declared but requirements-dev.txt does not pin it"
    pinned = pinned_version(DEV[name])
    assert requirement.specifier.contains(pinned, prereleases=True), (
        f"pyproject.toml declares {requirement}, requirements-dev.txt pins {pinned}"
    )


@pytest.mark.parametrize("package", [PACKAGE, CLI], ids=lambda p: p.name)
def test_what_the_code_imports_is_declared(package: Path) -> None:
    missing = {
        name: module
        for name, module in imported_distributions(package).items()
        if name not in declared()
    }
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_the_layer_pins_what_the_package_imports() -> None:
    missing = {
        name: module
        for name, module in imported_distributions(PACKAGE).items()
        if name not in LAYER
    }
    assert not missing, f"imported but not pinned in shared/requirements.txt: {missing}"
