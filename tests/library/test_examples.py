"""Every example under examples/ runs, under Pulumi's mocks, as written.

The Python examples run through offline.mock_engine.run_program with their
own program file. Pulumi YAML cannot run without the engine; for it the test
checks the program against the schema the provider serves and constructs its
resources through the provider, which is everything short of the engine's
own YAML evaluation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from hardened_do.provider import PACKAGE, package_schema
from offline.mock_engine import Plan, run_program
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
DROPLET = "digitalocean:index/droplet:Droplet"
FIREWALL = "digitalocean:index/firewall:Firewall"
VPC = "digitalocean:index/vpc:Vpc"
ADMIN_NET = "203.0.113.7/32"


def test_every_example_is_tested_here():
    assert {p.name for p in EXAMPLES.iterdir() if p.is_dir()} == {"minimal", "byo-servers", "yaml-consumer"}


def _project_files_agree(example: Path) -> None:
    """Pulumi.yaml declares exactly the keys the program reads, and the
    sample stack file sets them in the project's namespace."""
    project = yaml.safe_load((example / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    read = set(re.findall(r'config\.(?:get|require|require_object)\("([a-z_]+)"\)', (example / "__main__.py").read_text()))
    assert read == set(project["config"])
    sample = yaml.safe_load((example / "Pulumi.example.yaml").read_text())["config"]
    assert {k.split(":", 1)[0] for k in sample} == {project["name"]}
    assert {k.split(":", 1)[1] for k in sample} <= set(project["config"])


def _requirements_point_at_this_package(example: Path) -> None:
    lines = [ln.strip() for ln in (example / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines == ["../.."]
    assert 'name = "pulumi-hardened-do"' in (example / "../..").resolve().joinpath("pyproject.toml").read_text()


# -- examples/minimal ----------------------------------------------------------

MINIMAL = EXAMPLES / "minimal"


@pytest.fixture(scope="module")
def minimal_plan(tmp_path_factory) -> Plan:
    from tests.conftest import KeyFactory

    public, _ = KeyFactory(tmp_path_factory.mktemp("keys")).make()
    # Under the mocks the project is `hardened-do`, so that is the namespace
    # pulumi.Config() reads in the example.
    return run_program(
        {"hardened-do:admin_ssh_key": public, "hardened-do:ssh_allowed_source": ADMIN_NET},
        program=MINIMAL / "__main__.py",
    )


def test_minimal_plans_one_droplet_in_the_vpc_behind_its_firewall(minimal_plan):
    (droplet,) = minimal_plan.of_type(DROPLET)
    (vpc,) = minimal_plan.of_type(VPC)
    (firewall,) = minimal_plan.of_type(FIREWALL)
    assert vpc.inputs["ipRange"] == "10.20.0.0/20"
    assert droplet.inputs["vpcUuid"] == vpc.outputs.get("id", f"{vpc.name}-id")
    assert set(droplet.inputs["tags"]) == set(firewall.inputs["tags"])
    assert firewall.urn in droplet.dependencies


def test_minimal_opens_ssh_to_the_admin_network_only(minimal_plan):
    (firewall,) = minimal_plan.of_type(FIREWALL)
    ssh = [r for r in firewall.inputs["inboundRules"] if r.get("portRange") == "22"]
    assert [r["sourceAddresses"] for r in ssh] == [[ADMIN_NET]]
    assert minimal_plan.exports["ssh"] == f"ssh ops@{minimal_plan.exports['public_ip']}"


def test_minimal_refuses_ssh_from_anywhere_and_creates_nothing(keys):
    public, _ = keys.make()
    with pytest.raises(Exception, match="allow_ssh_from_anywhere") as caught:
        run_program(
            {"hardened-do:admin_ssh_key": public, "hardened-do:ssh_allowed_source": "0.0.0.0/0"},
            program=MINIMAL / "__main__.py",
        )
    assert not caught.value.planned


@pytest.mark.parametrize("example", [MINIMAL, EXAMPLES / "byo-servers"], ids=lambda p: p.name)
def test_project_files_agree_with_the_program(example):
    _project_files_agree(example)


@pytest.mark.parametrize("example", [MINIMAL, EXAMPLES / "byo-servers"], ids=lambda p: p.name)
def test_requirements_point_at_this_package(example):
    _requirements_point_at_this_package(example)


# -- examples/byo-servers ------------------------------------------------------

BYO = EXAMPLES / "byo-servers"
COMMAND = "command:remote:Command"


@pytest.fixture(scope="module")
def byo_sample() -> dict:
    """The sample stack file's values, in the namespace the mocks use."""
    sample = yaml.safe_load((BYO / "Pulumi.example.yaml").read_text())["config"]
    return {"hardened-do:" + k.split(":", 1)[1]: v for k, v in sample.items()}


@pytest.fixture(scope="module")
def byo_plan(byo_sample) -> Plan:
    return run_program(byo_sample, program=BYO / "__main__.py")


def test_byo_servers_runs_mesh_pki_and_audit_on_every_server(byo_plan, byo_sample):
    names = [s["name"] for s in byo_sample["hardened-do:servers"]]
    components = {r.type for r in byo_plan.resources if not r.custom}
    assert components == {f"hardened-do:index:{c}" for c in ("WireGuardMesh", "InternalPki", "ServiceAudit")}
    commands = {c.name for c in byo_plan.of_type(COMMAND)}
    for host in names:
        assert {f"mesh-key-{host}", f"mesh-peers-{host}", f"pki-csr-{host}", f"pki-install-{host}",
                f"audit-audit-{host}"} <= commands, host
    assert not byo_plan.of_type("digitalocean:index/droplet:Droplet")


def test_byo_servers_overlay_addresses_are_known_at_preview(byo_plan, byo_sample):
    import ipaddress

    overlay = ipaddress.ip_network("10.200.0.0/24")
    ips = byo_plan.exports["overlay_ips"]
    assert set(ips) == {s["name"] for s in byo_sample["hardened-do:servers"]}
    assert all(ipaddress.ip_address(ip) in overlay for ip in ips.values())
    assert len(set(ips.values())) == len(ips)


def test_byo_servers_audit_gets_each_servers_declared_services(byo_plan, byo_sample):
    for server in byo_sample["hardened-do:servers"]:
        (command,) = [c for c in byo_plan.of_type(COMMAND) if c.name == f"audit-audit-{server['name']}"]
        for svc in server["services"]:
            assert f'"name": "{svc["name"]}"' in command.inputs["create"], (server["name"], svc)


def test_byo_servers_audit_runs_after_the_mesh_is_up(byo_plan, byo_sample):
    """An audit before the mesh would miss the WireGuard listener. The audit
    component registers only once the mesh's commands are done, and its
    commands only once their parent is registered."""
    (audit,) = [r for r in byo_plan.resources if r.type == "hardened-do:index:ServiceAudit"]
    waited_for = {urn.rsplit("::", 1)[1] for urn in audit.dependencies}
    for server in byo_sample["hardened-do:servers"]:
        assert f"mesh-peers-{server['name']}" in waited_for, server["name"]
        (command,) = [c for c in byo_plan.of_type(COMMAND) if c.name == f"audit-audit-{server['name']}"]
        assert command.parent == audit.urn


# -- examples/yaml-consumer ----------------------------------------------------

YAML_CONSUMER = EXAMPLES / "yaml-consumer"


@pytest.fixture(scope="module")
def yaml_program() -> dict:
    return yaml.safe_load((YAML_CONSUMER / "Pulumi.yaml").read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    return package_schema()


def _token(short: str) -> str:
    pkg, _, rest = short.partition(":")
    return short if rest.count(":") else f"{pkg}:index:{rest}"


def _unknown_properties(value, spec: dict, schema: dict, path: str) -> list[str]:
    """Property names in `value` the schema does not declare, recursively."""
    if "$ref" in spec:
        typedef = schema["types"][spec["$ref"].removeprefix("#/types/")]
        if "enum" in typedef:
            allowed = {v["value"] for v in typedef["enum"]}
            return [] if value in allowed else [f"{path}: {value!r} is not one of {sorted(allowed)}"]
        return _unknown_object(value, typedef.get("properties", {}), schema, path)
    if spec.get("type") == "array":
        return [p for i, item in enumerate(value) for p in _unknown_properties(item, spec["items"], schema, f"{path}[{i}]")]
    return []


def _unknown_object(value: dict, properties: dict, schema: dict, path: str) -> list[str]:
    problems = [f"{path}.{k}" for k in value if k not in properties]
    for key, item in value.items():
        if key in properties:
            problems += _unknown_properties(item, properties[key], schema, f"{path}.{key}")
    return problems


def test_yaml_consumer_points_at_the_plugin_directory(yaml_program):
    plugin = (YAML_CONSUMER / yaml_program["packages"][PACKAGE]).resolve()
    assert (plugin / "PulumiPlugin.yaml").is_file() and (plugin / "__main__.py").is_file()


def test_yaml_consumer_uses_only_what_the_schema_declares(yaml_program, schema):
    for name, resource in yaml_program["resources"].items():
        token = _token(resource["type"])
        assert token in schema["resources"], f"{name}: {token} is not in the provider's schema"
        spec = schema["resources"][token]
        props = resource.get("properties", {})
        assert not set(spec.get("requiredInputs", [])) - set(props), f"{name}: required inputs missing"
        assert not _unknown_object(props, spec["inputProperties"], schema, name)
    for output, expr in yaml_program["outputs"].items():
        resource, prop = re.fullmatch(r"\$\{(\w+)\.(\w+)\}", expr).groups()
        token = _token(yaml_program["resources"][resource]["type"])
        assert prop in schema["resources"][token]["properties"], f"output {output}: {expr}"


def _substitute(value, config: dict):
    if isinstance(value, str):
        found = re.fullmatch(r"\$\{(\w+)\}", value)
        return config[found.group(1)] if found else value
    if isinstance(value, list):
        return [_substitute(v, config) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, config) for k, v in value.items()}
    return value


def test_yaml_consumer_constructs_through_the_provider(yaml_program, keys):
    public, _ = keys.make()
    config = {"adminSshKey": public, "sshAllowedSource": ADMIN_NET}
    assert set(yaml_program["config"]) == set(config)
    (name, resource), = yaml_program["resources"].items()
    plan = run_program(
        {f"{PACKAGE}:construct": {"type": _token(resource["type"]), "name": name,
                                  "inputs": _substitute(resource["properties"], config)}},
        program=Path(__file__).with_name("construct_program.py"),
    )
    droplets = {d.inputs["name"] for d in plan.of_type(DROPLET)}
    assert droplets == {h["name"] for h in resource["properties"]["hosts"]}
    assert set(plan.exports["sshCommands"]) == droplets


# -- README ----------------------------------------------------------------------


def test_readme_library_example_runs(tmp_path, keys):
    readme = (ROOT / "README.md").read_text()
    library = readme[readme.index("\n## Library\n"):]
    code = re.search(r"```python\n(.*?)```", library, re.S).group(1)
    assert len(code.strip().splitlines()) <= 20, "the README example should stay short"
    program = tmp_path / "__main__.py"
    program.write_text(code)
    public, _ = keys.make()
    plan = run_program({"hardened-do:admin_ssh_key": public}, program=program)
    (droplet,) = plan.of_type(DROPLET)
    assert droplet.inputs["name"] == "web-1" and droplet.inputs["region"] == "fra1"
    assert plan.exports["ip"]


def test_byo_servers_connects_on_each_servers_ssh_port(byo_sample):
    from tests.program.test_mesh_pki_audit import FakeProviders

    # Providers that record the connection unmasked (the SDK keeps it secret).
    plan = run_program(byo_sample, program=BYO / "__main__.py", mocks=FakeProviders(command_output=False))
    for server in byo_sample["hardened-do:servers"]:
        (command,) = [c for c in plan.of_type(COMMAND) if c.name == f"mesh-key-{server['name']}"]
        assert command.outputs["connection"]["port"] == server.get("port", 22), server["name"]
    assert any(s.get("port", 22) != 22 for s in byo_sample["hardened-do:servers"])
