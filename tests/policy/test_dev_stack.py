"""The dev stack, as the program plans it, passes every policy.

The plan comes from running the real program (`__main__.py` with
Pulumi.dev.yaml) under the offline mock engine; its resources are fed to
the pack both through the policies' validate callbacks and through
pulumi-policy's analyzer servicer.
"""

from __future__ import annotations

import copy

import pytest

from offline.mock_engine import ROOT, config_from_stack_file, run_program
from tests.policy.harness import Analyzer, evaluate_plan, rules

# Outputs a provider computes on create: unknown while previewing a new
# stack. (A Tag's name is its input, which a preview already knows.)
COMPUTED_BY_PROVIDER = {
    "digitalocean:index/vpc:Vpc",
    "digitalocean:index/sshKey:SshKey",
    "digitalocean:index/vpcNatGateway:VpcNatGateway",
}


def test_the_plan_has_what_the_policies_look_at(dev_plan):
    types = [r.type for r in dev_plan.resources]
    assert types.count(rules.DROPLET) == 4
    assert types.count(rules.FIREWALL) == 3


def test_dev_stack_passes_every_policy(dev_plan):
    assert evaluate_plan(dev_plan) == []


def test_dev_stack_passes_through_the_analyzer(dev_plan):
    assert Analyzer().analyze_plan(dev_plan) == []


def _as_first_preview(plan):
    """The plan with values computed by providers replaced by unknowns."""
    plan = copy.deepcopy(plan)
    types = {r.urn: r.type for r in plan.resources}
    for res in plan.resources:
        for prop, urns in res.property_dependencies.items():
            if any(types.get(u) in COMPUTED_BY_PROVIDER for u in urns):
                for props in (res.inputs, res.outputs):
                    if prop in props:
                        props[prop] = rules.UNKNOWN
    return plan


def test_first_preview_of_the_dev_stack_is_clean(dev_plan):
    preview = _as_first_preview(dev_plan)
    droplet = next(r for r in preview.resources if r.type == rules.DROPLET)
    assert droplet.inputs["vpcUuid"] is rules.UNKNOWN and droplet.inputs["sshKeys"] is rules.UNKNOWN
    # Not even an advisory "can't run during preview": a VPC id or key
    # fingerprint that is not known yet is still set.
    assert Analyzer().analyze_plan(preview) == []


def _dev_config(**overrides):
    config = config_from_stack_file(ROOT / "Pulumi.dev.yaml")
    config.update({f"hardened-do:{k}": v for k, v in overrides.items()})
    return config


@pytest.mark.parametrize(
    "overrides, policy, resources",
    [
        pytest.param(
            {"allow_ssh_from_anywhere": True, "ssh_allowed_sources": []},
            "firewall-no-public-ssh",
            {"network-fw-bastion"},
            id="ssh-from-anywhere",
        ),
        pytest.param(
            {"monitoring": False},
            "droplet-monitoring",
            {"bastion-1-droplet", "web-1-droplet", "web-2-droplet", "db-1-droplet"},
            id="monitoring-off",
        ),
    ],
)
def test_the_policies_catch_an_unsafe_dev_config(overrides, policy, resources):
    plan = run_program(_dev_config(**overrides))
    findings = evaluate_plan(plan)
    assert {f.policy for f in findings} == {policy}
    assert {f.name for f in findings} == resources
