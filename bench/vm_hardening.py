"""Hardened vs stock: boot time and Lynis hardening index on booted guests.

Boots, one after another (so they do not compete for the CPU), a guest with
the stock minimal cloud-config and a guest with the user-data the program
renders for a Debian 12 host, from the same cached image. For each it prints
seconds from qemu start to sshd answering and to cloud-init done, then
installs Lynis (Debian's package) in the guest and prints its hardening
index.

    .venv/bin/python -m bench.vm_hardening [--skip-lynis]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from hardened_do.cloud_init.render import render_user_data
from hardened_do.components.stack import parse_stack_config
from tests.testbed.image import build_image
from tests.testbed.userdata import minimal_user_data
from tests.testbed.vm import Cluster, make_ssh_key

_INDEX = re.compile(r"Hardening index\s*:\s*(\d+)")


def hardened_user_data(public_key: str) -> str:
    stack = parse_stack_config(
        {
            "image": "debian-12-x64",
            "vpc_cidr": "10.10.0.0/24",
            "admin_ssh_keys": [public_key],
            # QEMU's NAT: connections from this machine arrive from 10.0.2.2.
            "ssh_allowed_sources": ["10.0.2.2/32"],
            # Like the stock guest, no full upgrade at first boot: the
            # comparison is about the hardening, not the mirror's speed.
            "package_upgrade": False,
            "roles": {"web": {"services": [{"name": "https", "port": 443, "exposure": "public"}]}},
            "hosts": [{"name": "bench", "role": "web"}],
        },
        name_prefix="bench",
    )
    return render_user_data(stack, "bench")


def lynis_index(guest, ssh) -> str:
    # The stock guest never ran `apt-get update`; its package lists are empty.
    install = ssh(
        "sudo apt-get update -q >/dev/null 2>&1; "
        "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null 2>&1; test -x /usr/sbin/lynis"
    )
    if not install.ok:
        return f"lynis not installed: {install.stderr.strip()[-200:]}"
    run = ssh("sudo lynis audit system --quick --no-colors 2>/dev/null | grep -i 'Hardening index'", timeout=3600)
    m = _INDEX.search(run.stdout)
    return m.group(1) if m else f"no index in output ({run.rc})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-lynis", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--only", choices=("stock", "hardened"), help="boot just one of the two")
    args = parser.parse_args()
    image = build_image()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hd-bench-") as tmp:
        key = make_ssh_key(tmp)
        cases = [
            ("stock", minimal_user_data(key.public, user="tester"), "tester"),
            ("hardened", hardened_user_data(key.public), "ops"),
        ]
        for label, user_data, user in cases:
            if args.only and label != args.only:
                continue
            control = Path(tmp) / f"cm-{label}"
            with Cluster(image=image) as cluster:
                guest = cluster.add("bench", user_data, ssh_user=user, ssh_key=key.path, public_keys=[key.public])
                cluster.start()
                guest.wait_for_ssh(args.timeout)
                status = guest.wait_for_cloud_init(args.timeout)

                def ssh(cmd, timeout=1800, _g=guest):
                    # One multiplexed connection: the hardened guest rate-limits SSH.
                    return _g.ssh(cmd, timeout=timeout, options=[
                        "-o", "ControlMaster=auto", "-o", f"ControlPath={control}", "-o", "ControlPersist=600"])

                index = "-" if args.skip_lynis else lynis_index(guest, ssh)
                row = (label, guest.timings.get("ssh_banner"), guest.timings.get("cloud_init_done"), status.status, index)
                rows.append(row)
                print(f"# {label}: ssh {row[1]}, cloud-init {row[2]}, {row[3]}, lynis {row[4]}", file=sys.stderr, flush=True)

    print(f"{'guest':<10}{'ssh answers s':>15}{'cloud-init done s':>19}{'status':>9}{'Lynis index':>13}")
    for label, ssh_s, ci_s, status, index in rows:
        fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else "-"  # noqa: E731
        print(f"{label:<10}{fmt(ssh_s):>15}{fmt(ci_s):>19}{status:>9}{index:>13}")
    print("TCG emulation on a 2-core machine; seconds from qemu start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
