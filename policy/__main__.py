"""hardened-do-baseline: the policy pack the Pulumi CLI runs.

    pulumi preview --policy-pack policy

The policies live in pack.py and their checks in rules.py, so tests can use
them without this file, which starts the analyzer server and never returns.
"""

# The CLI runs the pack as a directory (`python -m pulumi.policy ADDR DIR`
# runs DIR with runpy, which puts DIR on the module path), so the sibling
# modules import by their plain names, as they do when the file runs itself.
from pulumi_policy import PolicyPack

from pack import ENFORCEMENT_LEVEL, PACK_NAME, POLICIES

PolicyPack(
    PACK_NAME,
    enforcement_level=ENFORCEMENT_LEVEL,
    policies=POLICIES,
    description="Baseline for DigitalOcean stacks: VPC, SSH keys, cloud firewall, no public SSH, "
    "monitoring, safe user_data, strong TLS keys and short-lived certificates.",
)
