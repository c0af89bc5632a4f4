"""One import name for the product code, and dependencies that point one way."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys

import pytest

import hardened_do
from tests.conftest import ROOT

PRODUCT_DIRS = ("components", "cloud_init", "hardened_do")

# module (relative to hardened_do) -> the product modules it may import.
# Data flows one way: config -> services -> cloud_init.render -> stack -> components.
ALLOWED = {
    "components.names": set(),
    "components.ssh_public_keys": set(),
    "components.do_slugs": set(),
    "components.overlay": {"components.names"},
    "components.measures_config": {"components.names", "components.overlay"},
    "components.config": {
        "components.names", "components.ssh_public_keys", "components.do_slugs", "components.measures_config",
    },
    "components.services": {"components.config"},
    "components.hostagent": set(),
    "components.memo": set(),
    "components.reboots": {"components.config", "components.memo"},
    "cloud_init.early_firewall": {"components.services"},
    "cloud_init.render": {
        "components.config", "components.services", "components.hostagent", "components.names",
        "components.reboots", "components.memo", "cloud_init.early_firewall",
    },
    "components.stack": {
        "components.config", "components.services", "components.reboots", "components.overlay", "cloud_init.render",
    },
}


def _product_imports(path, module: str) -> set[str]:
    """Product modules imported by a source file, as names below hardened_do."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
                names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
            else:
                names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            name = name.removeprefix("hardened_do.")
            if name.split(".")[0] in ("components", "cloud_init"):
                found.add(name)
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_dependencies_point_one_way(module):
    top, _, rest = module.partition(".")
    path = ROOT / top / (rest.replace(".", "/"))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    imported = _product_imports(path, module)
    assert imported <= ALLOWED[module], f"{module} reaches {sorted(imported - ALLOWED[module])}"


def test_walking_the_package_imports_every_module_once_under_one_name():
    names = [m.name for m in pkgutil.walk_packages(hardened_do.__path__, "hardened_do.")]
    for name in names:
        if not name.endswith("__main__"):
            importlib.import_module(name)
    assert "hardened_do.components.config" in names
    assert "hardened_do.components.hostagent.audit" in names
    assert "hardened_do.cloud_init.render" in names
    second_names = [m for m in sys.modules if m.split(".")[0] in ("components", "cloud_init", "hostagent")]
    assert second_names == []


def test_the_top_level_folder_refuses_a_second_import_name():
    res = subprocess.run(
        [sys.executable, "-c", "import components.config"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode != 0
    assert "import hardened_do.components" in res.stderr


def test_render_cli_runs_from_the_checkout_as_python_m_cloud_init():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['cloud_init', 'render', '--stack', 'dev', '--list']\n"
        "try:\n    runpy.run_module('cloud_init', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "assert 'cloud_init.render' not in sys.modules and 'hardened_do.cloud_init.render' in sys.modules\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "web-1\tweb\t" in res.stdout


def test_no_product_code_edits_the_module_path():
    # The one exception: the component provider's entry point, which Pulumi
    # runs as a directory (see its comment).
    allowed = {ROOT / "hardened_do" / "provider" / "__main__.py"}
    offenders = []
    for top in PRODUCT_DIRS + ("policy",):
        for path in (ROOT / top).rglob("*.py"):
            if path in allowed or "__pycache__" in path.parts:
                continue
            if "sys.path" in path.read_text() or "__path__.append" in path.read_text():
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
