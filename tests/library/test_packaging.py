"""Packaging metadata agrees with itself and with the repository.

Three files name the runtime dependencies (pyproject.toml for the wheel,
requirements.txt pinning the program's exact versions, and the provider
plugin's requirements.txt); the version lives in hardened_do/__init__.py and
CHANGELOG.md; pyproject.toml lists packages and data files by hand. Each of
these pairs can drift without any other test noticing.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import hardened_do
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _requirements(path) -> dict[str, Requirement]:
    reqs = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            reqs[canonicalize_name(req.name)] = req
    return reqs


def _library_requirements() -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, PYPROJECT["project"]["dependencies"])}


def test_every_dependency_has_a_lower_and_an_upper_bound():
    for name, req in _library_requirements().items():
        operators = {spec.operator for spec in req.specifier}
        assert ">=" in operators and "<" in operators, f"{name}: {req.specifier} needs >= and <"


def test_plugin_requirements_are_the_library_requirements():
    plugin = _requirements(ROOT / "hardened_do" / "provider" / "requirements.txt")
    assert {n: str(r.specifier) for n, r in plugin.items()} == {
        n: str(r.specifier) for n, r in _library_requirements().items()
    }


def test_the_programs_pins_are_inside_the_library_ranges():
    pins = _requirements(ROOT / "requirements.txt")
    for name, req in _library_requirements().items():
        assert name in pins, f"requirements.txt does not pin {name}"
        exact = [s.version for s in pins[name].specifier if s.operator == "=="]
        # An exact pin must be allowed; a range must start inside ours.
        floor = exact or [s.version for s in pins[name].specifier if s.operator == ">="]
        assert floor, f"requirements.txt: {pins[name]} has no lower bound"
        assert req.specifier.contains(floor[0]), f"requirements.txt {pins[name]} is outside {req.specifier}"


def test_version_matches_the_latest_changelog_release():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert releases and releases[0] == hardened_do.__version__
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hardened_do.__version__"}


def _package_dir(package: str):
    """Where setuptools takes `package` from: its package-dir entry, or its
    parent's directory plus its own name."""
    mapping = SETUPTOOLS["package-dir"]
    if package in mapping:
        return ROOT / mapping[package]
    parent, _, leaf = package.rpartition(".")
    return _package_dir(parent) / leaf


def _package_dirs() -> dict:
    return {package: _package_dir(package) for package in SETUPTOOLS["packages"]}


def test_every_package_directory_is_listed():
    dirs = _package_dirs()
    assert all(d.is_dir() for d in dirs.values()), dirs
    listed = {d.resolve() for d in dirs.values()}
    for package, root in dirs.items():
        for init in root.rglob("__init__.py"):
            if "venv" in init.parts or "__pycache__" in init.parts:
                continue
            assert init.parent.resolve() in listed, f"{init.parent.relative_to(ROOT)} is a package pyproject.toml does not list"


def test_every_data_file_is_package_data():
    data = SETUPTOOLS["package-data"]
    dirs = _package_dirs()
    for package, root in dirs.items():
        for path in root.iterdir():
            if path.is_dir() or path.suffix in (".py", ".pyc"):
                continue
            patterns = data.get(package, [])
            assert any(fnmatch.fnmatch(path.name, p) for p in patterns), (
                f"{path.relative_to(ROOT)} would be left out of the wheel; add it to package-data of {package}"
            )
