"""Pulumi's own config semantics reach our loader as we expect.

An Automation API inline program runs in the real engine (the CLI built by
scripts/pulumi-cli, no language host, no provider plugin) on a copy of our
Pulumi.yaml and a stack file. It reads the config through the program's real
loader (`hardened_do.components.stack.load_from_pulumi`) and renders every host's
user-data: what the engine hands the program (namespaces, declared defaults,
types, secrets) must give the same model as the offline reader
(`load_stack_file`), which the renderer, the offline plan and the tests use.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from tests.engine import engine

pytestmark = pytest.mark.engine

DEV = engine.ROOT / "Pulumi.dev.yaml"


def _render_program():
    import pulumi

    from hardened_do.cloud_init.render import render_user_data
    from hardened_do.components.stack import load_from_pulumi

    stack = load_from_pulumi()
    rendered = {h.name: render_user_data(stack, h.name).encode() for h in stack.hosts}
    pulumi.export("model", stack.model_dump(mode="json"))
    pulumi.export("user_data_bytes", {name: len(data) for name, data in rendered.items()})
    pulumi.export("user_data_sha256", {name: hashlib.sha256(data).hexdigest() for name, data in rendered.items()})


def _offline(stack_file: Path) -> dict:
    from hardened_do.cloud_init.render import render_user_data
    from hardened_do.components.stack import load_stack_file

    stack = load_stack_file(stack_file)
    rendered = {h.name: render_user_data(stack, h.name).encode() for h in stack.hosts}
    return {
        "model": stack.model_dump(mode="json"),
        "user_data_bytes": {name: len(data) for name, data in rendered.items()},
        "user_data_sha256": {name: hashlib.sha256(data).hexdigest() for name, data in rendered.items()},
    }


def _up(work: Path, stack: str, env: dict, program) -> tuple[dict, str]:
    """`pulumi up` of an inline program that registers no resource: its outputs."""
    from pulumi import automation as auto

    ws = engine.workspace(work, env, program)
    st = auto.Stack.create_or_select(stack, ws)
    lines: list[str] = []
    result = st.up(on_output=lines.append, color="never")
    return {k: v.value for k, v in result.outputs.items()}, "\n".join(lines)


def _dev_variant(tmp_path: Path, edit) -> Path:
    """A copy of the project with an edited dev stack file."""
    work = engine.stage(engine.ROOT, tmp_path / "project")
    doc = yaml.safe_load(DEV.read_text())
    edit(doc["config"])
    (work / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return work


def test_the_engine_gives_our_loader_the_dev_stack_as_the_offline_reader_reads_it(fresh_state, tmp_path):
    work = engine.stage(engine.ROOT, tmp_path / "project", stack_file=DEV)
    outputs, log = _up(work, "dev", fresh_state, _render_program)
    expected = _offline(DEV)
    assert outputs["model"] == expected["model"]
    assert outputs["user_data_sha256"] == expected["user_data_sha256"]
    assert outputs["user_data_bytes"] == expected["user_data_bytes"]
    assert set(outputs["user_data_bytes"]) == {"bastion-1", "web-1", "web-2", "db-1"}
    # Printed so a CI log shows the figures the real engine saw.
    print("user-data bytes per host (real engine):", outputs["user_data_bytes"])


def test_declared_defaults_and_types_arrive_typed(fresh_state, tmp_path):
    # Pulumi passes every value as a string; an integer, a boolean and a
    # list must reach the model typed, and a declared default must arrive
    # when the stack leaves the key out.
    def edit(config):
        config["hardened-do:wireguard_port"] = 51999
        config["hardened-do:ipv6"] = True
        config["hardened-do:ssh_allowed_sources"] = ["203.0.113.0/24", "198.51.100.7/32"]
        config.pop("hardened-do:image", None)

    work = _dev_variant(tmp_path, edit)
    outputs, _ = _up(work, "dev", fresh_state, _render_program)
    model = outputs["model"]
    assert model["wireguard_port"] == 51999
    assert model["ipv6"] is True
    assert model["ssh_allowed_sources"] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert model["image"] == "ubuntu-24-04-x64"  # Pulumi.yaml's default


def test_a_key_without_namespace_is_the_projects_key(fresh_state, tmp_path):
    # Pulumi reads `region:` in a stack file as `hardened-do:region`.
    def edit(config):
        config.pop("hardened-do:region")
        config["region"] = "ams3"

    work = _dev_variant(tmp_path, edit)
    outputs, _ = _up(work, "dev", fresh_state, _render_program)
    assert outputs["model"]["region"] == "ams3"


def test_a_secret_value_is_refused_as_the_offline_reader_refuses_it(fresh_state, tmp_path):
    # Nothing we read may be secret: it would end up in user-data, which every
    # process on a droplet can read. The engine marks a `--secret` value as
    # secret; our loader must refuse it (the offline reader does) rather than
    # read it as plain text.
    work = engine.stage(engine.ROOT, tmp_path / "project", stack_file=DEV)
    from pulumi import automation as auto

    ws = engine.workspace(work, fresh_state, _render_program)
    st = auto.Stack.create_or_select("dev", ws)
    st.set_config("hardened-do:admin_user", auto.ConfigValue("secretadmin", secret=True))
    assert "secure:" in (work / "Pulumi.dev.yaml").read_text()
    lines: list[str] = []
    with pytest.raises(auto.errors.CommandError) as failed:
        st.preview(on_output=lines.append, color="never")
    output = "\n".join(lines) + str(failed.value)
    assert "hardened-do:admin_user" in output and "secret" in output, output
    assert "secretadmin" not in output
    assert "Traceback" not in output


def test_pulumi_yaml_defaults_are_the_parsers_defaults(fresh_state, tmp_path):
    # A stack that sets only the required keys: the engine fills in
    # Pulumi.yaml's defaults, the offline reader the model's. Same model.
    required = {"hardened-do:admin_ssh_keys", "hardened-do:ssh_allowed_sources", "hardened-do:roles", "hardened-do:hosts"}

    def edit(config):
        for key in list(config):
            if key not in required:
                del config[key]

    work = _dev_variant(tmp_path, edit)
    outputs, _ = _up(work, "dev", fresh_state, _render_program)
    assert outputs["model"] == _offline(work / "Pulumi.dev.yaml")["model"]


def test_a_structured_key_of_the_wrong_shape_is_refused_by_the_cli(fresh_state, tmp_path):
    def edit(config):
        config["hardened-do:roles"] = ["web", "db"]

    work = _dev_variant(tmp_path, edit)
    _, output, error = engine.preview(work, "dev", fresh_state, _render_program)
    assert error is not None
    assert "validating stack config" in output and "roles" in output, output


def test_a_missing_required_key_is_refused_by_the_cli(fresh_state, tmp_path):
    work = _dev_variant(tmp_path, lambda config: config.pop("hardened-do:hosts"))
    _, output, error = engine.preview(work, "dev", fresh_state, _render_program)
    assert error is not None
    assert "hosts" in output and "Traceback" not in output, output
