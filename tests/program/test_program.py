"""The Pulumi program under mocks: the resource graph it plans."""

from __future__ import annotations

import ipaddress

import copy

import pytest

from hardened_do.cloud_init.render import render_user_data
from hardened_do.components.stack import load_stack_file
from offline.mock_engine import Plan, config_from_stack_file, run_program
from tests.conftest import ROOT

DROPLET = "digitalocean:index/droplet:Droplet"
FIREWALL = "digitalocean:index/firewall:Firewall"
TAG = "digitalocean:index/tag:Tag"
VPC = "digitalocean:index/vpc:Vpc"
NAT = "digitalocean:index/vpcNatGateway:VpcNatGateway"
SSHKEY = "digitalocean:index/sshKey:SshKey"

DEV_CONFIG = config_from_stack_file(ROOT / "Pulumi.dev.yaml")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return run_program(DEV_CONFIG)


def test_planned_resources(plan):
    counts = {t: len(plan.of_type(t)) for t in (VPC, TAG, FIREWALL, DROPLET, NAT, SSHKEY)}
    assert counts == {VPC: 1, TAG: 3, FIREWALL: 3, DROPLET: 4, NAT: 1, SSHKEY: 1}
    components = {r.type for r in plan.resources if not r.custom}
    assert components == {
        "hardened-do:index:Network", "hardened-do:index:HardenedHost", "hardened-do:index:AdminSshKeys",
        "hardened-do:index:WireGuardMesh", "hardened-do:index:InternalPki", "hardened-do:index:ServiceAudit",
        "hardened-do:index:BastionExemption",
    }


def test_every_droplet_is_in_the_vpc(plan):
    (vpc,) = plan.of_type(VPC)
    assert vpc.inputs["ipRange"] == "10.10.0.0/20" and vpc.inputs["region"] == "fra1"
    for droplet in plan.of_type(DROPLET):
        assert droplet.inputs["vpcUuid"] == vpc.outputs.get("id", f"{vpc.name}-id"), droplet.urn
        assert droplet.inputs["region"] == "fra1", droplet.urn


def test_every_droplet_carries_a_tag_a_firewall_covers(plan):
    covered = {t for fw in plan.of_type(FIREWALL) for t in fw.inputs.get("tags", [])}
    for droplet in plan.of_type(DROPLET):
        assert set(droplet.inputs["tags"]) & covered, f"{droplet.urn} is not covered by any firewall"


def test_no_inbound_rule_opens_ssh_to_the_world(plan):
    for fw in plan.of_type(FIREWALL):
        for rule in fw.inputs["inboundRules"]:
            if rule.get("portRange") in ("22", "all", "1-65535") and rule["protocol"] == "tcp":
                world = {"0.0.0.0/0", "::/0"} & set(rule.get("sourceAddresses", []))
                assert not world, f"{fw.urn}: SSH open to {world}"


def test_internal_service_only_from_declared_source_role(plan):
    (db_fw,) = [f for f in plan.of_type(FIREWALL) if f.name == "network-fw-db"]
    (pg,) = [r for r in db_fw.inputs["inboundRules"] if r.get("portRange") == "5432"]
    assert pg["sourceTags"] == ["hardened-do-dev-web"]
    assert not pg.get("sourceAddresses")


def test_firewalls_and_tags_never_depend_on_droplets(plan):
    droplets = {d.urn for d in plan.of_type(DROPLET)}
    for res in plan.of_type(FIREWALL) + plan.of_type(TAG):
        assert not set(res.dependencies) & droplets, res.urn
        assert "dropletIds" not in res.inputs, res.urn
    # Registration order between unrelated resources varies run to run; what
    # is fixed is that each droplet comes after its own tag and firewall.
    for droplet in plan.of_type(DROPLET):
        (tag,) = [t for t in plan.of_type(TAG) if t.inputs["name"] in droplet.inputs["tags"]]
        (fw,) = [f for f in plan.of_type(FIREWALL) if tag.inputs["name"] in f.inputs["tags"]]
        assert tag.order < droplet.order and fw.order < droplet.order, droplet.urn


def test_each_droplet_waits_for_its_firewall(plan):
    for droplet in plan.of_type(DROPLET):
        (tag,) = droplet.inputs["tags"]
        (fw,) = [f for f in plan.of_type(FIREWALL) if tag in f.inputs["tags"]]
        assert fw.urn in droplet.dependencies, droplet.urn


def test_private_only_host_has_no_public_network_and_waits_for_nat(plan):
    (nat,) = plan.of_type(NAT)
    assert nat.inputs["vpcs"][0]["defaultGateway"] is True
    by_name = {d.inputs["name"]: d for d in plan.of_type(DROPLET)}
    assert by_name["db-1"].inputs["publicNetworking"] is False
    assert nat.urn in by_name["db-1"].dependencies
    assert by_name["web-1"].inputs["publicNetworking"] is True


def test_droplet_settings(plan):
    stack = load_stack_file(ROOT / "Pulumi.dev.yaml")
    for droplet in plan.of_type(DROPLET):
        name = droplet.inputs["name"]
        assert droplet.inputs["monitoring"] is True
        assert droplet.inputs["dropletAgent"] is False
        assert droplet.inputs["image"] == "ubuntu-24-04-x64"
        assert droplet.inputs["sshKeys"], name
        assert droplet.inputs["userData"] == render_user_data(stack, name)
    by_name = {d.inputs["name"]: d for d in plan.of_type(DROPLET)}
    assert by_name["db-1"].inputs["size"] == "s-2vcpu-4gb"  # role size
    assert by_name["web-1"].inputs["size"] == "s-1vcpu-1gb"  # default


def test_outputs_as_documented(plan):
    assert set(plan.exports) == {"vpc_id", "firewall_ids", "hosts", "ca_cert_pem", "wireguard_admin_configs", "audit"}
    assert set(plan.exports["firewall_ids"]) == {"bastion", "web", "db"}
    hosts = plan.exports["hosts"]
    assert set(hosts) == {"bastion-1", "web-1", "web-2", "db-1"}
    for name, info in hosts.items():
        assert set(info) == {"role", "private_ip", "public_ip", "ssh", "overlay_ip", "cert_expiry"}
        assert ipaddress.ip_address(info["overlay_ip"]) in ipaddress.ip_network("10.200.0.0/16"), name  # known at preview
        assert info["cert_expiry"] == "<computed>", name  # known once signed
    bastion_ip = hosts["bastion-1"]["public_ip"]
    assert hosts["bastion-1"]["ssh"] == f"ssh ops@{bastion_ip}"
    assert hosts["db-1"]["public_ip"] is None
    assert hosts["db-1"]["ssh"] == f"ssh -J ops@{bastion_ip} ops@{hosts['db-1']['private_ip']}"


def test_no_private_key_material_anywhere_in_the_plan(plan):
    text = plan.to_json()
    assert "PRIVATE KEY" not in text
    # The admins' WireGuard client configs are the one secret export.
    assert plan.secret_exports == ["wireguard_admin_configs"]


def test_adding_a_host_changes_no_existing_droplet(plan):
    config = copy.deepcopy(DEV_CONFIG)
    config["hardened-do:hosts"] = config["hardened-do:hosts"] + [{"name": "web-3", "role": "web"}]
    bigger = run_program(config)
    before = {d.inputs["name"]: d.inputs for d in plan.of_type(DROPLET)}
    after = {d.inputs["name"]: d.inputs for d in bigger.of_type(DROPLET)}
    assert set(after) - set(before) == {"web-3"}
    for name, inputs in before.items():
        for key in ("userData", "image", "size", "tags", "vpcUuid", "publicNetworking"):
            assert after[name][key] == inputs[key], (name, key)
    fw_before = {f.name: f.inputs for f in plan.of_type(FIREWALL)}
    fw_after = {f.name: f.inputs for f in bigger.of_type(FIREWALL)}
    assert fw_before == fw_after  # firewalls attach by tag: no per-droplet edits


def test_bad_config_registers_nothing():
    config = copy.deepcopy(DEV_CONFIG)
    config["hardened-do:ssh_allowed_sources"] = ["0.0.0.0/0"]
    with pytest.raises(Exception) as info:
        run_program(config)
    assert "allow_ssh_from_anywhere" in str(info.value)
    assert info.value.planned == []
    # A fresh run of the good config still works (no state leaked between runs).
    assert len(run_program(DEV_CONFIG).of_type(DROPLET)) == 4


def test_debian_image_is_supported():
    config = copy.deepcopy(DEV_CONFIG)
    config["hardened-do:image"] = "debian-12-x64"
    plan = run_program(config)
    assert {d.inputs["image"] for d in plan.of_type(DROPLET)} == {"debian-12-x64"}
