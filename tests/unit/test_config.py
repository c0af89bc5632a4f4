"""The stack model: good configs parse, bad ones fail with a clear message."""

from __future__ import annotations

import base64
import copy
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardened_do.components.config import ConfigError, StackConfig
from hardened_do.components.stack import load_stack_file, parse_stack_config
from tests.conftest import ROOT, dev_config


def parse(raw: dict) -> StackConfig:
    return parse_stack_config(raw, name_prefix="hd-test")


def reject(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    return str(info.value)


def test_dev_stack_parses():
    stack = load_stack_file(ROOT / "Pulumi.dev.yaml")
    assert [h.name for h in stack.hosts] == ["bastion-1", "web-1", "web-2", "db-1"]
    assert stack.bastion_role == "bastion"
    assert stack.needs_nat_gateway  # the db role is private-only
    assert stack.name_prefix == "hardened-do-dev"
    assert stack.image == "ubuntu-24-04-x64"


def _ssh_string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _fake_key(key_type: str, *parts: bytes) -> str:
    blob = _ssh_string(key_type.encode()) + b"".join(_ssh_string(p) for p in parts)
    return f"{key_type} {base64.b64encode(blob).decode()} fake@example.invalid"


# (mutation, config key expected in the error, words expected in the error)
BAD = {
    "public vpc range": (lambda c: c.update(vpc_cidr="8.8.0.0/16"), "vpc_cidr", "not a private"),
    "vpc too large": (lambda c: c.update(vpc_cidr="10.0.0.0/8"), "vpc_cidr", "/16 to /24"),
    "vpc too small": (lambda c: c.update(vpc_cidr="10.10.0.0/25"), "vpc_cidr", "/16 to /24"),
    "vpc host bits": (lambda c: c.update(vpc_cidr="10.10.0.1/16"), "vpc_cidr", "host bits"),
    "vpc not a cidr": (lambda c: c.update(vpc_cidr="ten-ten"), "vpc_cidr", "not a valid CIDR"),
    "overlay overlaps vpc": (lambda c: c.update(overlay_cidr="10.10.1.0/24"), "overlay_cidr", "overlaps vpc_cidr"),
    "vpc on DOKS range": (lambda c: c.update(vpc_cidr="10.244.0.0/16"), "vpc_cidr", "Kubernetes"),
    "ssh from anywhere v4": (
        lambda c: c.update(ssh_allowed_sources=["0.0.0.0/0"]), "ssh_allowed_sources", "allow_ssh_from_anywhere: true"
    ),
    "ssh from anywhere v6": (
        lambda c: c.update(ssh_allowed_sources=["198.51.100.0/24", "::/0"]), "ssh_allowed_sources", "whole internet"
    ),
    "no ssh source": (lambda c: c.update(ssh_allowed_sources=[]), "ssh_allowed_sources", "no admin could reach"),
    "no admin key": (lambda c: c.update(admin_ssh_keys=[]), "admin_ssh_keys", "at least one admin SSH public key"),
    "key not base64": (lambda c: c.update(admin_ssh_keys=["ssh-ed25519 !!!notbase64 x"]), "admin_ssh_keys", "base64"),
    "key garbage": (lambda c: c.update(admin_ssh_keys=["hello"]), "admin_ssh_keys", "not an OpenSSH public key"),
    "dsa key": (
        lambda c: c.update(admin_ssh_keys=[_fake_key("ssh-dss", b"\x01" * 128, b"\x02" * 20, b"\x03" * 128, b"\x04" * 128)]),
        "admin_ssh_keys",
        "DSA keys are refused",
    ),
    "mismatched key type": (
        lambda c: c.update(admin_ssh_keys=["ssh-rsa " + _fake_key("ssh-ed25519", b"\x00" * 32).split()[1]]),
        "admin_ssh_keys",
        "does not match",
    ),
    "port too high": (lambda c: c["roles"]["web"]["services"][0].update(port=70000), "roles.web.services[0].port", "out of range"),
    "port zero": (lambda c: c["roles"]["web"]["services"][0].update(port=0), "roles.web.services[0].port", "out of range"),
    "port as text": (lambda c: c["roles"]["web"]["services"][0].update(port="80"), "roles.web.services[0].port", "whole number"),
    "port twice": (lambda c: c["roles"]["web"]["services"][1].update(port=80), "roles.web", "declared twice"),
    "service name twice": (lambda c: c["roles"]["web"]["services"][1].update(name="http"), "roles.web", "declared twice"),
    "ssh declared as a service": (
        lambda c: c["roles"]["web"]["services"].append({"name": "ssh", "port": 22, "exposure": "public"}),
        "roles.web",
        "managed by the baseline",
    ),
    "unknown exposure": (lambda c: c["roles"]["web"]["services"][0].update(exposure="world"), "exposure", "public"),
    "misspelt key": (lambda c: c["roles"]["web"]["services"][0].update(exposre="public"), "exposre", "unknown key"),
    "unknown top-level key": (lambda c: c.update(regoin="fra1"), "regoin", "unknown key"),
    "internal without sources": (
        lambda c: c["roles"]["db"]["services"][0].update(allowed_sources=[]), "roles.db.services[0]", "need allowed_sources"
    ),
    "internal from unknown role": (
        lambda c: c["roles"]["db"]["services"][0].update(allowed_sources=["webb"]), "allowed_sources", "not a role"
    ),
    "private with sources": (
        lambda c: c["roles"]["db"]["services"][0].update(exposure="private"), "roles.db.services[0]", "not used"
    ),
    "public source not a cidr": (
        lambda c: c["roles"]["web"]["services"][0].update(allowed_sources=["office"]), "roles.web.services[0]", "not a valid CIDR"
    ),
    "duplicate host": (lambda c: c["hosts"].append({"name": "web-1", "role": "web"}), "hosts[4].name", "used twice"),
    "host not a dns label": (lambda c: c["hosts"][1].update(name="Web_1"), "hosts[1].name", "DNS label"),
    "host name too long": (lambda c: c["hosts"][1].update(name="a" * 64), "hosts[1].name", "DNS label"),
    "host with unknown role": (lambda c: c["hosts"][1].update(role="www"), "hosts[1].role", "not a role"),
    "no hosts": (lambda c: c.update(hosts=[]), "hosts", "no hosts"),
    "private role without bastion": (
        lambda c: (c["roles"].pop("bastion"), c["hosts"].pop(0)), "public_networking", "bastion"
    ),
    "bastion without host": (lambda c: c["hosts"].pop(0), "hosts", "has no host"),
    "two bastions": (lambda c: c["roles"]["web"].update(bastion=True), "roles", "exactly one"),
    "unsupported image": (lambda c: c.update(image="centos-7-x64"), "image", "ubuntu-24-04-x64"),
    "root as admin": (lambda c: c.update(admin_user="root"), "admin_user", "not root"),
    "bad region": (lambda c: c.update(region="Frankfurt"), "region", "region slug"),
    "bad reboot time": (
        lambda c: c["unattended_upgrades"].update(reboot_time="25:00"), "unattended_upgrades.reboot_time", "HH:MM"
    ),
    "wireguard port clash": (
        lambda c: c["roles"]["web"]["services"].append({"name": "wg", "port": 51820, "protocol": "udp", "exposure": "public"}),
        "port",
        "WireGuard",
    ),
    "user_data over budget": (
        lambda c: c["roles"]["web"]["services"].extend(
            {"name": f"svc{i}", "port": 10000 + i, "exposure": "public",
             "allowed_sources": [f"198.51.{i}.{j * 4}/30" for j in range(60)]}
            for i in range(4)
        ),
        "hosts[1]",
        "most of it is the services of role 'web'",
    ),
    "ca is a private key": (
        lambda c: c.update(trusted_ca_pem="-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----"),
        "trusted_ca_pem",
        "PRIVATE key",
    ),
    "too many firewall rules": (
        lambda c: c["roles"]["web"]["services"].extend(
            {"name": f"svc{i}", "port": 10000 + i, "exposure": "private"} for i in range(45)
        ),
        "roles.web.services",
        "limit of 50",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD), ids=sorted(BAD))
def test_bad_input_is_rejected_with_key_problem_and_fix(case):
    mutate, key, words = BAD[case]
    raw = copy.deepcopy(dev_config())
    mutate(raw)
    message = reject(raw)
    assert "nothing was created" in message
    assert key in message, message
    assert words in message, message
    assert "Traceback" not in message


def test_every_problem_is_reported_at_once(dev_raw):
    dev_raw["vpc_cidr"] = "8.8.0.0/16"
    dev_raw["hosts"][1]["name"] = "Web_1"
    dev_raw["roles"]["web"]["services"][0]["port"] = 0
    message = reject(dev_raw)
    assert "vpc_cidr" in message and "hosts[1].name" in message and "port" in message


def test_explicit_opt_in_allows_ssh_from_anywhere(dev_raw):
    dev_raw["ssh_allowed_sources"] = ["0.0.0.0/0", "::/0"]
    dev_raw["allow_ssh_from_anywhere"] = True
    assert parse(dev_raw).allow_ssh_from_anywhere


def test_strong_real_keys_are_accepted(dev_raw, keys):
    ed, _ = keys.make("ed25519")
    ec, _ = keys.make("ecdsa", 384)
    rsa, _ = keys.make("rsa", 3072)
    dev_raw["admin_ssh_keys"] = [ed, ec, rsa]
    stack = parse(dev_raw)
    assert [k.key_type for k in stack.admin_keys()] == ["ssh-ed25519", "ecdsa-sha2-nistp384", "ssh-rsa"]
    assert stack.admin_keys()[2].bits == 3072


def test_short_rsa_key_is_refused(dev_raw, keys):
    rsa, _ = keys.make("rsa", 2048)
    dev_raw["admin_ssh_keys"] = [rsa]
    message = reject(dev_raw)
    assert "admin_ssh_keys" in message and "2048 bits is too weak" in message and "3072" in message


@pytest.mark.parametrize("as_list", [True, False])
def test_private_key_is_refused_and_never_echoed(dev_raw, keys, as_list):
    _, private = keys.make("ed25519")
    dev_raw["admin_ssh_keys"] = [private] if as_list else private
    message = reject(dev_raw)
    assert "PRIVATE key" in message and "not shown" in message
    body = [line for line in private.splitlines() if "-----" not in line]
    assert body and not any(line in message for line in body)
    assert "BEGIN OPENSSH" not in message


def test_rejected_config_creates_nothing(dev_raw, monkeypatch):
    """The program stops at config parsing: no resource constructor runs."""
    import pulumi_digitalocean as do

    created = []
    for cls in ("Vpc", "Tag", "Firewall", "Droplet", "SshKey"):
        monkeypatch.setattr(do, cls, lambda *a, _cls=cls, **k: created.append(_cls))
    dev_raw["vpc_cidr"] = "8.8.0.0/16"
    with pytest.raises(ConfigError):
        parse(dev_raw)
    assert created == []


# ---- property-based: no input may crash the parser --------------------------

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(["0.0.0.0/0", "::/0", "10.0.0.0/16", "public", "internal", "web", "-----BEGIN OPENSSH PRIVATE KEY-----"]),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=12,
)
KEYS = list(StackConfig.model_fields) + ["bogus"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), json_value, max_size=8))
def test_fuzz_random_configs_fail_cleanly(raw):
    try:
        parse(raw)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


DEV_PATHS = [p for p in _paths(dev_config()) if p]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DEV_PATHS), json_value)
def test_fuzz_one_field_of_the_dev_stack(path, value):
    """Replace one leaf or subtree of a valid config: parse or clean error."""
    raw = copy.deepcopy(dev_config())
    target = raw
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    try:
        parse(raw)
    except ConfigError as exc:
        message = str(exc)
        assert "Traceback" not in message
        if isinstance(value, str) and "PRIVATE KEY" in value:
            assert value not in message or len(value) < 40
