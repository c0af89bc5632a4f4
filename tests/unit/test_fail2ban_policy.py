"""What fail2ban counts, for how long, and whom it may never ban."""

from __future__ import annotations

import configparser

from hardened_do.cloud_init.render import render_user_data
from hardened_do.components.stack import parse_stack_config
from tests.conftest import dev_config

import yaml

JAIL = "/etc/fail2ban/jail.d/hardened-do.local"


def jail(host: str, **changes) -> configparser.ConfigParser:
    stack = parse_stack_config({**dev_config(), **changes}, name_prefix="hd-test")
    cfg = yaml.safe_load(render_user_data(stack, host))
    text = next(f["content"] for f in cfg["write_files"] if f["path"] == JAIL)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_counts_failed_logins_only_and_bans_longer_for_repeat_offenders():
    j = jail("web-1")
    assert j["sshd"]["mode"] == "normal"  # not aggressive: pre-auth disconnects do not count
    assert j["DEFAULT"]["bantime"] == "1h" and j["DEFAULT"]["bantime.increment"] == "true"
    assert j["DEFAULT"]["bantime.maxtime"] == "1w"


def test_the_bastion_never_bans_the_admin_networks():
    assert j_ignore("bastion-1") == ["127.0.0.1/8", "::1", "203.0.113.0/24"]


def test_hosts_behind_the_bastion_exempt_only_loopback_at_boot():
    # The bastion's VPC address is pushed after boot (fail2ban-ignore.sh).
    assert j_ignore("web-1") == ["127.0.0.1/8", "::1"]
    assert j_ignore("db-1") == ["127.0.0.1/8", "::1"]


def test_ssh_from_anywhere_is_never_exempt():
    ignore = j_ignore("bastion-1", ssh_allowed_sources=["0.0.0.0/0", "198.51.100.0/24"], allow_ssh_from_anywhere=True)
    assert ignore == ["127.0.0.1/8", "::1", "198.51.100.0/24"]


def j_ignore(host: str, **changes) -> list[str]:
    return jail(host, **changes)["DEFAULT"]["ignoreip"].split()


def test_ssh_is_rate_limited_only_where_anyone_can_connect():
    from hardened_do.components.services import ufw_rules

    stack = parse_stack_config({**dev_config(), "ssh_allowed_sources": ["0.0.0.0/0", "198.51.100.0/24"],
                                "allow_ssh_from_anywhere": True}, name_prefix="hd-test")
    ssh = {r.source: r.action for r in ufw_rules(stack, "bastion") if r.port == 22}
    assert ssh == {"any": "limit", "198.51.100.0/24": "allow"}


def test_admin_peers_can_reach_the_bastions_wireguard_port_from_the_admin_networks():
    from hardened_do.components.services import cloud_inbound_rules, ufw_rules

    stack = parse_stack_config(dev_config(), name_prefix="hd-test")
    wg = [r for r in cloud_inbound_rules(stack, "bastion") if r.protocol == "udp" and r.port_range == "51820"]
    assert [set(r.source_addresses) for r in wg] == [{"10.10.0.0/20", "203.0.113.0/24"}]
    assert {r.source for r in ufw_rules(stack, "bastion") if r.port == 51820} == {"10.10.0.0/20", "203.0.113.0/24"}
    # Other roles: the VPC only.
    wg_web = [r for r in cloud_inbound_rules(stack, "web") if r.protocol == "udp" and r.port_range == "51820"]
    assert [set(r.source_addresses) for r in wg_web] == [{"10.10.0.0/20"}]
