"""One declaration drives the cloud firewall, UFW and the audit."""

from __future__ import annotations

import pytest

from hardened_do.components.stack import load_stack_file, parse_stack_config
from hardened_do.components.services import (
    ANYWHERE,
    cloud_inbound_rules,
    cloud_outbound_rules,
    effective_services,
    expected_listeners,
    ufw_rules,
)
from tests.conftest import ROOT

DEV = load_stack_file(ROOT / "Pulumi.dev.yaml")


def inbound(role: str, port: str, stack=DEV):
    return [r for r in cloud_inbound_rules(stack, role) if r.port_range == port]


def test_public_services_open_to_the_world():
    (https,) = inbound("web", "443")
    assert https.protocol == "tcp" and set(https.source_addresses) == set(ANYWHERE)


def test_internal_service_only_from_its_source_role_tag():
    (pg,) = inbound("db", "5432")
    assert pg.source_tags == ("hardened-do-dev-web",)
    assert pg.source_addresses == ()


def test_ssh_never_open_to_the_world_without_opt_in():
    for role in DEV.roles:
        for rule in inbound(role, "22"):
            assert not set(rule.source_addresses) & set(ANYWHERE), role
    (bastion_ssh,) = inbound("bastion", "22")
    assert bastion_ssh.source_addresses == ("203.0.113.0/24",)
    (web_ssh,) = inbound("web", "22")
    assert web_ssh.source_tags == ("hardened-do-dev-bastion",) and web_ssh.source_addresses == ()


def test_ssh_from_anywhere_only_with_explicit_flag(dev_raw):
    dev_raw["ssh_allowed_sources"] = []
    dev_raw["allow_ssh_from_anywhere"] = True
    stack = parse_stack_config(dev_raw, name_prefix="x")
    (rule,) = inbound("bastion", "22", stack)
    assert set(rule.source_addresses) == set(ANYWHERE)


def test_without_bastion_public_hosts_take_ssh_from_admin_sources(dev_raw):
    del dev_raw["roles"]["bastion"], dev_raw["roles"]["db"]
    dev_raw["hosts"] = [{"name": "web-1", "role": "web"}]
    stack = parse_stack_config(dev_raw, name_prefix="x")
    (rule,) = inbound("web", "22", stack)
    assert rule.source_addresses == ("203.0.113.0/24",)


def test_public_service_narrowed_by_cidrs(dev_raw):
    dev_raw["roles"]["web"]["services"][0]["allowed_sources"] = ["198.51.100.0/24"]
    stack = parse_stack_config(dev_raw, name_prefix="x")
    (rule,) = inbound("web", "80", stack)
    assert rule.source_addresses == ("198.51.100.0/24",)
    assert any(r.source == "198.51.100.0/24" and r.port == 80 for r in ufw_rules(stack, "web"))
    assert not any(r.source == "any" and r.port == 80 for r in ufw_rules(stack, "web"))


def test_outbound_is_explicit_and_not_allow_all():
    rules = cloud_outbound_rules(DEV)
    to_world = {(r.protocol, r.port_range) for r in rules if set(r.destination_addresses) == set(ANYWHERE)}
    assert to_world == {("udp", "53"), ("tcp", "53"), ("udp", "123"), ("tcp", "80"), ("tcp", "443"), ("icmp", None)}
    vpc_only = {(r.protocol, r.port_range) for r in rules if r.destination_addresses == (DEV.vpc_cidr,)}
    assert ("udp", "51820") in vpc_only and ("tcp", "1-65535") in vpc_only


def test_every_enforcer_sees_the_same_ports():
    for role in DEV.roles:
        declared = {(s.port, s.protocol) for s in effective_services(DEV, role)}
        cloud = {(int(r.port_range), r.protocol) for r in cloud_inbound_rules(DEV, role) if r.protocol != "icmp"}
        host = {(r.port, r.protocol) for r in ufw_rules(DEV, role)}
        audit = {(s["port"], s["protocol"]) for s in expected_listeners(DEV, role)["services"]}
        assert declared == cloud == host == audit, role


@pytest.mark.parametrize("role", ["bastion", "web", "db"])
def test_rule_counts_fit_digitalocean_limits(role):
    assert len(cloud_inbound_rules(DEV, role)) + len(cloud_outbound_rules(DEV)) <= 50
