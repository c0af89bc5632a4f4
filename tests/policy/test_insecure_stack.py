"""The deliberately insecure example violates every policy, each where expected.

tests/policy/insecure/ is a separate Pulumi program of raw DigitalOcean and
TLS resources; its plan under the offline mock engine is fed to the pack.
"""

from __future__ import annotations

import pulumi
import pytest
from pulumi_policy import EnforcementLevel

from offline.mock_engine import config_from_stack_file, run_program
from tests.policy.conftest import INSECURE
from tests.policy.harness import Analyzer, evaluate_plan, pack

# (policy, resource, a fragment of the message)
EXPECTED = {
    ("droplet-in-vpc", "insecure-droplet", "droplet 'insecure-droplet' sets no vpcUuid"),
    ("droplet-in-vpc", "insecure-pool", "sets no dropletTemplate.vpcUuid"),
    ("droplet-ssh-keys", "insecure-droplet", "droplet 'insecure-droplet' has no sshKeys"),
    ("droplet-ssh-keys", "insecure-pool", "has no dropletTemplate.sshKeys"),
    ("droplet-behind-firewall", "insecure-droplet", "its tags (insecure-web) match no digitalocean.Firewall's tags"),
    ("droplet-behind-firewall", "insecure-pool", "its dropletTemplate.tags (insecure-pool) match no"),
    ("firewall-no-public-ssh", "insecure-firewall", "sourceAddresses include 0.0.0.0/0, ::/0"),
    ("droplet-monitoring", "insecure-droplet", "has monitoring False"),
    ("droplet-monitoring", "insecure-pool", "has dropletTemplate.withDropletAgent unset"),
    ("droplet-user-data", "insecure-droplet", 'a "PRIVATE KEY" block'),
    ("droplet-user-data", "insecure-pool", 'a WireGuard "PrivateKey =" line'),
    ("tls-key-strength", "insecure-ca-key", "is RSA with rsaBits 2048, fewer than 3072 bits"),
    ("tls-ca-certificate", "insecure-ca-cert", "is valid for 175200 hours"),
    ("tls-ca-certificate", "insecure-ca-cert", 'without "cert_signing"'),
    ("tls-host-certificate", "insecure-host-cert", "is valid for 8760 hours"),
    ("tls-host-certificate", "insecure-host-cert", "has earlyRenewalHours unset (0)"),
}


def _matches(findings):
    """Pair each expected violation with the finding that reports it."""
    unmatched = set(EXPECTED)
    for policy, name, message in findings:
        hits = {e for e in unmatched if e[0] == policy and e[1] == name and e[2] in message}
        assert hits, f"unexpected violation of {policy} on {name}: {message}"
        unmatched -= hits
    return unmatched


def test_every_policy_is_violated(insecure_plan):
    assert {f.policy for f in evaluate_plan(insecure_plan)} == {p.name for p in pack.POLICIES}


def test_each_violation_is_reported_with_its_message(insecure_plan):
    findings = [(f.policy, f.name, f.message) for f in evaluate_plan(insecure_plan)]
    assert _matches(findings) == set()


def test_the_analyzer_reports_them_all_as_mandatory(insecure_plan):
    diagnostics = Analyzer().analyze_plan(insecure_plan)
    assert {d.level for d in diagnostics} == {EnforcementLevel.MANDATORY}
    names = {r.urn: r.name for r in insecure_plan.resources}
    findings = []
    for d in diagnostics:
        # Resource diagnostics carry no URN (the engine adds it); the message names the resource.
        name = names.get(d.urn) or next(n for n in names.values() if f"'{n}'" in d.message)
        findings.append((d.policy, name, d.message))
    assert _matches(findings) == set()


def test_the_example_refuses_to_deploy():
    with pytest.raises(pulumi.RunError, match="preview only"):
        run_program(
            config_from_stack_file(INSECURE / "Pulumi.insecure.yaml"),
            stack="insecure",
            program=INSECURE / "__main__.py",
            preview=False,
        )
