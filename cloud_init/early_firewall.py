"""The boot-time packet filter: the UFW rules, enforced before UFW exists.

cloud-init's `bootcmd` runs in the init stage, before `write_files`, before
any package step and before sshd first starts (cloud-init.service is ordered
before sshd.service). The role's UFW rules (the same
`components.services.ufw_rules` derivation; there is no second list) go into
a `bootcmd` snippet (`templates/boot-filter.sh.j2`) as `proto port source`
lines, and the snippet builds a deny-by-default input filter from them with
what the image already has:

* `nft` (Debian 12 ships nftables, priority "important"): its own table
  `inet hardened_do_boot`, hooked before UFW's iptables-nft chains;
* otherwise `iptables-restore`/`ip6tables-restore` (Ubuntu 24.04 has them
  for its preinstalled UFW): a chain `HD-BOOT` that INPUT jumps to first.

The hand-over (`firewall.sh.j2`) enables UFW first and only then removes the
boot filter. While both exist a packet must pass both, and both admit the
same declared traffic, so there is no moment without a filter. A marker
written at hand-over keeps later boots (bootcmd runs on every boot) from
loading the boot filter over a running UFW.

`ufw limit` is a plain accept here: rate limiting starts with UFW, minutes
later; sshd refuses passwords from its first start.
"""

from __future__ import annotations

from ..components.services import UfwRule

TABLE = "hardened_do_boot"
CHAIN = "HD-BOOT"
STATE_DIR = "/var/lib/hardened-do"
HANDED_OVER = f"{STATE_DIR}/boot-filter-handed-over"
LOG = f"{STATE_DIR}/boot-filter.log"
RULES_FILE = f"{STATE_DIR}/boot-filter.rules"


def rule_lines(rules: list[UfwRule]) -> str:
    """`proto port source` per rule ("any" for anywhere), `;`-separated: the
    snippet gets them as one shell word (no control character reaches a
    script) and splits them with `tr`."""
    return ";".join(f"{r.protocol} {r.port} {r.source}" for r in rules)
