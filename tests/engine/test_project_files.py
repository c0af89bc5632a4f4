"""The real Pulumi CLI loads every project file we ship, and every stack's
config has the types its Pulumi.yaml declares.

No plugin is needed for this: the CLI reads and validates Pulumi.yaml
(schema, config declarations), the stack files and the config types itself.
The type check runs where `pulumi preview` runs it, before the program starts;
the program here is an Automation API inline program that registers nothing,
so no language host and no provider plugin is needed.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.engine import engine

pytestmark = pytest.mark.engine

PROJECTS = engine.project_dirs()
STACKS = [(d, f) for d in PROJECTS for f in engine.stack_files(d)]


def _id(path: Path) -> str:
    return str(path.relative_to(engine.ROOT)) or "."


def test_every_shipped_project_file_is_covered():
    # A new project or stack file is picked up by the tests below; this pins
    # the ones we know of so a lost file is noticed too.
    names = {_id(p) for p in engine.shipped("Pulumi*.yaml")}
    assert {"Pulumi.yaml", "Pulumi.dev.yaml", "examples/byo-servers/Pulumi.yaml",
            "examples/minimal/Pulumi.yaml", "examples/yaml-consumer/Pulumi.yaml",
            "tests/policy/insecure/Pulumi.yaml", "policy/PulumiPolicy.yaml",
            "hardened_do/provider/PulumiPlugin.yaml"} <= names


@pytest.mark.parametrize("project_dir", PROJECTS, ids=_id)
def test_the_cli_loads_the_project(project_dir, cli, tmp_path):
    work = engine.stage(project_dir, tmp_path / "project")
    done = cli(["stack", "init", "ci-check"], work)
    assert done.returncode == 0, done.stderr
    # The project as the CLI understood it: name and every declared key.
    about = cli(["config", "--stack", "ci-check", "--json"], work)
    assert about.returncode == 0, about.stderr
    declared = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()).get("config") or {}
    name = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    seen = set(yaml.safe_load(about.stdout) or {})
    for key, decl in declared.items():
        if isinstance(decl, dict) and "default" in decl:
            full = key if ":" in key else f"{name}:{key}"
            assert full in seen, f"{full} has a default in Pulumi.yaml but the CLI does not show it"


@pytest.mark.parametrize(("project_dir", "stack_file"), STACKS, ids=lambda v: _id(v))
def test_the_stack_config_has_the_declared_types(project_dir, stack_file, fresh_state, tmp_path):
    work = engine.stage(project_dir, tmp_path / "project", stack_file=stack_file)
    result, output, error = engine.preview(work, engine.stack_name(stack_file), fresh_state, lambda: None)
    assert error is None, output
    assert "validating stack config" not in output


def test_a_value_of_the_wrong_type_is_refused(fresh_state, tmp_path):
    # The check above can fail: the same run with a port that is not an integer.
    work = engine.stage(engine.ROOT, tmp_path / "project")
    dev = yaml.safe_load((engine.ROOT / "Pulumi.dev.yaml").read_text())
    dev["config"]["hardened-do:wireguard_port"] = "fifty-one thousand"
    (work / "Pulumi.dev.yaml").write_text(yaml.safe_dump(dev))
    result, output, error = engine.preview(work, "dev", fresh_state, lambda: None)
    assert error is not None
    assert "validating stack config" in output and "wireguard_port" in output, output


def test_an_array_without_items_is_refused(cli, tmp_path):
    # What examples/byo-servers/Pulumi.yaml once declared: the CLI refuses
    # the whole project, so even `pulumi stack select` fails.
    work = tmp_path / "project"
    work.mkdir()
    (work / "Pulumi.yaml").write_text(textwrap.dedent("""\
        name: untyped-array
        runtime: python
        config:
          servers:
            type: array
        """))
    done = cli(["stack", "init", "ci-check"], work)
    assert done.returncode != 0
    assert "items" in done.stderr, done.stderr


@pytest.mark.parametrize("plugin_file", engine.shipped("PulumiPlugin.yaml"), ids=_id)
def test_the_cli_loads_the_component_provider_plugin_file(plugin_file, cli, tmp_path):
    # `pulumi package get-schema <dir>` reads PulumiPlugin.yaml first, then
    # needs the plugin's language host (absent here): reaching that point
    # means the file was accepted. The control shows a bad file stops earlier.
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    shutil.copy2(plugin_file, plugin / "PulumiPlugin.yaml")
    done = cli(["package", "get-schema", str(plugin)], tmp_path)
    assert done.returncode != 0
    assert "no language plugin 'pulumi-language-python' found" in done.stderr, done.stderr

    (plugin / "PulumiPlugin.yaml").write_text("runtime: [python\n")
    done = cli(["package", "get-schema", str(plugin)], tmp_path)
    assert "invalid YAML" in done.stderr, done.stderr
