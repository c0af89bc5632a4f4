"""The policy objects: their validate callbacks, the pack's metadata and
configuration, and pulumi-policy's analyzer servicer driven with the
requests the engine sends."""

from __future__ import annotations

import jsonschema
import pytest
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

from tests.policy.cases import RESOURCE_CASES, STACK_CASES, STACK_UNDECIDABLE_CASES, UNDECIDABLE_CASES, flat
from tests.policy.harness import Analyzer, pack, rules, run_resource_policy, run_stack_policy

POLICIES = {p.name: p for p in pack.POLICIES}


def test_pack_lists_the_baseline():
    assert pack.PACK_NAME == "hardened-do-baseline"
    assert list(POLICIES) == [
        "droplet-in-vpc",
        "droplet-ssh-keys",
        "droplet-behind-firewall",
        "firewall-no-public-ssh",
        "droplet-monitoring",
        "droplet-user-data",
        "tls-key-strength",
        "tls-ca-certificate",
        "tls-host-certificate",
    ]
    assert isinstance(POLICIES["droplet-behind-firewall"], StackValidationPolicy)
    assert all(isinstance(p, ResourceValidationPolicy) for n, p in POLICIES.items() if n != "droplet-behind-firewall")


def test_every_policy_is_mandatory_by_default():
    info = Analyzer().info()
    assert info.name == pack.PACK_NAME and info.supportsConfig
    assert [p.name for p in info.policies] == list(POLICIES)
    assert pack.ENFORCEMENT_LEVEL is EnforcementLevel.MANDATORY
    # No policy sets its own level, so a policy config file can change any of them.
    assert all(p.enforcement_level is None for p in pack.POLICIES)
    assert all(p.enforcementLevel == proto.MANDATORY for p in info.policies)


def test_config_schemas_are_valid_and_defaults_match_the_checks():
    defaults = {}
    for policy in pack.POLICIES:
        if policy.config_schema is None:
            continue
        schema = {"type": "object", "properties": policy.config_schema.properties}
        jsonschema.Draft7Validator.check_schema(schema)
        for key, prop in policy.config_schema.properties.items():
            defaults[(policy.name, key)] = prop["default"]
    assert defaults == {
        ("droplet-behind-firewall", "externalFirewallTags"): [],
        ("firewall-no-public-ssh", "sshPorts"): [rules.SSH_PORT],
        ("tls-key-strength", "minRsaBits"): rules.MIN_RSA_BITS,
        ("tls-ca-certificate", "maxValidityHours"): rules.MAX_CA_VALIDITY_HOURS,
        ("tls-host-certificate", "maxValidityHours"): rules.MAX_HOST_CERT_VALIDITY_HOURS,
    }


@pytest.mark.parametrize("policy, resource_type, props, expected", flat(RESOURCE_CASES))
def test_validate_callback(policy, resource_type, props, expected):
    messages = run_resource_policy(POLICIES[policy], resource_type, props, "res")
    if expected is None:
        assert messages == []
    else:
        assert messages and all(expected in m for m in messages)


@pytest.mark.parametrize("policy, resource_type, props", flat(UNDECIDABLE_CASES))
def test_validate_callback_defers_unknowns_like_pulumi_policy(policy, resource_type, props):
    with pytest.raises(UnknownValueError):
        run_resource_policy(POLICIES[policy], resource_type, props, "res")


@pytest.mark.parametrize("case_id, resources, config, expected", [pytest.param(*c, id=c[0]) for c in STACK_CASES])
def test_stack_validate_callback(case_id, resources, config, expected):
    reported = run_stack_policy(POLICIES["droplet-behind-firewall"], resources, config)
    urns = {r["name"]: r["urn"] for r in resources}
    assert sorted(urn for urn, _ in reported) == sorted(urns[n] for n in expected)
    for urn, message in reported:
        name = next(n for n, u in urns.items() if u == urn)
        assert expected[name] in message


@pytest.mark.parametrize("case_id, resources", [pytest.param(*c, id=c[0]) for c in STACK_UNDECIDABLE_CASES])
def test_stack_validate_callback_defers_unknowns(case_id, resources):
    with pytest.raises(UnknownValueError):
        run_stack_policy(POLICIES["droplet-behind-firewall"], resources)


def test_policy_config_reaches_the_checks():
    ssh_2222 = {"inboundRules": [{"protocol": "tcp", "portRange": "2222", "sourceAddresses": ["0.0.0.0/0"]}]}
    policy = POLICIES["firewall-no-public-ssh"]
    assert run_resource_policy(policy, rules.FIREWALL, ssh_2222) == []
    assert run_resource_policy(policy, rules.FIREWALL, ssh_2222, config={"sshPorts": [22, 2222]})

    rsa_3072 = {"algorithm": "RSA", "rsaBits": 3072}
    assert run_resource_policy(POLICIES["tls-key-strength"], rules.TLS_PRIVATE_KEY, rsa_3072) == []
    assert run_resource_policy(POLICIES["tls-key-strength"], rules.TLS_PRIVATE_KEY, rsa_3072, config={"minRsaBits": 4096})

    cert = {"validityPeriodHours": 2160, "earlyRenewalHours": 720}
    host = POLICIES["tls-host-certificate"]
    assert run_resource_policy(host, rules.TLS_LOCALLY_SIGNED_CERT, cert) == []
    assert run_resource_policy(host, rules.TLS_LOCALLY_SIGNED_CERT, cert, config={"maxValidityHours": 720})


# --------------------------------------------------------------------------
# Through pulumi-policy's analyzer servicer
# --------------------------------------------------------------------------

BAD_DROPLET = {"tags": ["web"], "monitoring": False}
OPEN_SSH = {"tags": ["web"], "inboundRules": [{"protocol": "tcp", "portRange": "22", "sourceAddresses": ["0.0.0.0/0"]}]}


def test_servicer_reports_mandatory_violations_with_the_description():
    diagnostics = Analyzer().analyze(rules.DROPLET, BAD_DROPLET, name="web-1")
    by_policy = {d.policy: d for d in diagnostics}
    assert set(by_policy) == {"droplet-in-vpc", "droplet-ssh-keys", "droplet-monitoring", "droplet-user-data"}
    for d in diagnostics:
        assert d.level is EnforcementLevel.MANDATORY
        # The engine attaches resource diagnostics to the analyzed resource.
        assert d.urn == ""
        # pulumi-policy prefixes the policy's description to our message.
        assert d.message.startswith(POLICIES[d.policy].description + "\n")
        assert "droplet 'web-1'" in d.message


def test_enforcement_levels_come_from_policy_config():
    analyzer = Analyzer()
    analyzer.configure(
        {
            "droplet-monitoring": "advisory",
            "droplet-user-data": "disabled",
            "firewall-no-public-ssh": {"enforcementLevel": "advisory", "sshPorts": [22]},
        }
    )
    levels = {d.policy: d.level for d in analyzer.analyze(rules.DROPLET, BAD_DROPLET)}
    assert levels == {
        "droplet-in-vpc": EnforcementLevel.MANDATORY,
        "droplet-ssh-keys": EnforcementLevel.MANDATORY,
        "droplet-monitoring": EnforcementLevel.ADVISORY,
    }
    (fw,) = analyzer.analyze(rules.FIREWALL, OPEN_SSH)
    assert fw.policy == "firewall-no-public-ssh" and fw.level is EnforcementLevel.ADVISORY


def test_config_properties_reach_the_checks_through_the_servicer():
    analyzer = Analyzer()
    analyzer.configure({"tls-key-strength": {"enforcementLevel": "mandatory", "minRsaBits": 4096}})
    (d,) = analyzer.analyze(rules.TLS_PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": 3072})
    assert "fewer than 4096 bits" in d.message


def test_unknowns_during_preview_become_advisory_notes():
    analyzer = Analyzer()
    firewall = {"inboundRules": [{"protocol": "tcp", "portRange": "22", "sourceAddresses": [rules.UNKNOWN]}]}
    (d,) = analyzer.analyze(rules.FIREWALL, firewall)
    assert d.policy == "firewall-no-public-ssh" and d.level is EnforcementLevel.ADVISORY
    assert "can't run policy 'firewall-no-public-ssh'" in d.message
    assert "inboundRules[0].sourceAddresses" in d.message


def test_stack_policy_through_the_servicer():
    web = {"type": rules.DROPLET, "urn": "urn:pulumi:t::p::d::web", "name": "web", "props": {"tags": ["web"], "id": "101"}}
    db = {"type": rules.DROPLET, "urn": "urn:pulumi:t::p::d::db", "name": "db", "props": {"tags": ["db"]}}
    fw = {"type": rules.FIREWALL, "urn": "urn:pulumi:t::p::f::fw", "name": "fw", "props": {"tags": ["other"], "dropletIds": [101]}}
    (d,) = Analyzer().analyze_stack([web, db, fw])
    assert d.policy == "droplet-behind-firewall" and d.urn == db["urn"] and d.level is EnforcementLevel.MANDATORY


def test_plain_turns_proxies_into_data():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    proxied = unknown_checking_proxy({"a": [1, {"b": UNKNOWN_STRING_VALUE}], "c": UNKNOWN_STRING_VALUE, "d": "x"})
    assert pack.plain(proxied) == {"a": [1, {"b": rules.UNKNOWN}], "c": rules.UNKNOWN, "d": "x"}
