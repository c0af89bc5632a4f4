"""The config reference cannot drift from the model."""

from __future__ import annotations

import yaml

from hardened_do.components.config import CONFIG_KEYS, StackConfig
from tests.conftest import ROOT

STRUCTURED = {"roles", "hosts", "unattended_upgrades"}


def test_every_config_key_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [k for k in CONFIG_KEYS if f"| `{k}` |" not in readme]
    assert not missing, f"README config reference lacks {missing}"


def test_pulumi_yaml_declares_every_key_with_the_model_default():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(CONFIG_KEYS)
    for key, decl in declared.items():
        assert decl.get("description"), key
        field = StackConfig.model_fields[key]
        if key in STRUCTURED:
            # Required keys have no default (the CLI then requires them too).
            if field.is_required():
                assert "default" not in decl, key
            else:
                assert decl["default"] == field.get_default(call_default_factory=True).model_dump(), key
            continue
        default = field.default if not field.is_required() else []
        if default is None:
            default = ""
        if isinstance(default, tuple):
            default = list(default)
        assert decl["default"] == default, key


def test_pulumi_yaml_config_types_are_ones_pulumi_accepts():
    """Pulumi's project schema knows string, integer, boolean, object and array
    (with items). tests/engine has the real CLI check the file itself."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "hardened-do"
    assert project["runtime"]["name"] == "python"
    for key, decl in project["config"].items():
        assert decl["type"] in {"string", "integer", "boolean", "object", "array"}, key
        if decl["type"] == "array":
            assert decl["items"]["type"] in {"string", "integer", "boolean", "object"}, key
        assert set(decl) <= {"type", "items", "description", "default", "secret"}, key
