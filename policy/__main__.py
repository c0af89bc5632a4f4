"""hardened-do-baseline: the policy pack the Pulumi CLI runs.

    pulumi preview --policy-pack policy

The policies live in pack.py and their checks in rules.py, so tests can use
them without this file, which starts the analyzer server and never returns.
"""

import os
import sys

# The CLI runs this file with the pack directory as the working directory,
# but not necessarily on sys.path; the sibling modules must be importable
# however the pack is started.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import PolicyPack  # noqa: E402

from pack import ENFORCEMENT_LEVEL, PACK_NAME, POLICIES  # noqa: E402

PolicyPack(
    PACK_NAME,
    enforcement_level=ENFORCEMENT_LEVEL,
    policies=POLICIES,
    description="Baseline for DigitalOcean stacks: VPC, SSH keys, cloud firewall, no public SSH, "
    "monitoring, safe user_data, strong TLS keys and short-lived certificates.",
)
