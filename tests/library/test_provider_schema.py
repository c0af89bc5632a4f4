"""The component provider: the schema other languages see, and Construct.

No engine runs here. The schema comes from the SDK's Analyzer and
ComponentProvider, the code component_provider_host runs to answer the
engine's GetSchema; Construct is exercised through the same ComponentProvider
under Pulumi's mocks (tests/library/construct_program.py).
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path

import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from hardened_do.components.config import Exposure as ModelExposure
from hardened_do.components.measures_config import MeasuresFields
from hardened_do.components.config import Host, Protocol as ModelProtocol, Role, Service, StackConfig
from hardened_do.provider import (
    COMPONENTS,
    PACKAGE,
    FleetHost,
    FleetRole,
    FleetService,
    HardenedFleetArgs,
    fleet_config,
    package_schema,
)
from offline.mock_engine import run_program
from tests.conftest import ROOT
from tests.library.plugin_client import running_plugin, served_schema, served_version

TOKEN = f"{PACKAGE}:index:HardenedFleet"
CONSTRUCT = Path(__file__).with_name("construct_program.py")
DROPLET = "digitalocean:index/droplet:Droplet"


@pytest.fixture(scope="module")
def schema() -> dict:
    return package_schema()


def _fleet_inputs(admin_key: str) -> dict:
    """A fleet in schema (camelCase) names, as a YAML or TypeScript program sends it."""
    return {
        "adminSshKeys": [admin_key],
        "sshAllowedSources": ["203.0.113.7/32"],
        "region": "fra1",
        "vpcCidr": "10.20.0.0/20",
        "roles": [
            {"name": "bastion", "bastion": True},
            {"name": "web", "services": [{"name": "https", "port": 443, "exposure": "public"}]},
            {"name": "db", "publicNetworking": False,
             "services": [{"name": "pg", "port": 5432, "exposure": "internal", "allowedSources": ["web"]}]},
        ],
        "hosts": [{"name": "bastion-1", "role": "bastion"}, {"name": "web-1", "role": "web"},
                  {"name": "db-1", "role": "db", "size": "s-2vcpu-4gb"}],
    }


def test_analyzer_finds_the_component_and_its_documented_inputs():
    result = Analyzer(PACKAGE).analyze(list(COMPONENTS))
    fleet = result["component_definitions"]["HardenedFleet"]
    assert {"adminSshKeys", "sshAllowedSources", "roles", "hosts", "allowSshFromAnywhere"} <= set(fleet.inputs)
    assert {"vpcId", "firewallIds", "privateIps", "publicIps", "sshCommands"} == set(fleet.outputs)
    undocumented = [n for n, p in {**fleet.inputs, **fleet.outputs}.items() if not p.description]
    assert not undocumented, f"HardenedFleet properties without a docstring: {undocumented}"
    for name in ("FleetRole", "FleetService", "FleetHost"):
        typedef = result["type_definitions"][name]
        assert typedef.properties and all(p.description for p in typedef.properties.values()), name


def test_schema_declares_the_component_with_required_plain_inputs(schema):
    assert schema["name"] == PACKAGE and schema["version"] == "0.1.0"
    resource = schema["resources"][TOKEN]
    assert resource["isComponent"] is True
    assert sorted(resource["requiredInputs"]) == ["adminSshKeys", "hosts", "roles", "sshAllowedSources"]
    # Config is validated before anything is registered, so it must be known
    # when the program runs: every input is plain (no Output accepted).
    assert all(prop.get("plain") for prop in resource["inputProperties"].values())
    assert resource["inputProperties"]["roles"]["items"]["$ref"] == f"#/types/{PACKAGE}:index:FleetRole"


def test_insecure_opt_ins_are_optional_and_named_as_such(schema):
    inputs = schema["resources"][TOKEN]["inputProperties"]
    for opt_in in ("allowSshFromAnywhere", "dropletAgent"):
        assert inputs[opt_in]["type"] == "boolean"
        assert opt_in not in schema["resources"][TOKEN]["requiredInputs"]
        assert inputs[opt_in]["description"].startswith("INSECURE opt-in, default false")


def test_schema_enums_match_the_stack_model(schema):
    def values(name):
        return {v["value"] for v in schema["types"][f"{PACKAGE}:index:{name}"]["enum"]}

    assert values("Exposure") == set(typing.get_args(ModelExposure))
    assert values("Protocol") == set(typing.get_args(ModelProtocol))


@pytest.mark.parametrize(
    ("flat", "model", "extra"),
    [
        (HardenedFleetArgs, StackConfig, {"name_prefix"}),
        (FleetRole, Role, {"name"}),
        (FleetService, Service, set()),
        (FleetHost, Host, set()),
    ],
)
def test_flat_args_cover_only_fields_the_stack_model_has(flat, model, extra):
    """A flat field the model lacks would be refused at run time; one the
    model adds later shows up here as a deliberate omission to review."""
    unknown = set(flat.__annotations__) - set(model.model_fields) - extra
    assert not unknown, f"{flat.__name__} fields the model does not know: {unknown}"


def test_flat_args_leave_out_only_deliberately_omitted_model_fields():
    # Omitted from the flat API on purpose: secure defaults nobody needs to
    # change from another language yet, all settable in Python.
    # allow_unlisted_slugs is an escape hatch for slugs newer than this
    # release; a release that knows them is the better fix there.
    # audit_trail is a host opt-in of the program, not in the flat API yet.
    omitted = {"package_upgrade", "unattended_upgrades", "wireguard_port", "overlay_cidr", "allow_unlisted_slugs",
               "audit_trail"}
    # The deploy-time measures (mesh, CA, audit) run from the program, not
    # from HardenedFleet; their keys are not part of the flat API yet.
    omitted |= set(MeasuresFields.model_fields)
    missing = set(StackConfig.model_fields) - set(HardenedFleetArgs.__annotations__) - {"name_prefix"}
    assert missing == omitted


def test_duplicate_role_names_are_refused_not_merged():
    from hardened_do import ConfigError

    args = {"admin_ssh_keys": [], "ssh_allowed_sources": [], "hosts": [],
            "roles": [{"name": "web"}, {"name": "web", "bastion": True}]}
    with pytest.raises(ConfigError, match=r"roles\[1\]\.name: role 'web' is declared twice"):
        fleet_config(args)


def test_construct_through_the_provider_builds_the_fleet(keys):
    public, _ = keys.make()
    plan = run_program(
        {f"{PACKAGE}:construct": {"type": TOKEN, "name": "fleet", "inputs": _fleet_inputs(public)}},
        program=CONSTRUCT,
    )
    droplets = {d.inputs["name"]: d for d in plan.of_type(DROPLET)}
    assert set(droplets) == {"bastion-1", "web-1", "db-1"}
    assert droplets["db-1"].inputs["publicNetworking"] is False
    assert droplets["db-1"].inputs["size"] == "s-2vcpu-4gb"
    assert len(plan.of_type("digitalocean:index/vpcNatGateway:VpcNatGateway")) == 1
    (fleet,) = [r for r in plan.resources if r.type == TOKEN]
    assert all(r.urn == fleet.urn or r.parent for r in plan.resources)
    # Ports arrive as floats on the wire; the firewall still gets "443".
    (web_fw,) = [f for f in plan.of_type("digitalocean:index/firewall:Firewall") if f.name == "fleet-network-fw-web"]
    assert "443" in {r.get("portRange") for r in web_fw.inputs["inboundRules"]}
    assert plan.exports["sshCommands"]["db-1"].startswith("ssh -J ops@")
    assert set(plan.exports["publicIps"]) == {"bastion-1", "web-1"}


def test_construct_with_a_bad_config_names_the_key_and_registers_nothing(keys):
    public, _ = keys.make()
    inputs = _fleet_inputs(public)
    inputs["sshAllowedSources"] = ["0.0.0.0/0"]
    with pytest.raises(Exception) as caught:
        run_program({f"{PACKAGE}:construct": {"type": TOKEN, "name": "fleet", "inputs": inputs}}, program=CONSTRUCT)
    assert "allow_ssh_from_anywhere" in str(caught.value)
    assert not caught.value.planned, "a rejected fleet must register nothing"


def test_plugin_directory_serves_the_schema_over_grpc(schema):
    """Run as the language host runs it (`python <dir> <engine>`), the plugin
    answers the engine's GetPluginInfo and GetSchema with this schema."""
    plugin = ROOT / "hardened_do" / "provider"
    assert (plugin / "PulumiPlugin.yaml").read_text().count("runtime: python") == 1
    with running_plugin(sys.executable, plugin) as stub:
        assert served_version(stub) == "0.1.0"
        assert served_schema(stub) == schema
