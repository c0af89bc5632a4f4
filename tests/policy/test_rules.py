"""The pure checks: one passing and one failing resource (at least) per policy."""

from __future__ import annotations

import pytest

from tests.policy.cases import RESOURCE_CASES, STACK_CASES, STACK_UNDECIDABLE_CASES, UNDECIDABLE_CASES, flat
from tests.policy.harness import pack, rules

CHECKS = {
    "droplet-in-vpc": rules.check_droplet_in_vpc,
    "droplet-ssh-keys": rules.check_droplet_ssh_keys,
    "firewall-no-public-ssh": rules.check_firewall_no_public_ssh,
    "droplet-monitoring": rules.check_droplet_monitoring,
    "droplet-user-data": rules.check_droplet_user_data,
    "tls-key-strength": rules.check_tls_key_strength,
    "tls-ca-certificate": rules.check_tls_ca_certificate,
    "tls-host-certificate": rules.check_tls_host_certificate,
}


def test_every_policy_has_cases():
    resource_policies = {p.name for p in pack.POLICIES} - {"droplet-behind-firewall"}
    assert set(CHECKS) == resource_policies == set(RESOURCE_CASES)
    for name, cases in RESOURCE_CASES.items():
        outcomes = {case[3] is None for case in cases}
        assert outcomes == {True, False}, f"{name} needs a passing and a failing case"
    assert {bool(case[3]) for case in STACK_CASES} == {True, False}


@pytest.mark.parametrize("policy, resource_type, props, expected", flat(RESOURCE_CASES))
def test_check(policy, resource_type, props, expected):
    messages = CHECKS[policy](resource_type, props, "res")
    if expected is None:
        assert messages == []
    else:
        assert messages, "expected a violation"
        for message in messages:
            assert expected in message
            # Every message names the resource and says how to fix it.
            assert "'res'" in message and "Fix:" in message


@pytest.mark.parametrize("policy, resource_type, props", flat(UNDECIDABLE_CASES))
def test_unknown_values_defer_the_check(policy, resource_type, props):
    with pytest.raises(rules.Undecidable):
        CHECKS[policy](resource_type, props, "res")


def test_a_definite_violation_is_reported_despite_unknown_rules():
    props = {
        "inboundRules": [
            {"protocol": "tcp", "portRange": "22", "sourceAddresses": [rules.UNKNOWN]},
            {"protocol": "tcp", "portRange": "22", "sourceAddresses": ["::/0"]},
        ]
    }
    (message,) = rules.check_firewall_no_public_ssh(rules.FIREWALL, props, "fw")
    assert "inboundRules[1]" in message
    mixed = {"inboundRules": [{"protocol": "tcp", "portRange": "22", "sourceAddresses": [rules.UNKNOWN, "0.0.0.0/0"]}]}
    (message,) = rules.check_firewall_no_public_ssh(rules.FIREWALL, mixed, "fw")
    assert "sourceAddresses include 0.0.0.0/0" in message


@pytest.mark.parametrize("port, opened", [(22, True), (2222, False)])
def test_ssh_ports_are_configurable(port, opened):
    props = {"inboundRules": [{"protocol": "tcp", "portRange": "2222", "sourceAddresses": ["0.0.0.0/0"]}]}
    assert bool(rules.check_firewall_no_public_ssh(rules.FIREWALL, props, "fw", ssh_ports=[2222])) is True
    assert bool(rules.check_firewall_no_public_ssh(rules.FIREWALL, props, "fw", ssh_ports=[port])) is (not opened)


def test_thresholds_are_configurable():
    key = {"algorithm": "RSA", "rsaBits": 3072}
    assert rules.check_tls_key_strength(rules.TLS_PRIVATE_KEY, key, "k", min_rsa_bits=4096)
    host = {"validityPeriodHours": 2160, "earlyRenewalHours": 720}
    assert rules.check_tls_host_certificate(rules.TLS_LOCALLY_SIGNED_CERT, host, "h", max_validity_hours=720)
    ca = {"isCaCertificate": True, "validityPeriodHours": 87600, "allowedUses": ["cert_signing"]}
    assert rules.check_tls_ca_certificate(rules.TLS_SELF_SIGNED_CERT, ca, "ca", max_validity_hours=43800)


@pytest.mark.parametrize(
    "case_id, resources, config, expected", [pytest.param(*c, id=c[0]) for c in STACK_CASES]
)
def test_droplets_behind_firewall(case_id, resources, config, expected):
    external = (config or {}).get("externalFirewallTags", ())
    violations = rules.check_droplets_behind_firewall(resources, external)
    urns = {r["name"]: r["urn"] for r in resources}
    assert {v.urn for v in violations} == {urns[name] for name in expected}
    for violation in violations:
        name = next(n for n, u in urns.items() if u == violation.urn)
        assert expected[name] in violation.message
        assert f"'{name}'" in violation.message and "Fix:" in violation.message


@pytest.mark.parametrize("case_id, resources", [pytest.param(*c, id=c[0]) for c in STACK_UNDECIDABLE_CASES])
def test_droplets_behind_firewall_defers_on_unknowns(case_id, resources):
    with pytest.raises(rules.Undecidable):
        rules.check_droplets_behind_firewall(resources)


def test_messages_never_echo_the_secret():
    secret_line = "PrivateKey = c2VjcmV0LXdpcmVndWFyZC1rZXktbWF0ZXJpYWwtMTIzNA=="
    (message,) = rules.check_droplet_user_data(rules.DROPLET, {"userData": secret_line}, "d")
    assert "c2VjcmV0" not in message and "WireGuard" in message
