"""Hardened vs stock on booted guests: boot time, exposure window, Lynis.

Three phases in one run, from the same cached Debian 12 image:

1. stock: a guest with the stock minimal cloud-config, alone on the CPU;
   seconds from qemu start to sshd answering and to cloud-init done.
2. hardened: the same for a guest with the user-data the program renders
   for a Debian 12 database host (an internal service), alone on the CPU;
   then where cloud-init's time went (`cloud-init analyze blame`), the
   listeners started before cloud-init ran, and the Lynis hardening index
   (Debian's lynis package) with every remaining suggestion and why it is
   left.
3. window: a VPC peer guest boots first and probes, every second from the
   target's qemu start (bench/exposure_probe.py), a hardened target: an
   undeclared listener, the declared-internal port (from inside the VPC,
   where it must answer, and from outside it, where it must not), SSH from
   outside the VPC, and whether sshd offers password authentication. It
   prints the seconds during which anything answered that should not.

    .venv/bin/python -m bench.vm_hardening [--only stock|hardened|window] [--skip-lynis]

The guests boot with `package_upgrade: false` (the comparison is about the
hardening, not the mirror's speed); before Lynis runs on the hardened guest,
`unattended-upgrade` installs pending security updates, as the daily timer
(or `package_upgrade: true` at first boot) does on a real host.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from hardened_do.cloud_init.render import AUDIT_PACKAGES, PACKAGES as HARDENING_PACKAGES, render_user_data
from hardened_do.components.stack import parse_stack_config
from tests.testbed.image import PACKAGES as IMAGE_PACKAGES, build_image
from tests.testbed.userdata import minimal_user_data
from tests.testbed.vm import Cluster, make_ssh_key

_INDEX = re.compile(r"hardening_index=(\d+)")
VPC = "10.10.0.0/24"
TARGET_IP = "10.10.0.11"
PEER_IP, OUTSIDE_IP = "10.10.0.12", "10.10.7.7"  # the segment is a /16; the VPC a /24
INTERNAL_PORT, UNDECLARED_PORT = 5432, 8081

# Why a Lynis suggestion is left (by test id), shown next to it.
LEFT = {
    "BOOT-5264": "systemd unit sandboxing of distribution services: per-unit work, outside a baseline",
    "KRNL-5788": "the kernel package's own files: nothing to fix on a droplet",
    "KRNL-5830": "reboot needed after the kernel update unattended-upgrades just installed; the reboot window takes it",
    "AUTH-9262": "password strength PAM module: every account is key-only, passwords are locked",
    "AUTH-9282": "password expiry on accounts: passwords are locked",
    "AUTH-9284": "locked accounts are the design (key-only)",
    "FILE-6310": "separate /home, /tmp, /var partitions: DigitalOcean images are one root file system",
    "USB-3000": "USBGuard: droplets have no USB",
    "STRG-1840": "USB storage already refused by modprobe; Lynis wants it blacklisted in initramfs too",
    "NAME-4028": "DNS domain name: set by DigitalOcean's DHCP/metadata, not by the image",
    "PKGS-7346": "removed packages' configuration: purged at boot; what remains comes later",
    "PKGS-7370": "debsums: an integrity check that AIDE (opt-in) does better",
    "PKGS-7394": "apt-show-versions: reporting only",
    "DEB-0280": "libpam-tmpdir: per-user /tmp for interactive users; hosts have one admin",
    "DEB-0810": "apt-listbugs: interactive, blocks unattended upgrades",
    "DEB-0811": "apt-listchanges: interactive mail of changelogs",
    "DEB-0831": "needrestart: restarts services on its own; unattended-upgrades reboots in the window",
    "DEB-0880": "fail2ban: Lynis wants jail.local; our settings are in jail.d/hardened-do.local",
    "NETW-3200": "protocols are refused by modprobe; Lynis may still list them",
    "SSH-7408": "sshd stays on port 22 (the cloud firewall and UFW decide who reaches it; a moved port hides nothing from a scan)",
    "LOGG-2154": "remote logging: needs a log host, which is deployment-specific",
    "LOGG-2190": "deleted files in use: transient after package upgrades",
    "BANN-7126": "banner wording",
    "ACCT-9622": "process accounting: installed (acct); Lynis checks before its first rotation",
    "TIME-3104": "NTP: the test image has no NTP client; DO images run systemd-timesyncd",
    "FINT-4350": "file integrity (AIDE): heavy at boot (hours of hashing under emulation); a documented opt-in",
    "TOOL-5002": "automation tool: Pulumi pushes over SSH, nothing runs on the host",
    "HRDN-7230": "malware scanner (rkhunter, ClamAV): heavy and noisy on a server; opt-in",
    "MALW-3280": "malware scanner: see HRDN-7230",
    "HOME-9304": "home directory permissions of users added later",
    "KRNL-6000": "sysctl values Lynis wants that would break the mesh or module loading (e.g. kernel.modules_disabled)",
    "PKGS-7392": "security updates pending at audit time",
    "MAIL-8818": "no mail server on a baseline host",
    "HTTP-6640": "no web server in the baseline",
    "PHP-2211": "no PHP in the baseline",
}


def bench_stack(public_key: str):
    return parse_stack_config(
        {
            "image": "debian-12-x64",
            "vpc_cidr": VPC,
            "admin_ssh_keys": [public_key],
            # QEMU's NAT: connections from this machine arrive from 10.0.2.2.
            "ssh_allowed_sources": ["10.0.2.2/32", VPC],
            "package_upgrade": False,
            "roles": {
                "db": {"services": [{"name": "postgres", "port": INTERNAL_PORT, "exposure": "internal",
                                     "allowed_sources": ["db"]}]},
            },
            "hosts": [{"name": "bench", "role": "db"}],
        },
        name_prefix="bench",
    )


def hardened_user_data(public_key: str, baked: bool = False) -> str:
    return render_user_data(bench_stack(public_key), "bench", baked=baked)


def baked_image():
    """The image plus the packages the hardening installs: what a snapshot
    built from the same cloud-config holds (configuration still comes from
    user-data at boot)."""
    return build_image(tuple(sorted({*IMAGE_PACKAGES, *HARDENING_PACKAGES, *AUDIT_PACKAGES})))


def with_listeners(user_data: str) -> str:
    """The hardened user-data plus listeners that come up before the boot filter.

    A bootcmd entry ahead of the project's own starts one process listening
    on the declared-internal port and on an undeclared one, on every
    address: the worst case of a service an image starts early.
    """
    # setsid -f, not systemd-run: a unit started from bootcmd waits for
    # basic.target, which waits for cloud-init (a deadlock).
    listener = (
        "setsid -f python3 -c \"import socket,threading\n"
        f"def serve(p):\n s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('0.0.0.0',p)); s.listen(16)\n"
        " while True: s.accept()[0].close()\n"
        f"[threading.Thread(target=serve,args=(p,)).start() for p in ({INTERNAL_PORT},{UNDECLARED_PORT})]\" >/dev/null 2>&1"
    )
    return user_data.replace("bootcmd:\n- |", "bootcmd:\n- " + json.dumps(listener) + "\n- |", 1)


def _ssh(guest, control: Path):
    def run(cmd, timeout=1800):
        # One multiplexed connection: the hardened guest rate-limits SSH.
        return guest.ssh(cmd, timeout=timeout, options=[
            "-o", "ControlMaster=auto", "-o", f"ControlPath={control}", "-o", "ControlPersist=900"])
    return run


def boot_alone(image, label, user_data, user, key, timeout) -> tuple:
    cluster = Cluster(image=image, vpc_cidr=VPC)
    guest = cluster.add(label, user_data, ssh_user=user, ssh_key=key.path, public_keys=[key.public])
    cluster.start()
    guest.wait_for_ssh(timeout)
    status = guest.wait_for_cloud_init(timeout)
    return cluster, guest, status


def blame(ssh) -> list[str]:
    out = ssh("sudo cloud-init analyze blame 2>/dev/null | head -12").stdout
    return [line.strip() for line in out.splitlines() if line.strip() and "--" not in line]


def early_listeners(ssh) -> list[str]:
    """Listening sockets whose unit started before cloud-init's network stage."""
    script = r"""
ci=$(systemctl show -p ExecMainStartTimestampMonotonic --value cloud-init.service)
sudo ss -H -tulpn | while read -r proto _ _ _ local _ users; do
  pid=$(echo "$users" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
  [ -n "$pid" ] || continue
  unit=$(ps -o unit= -p "$pid" | tr -d ' ')
  t=$(systemctl show -p ActiveEnterTimestampMonotonic --value "$unit" 2>/dev/null)
  [ -n "$t" ] && [ "$t" -lt "$ci" ] && echo "$proto $local $unit (started before cloud-init.service)"
done
systemctl list-sockets --no-legend --all | awk '{print "socket unit:", $1, $2}'
"""
    return [line for line in ssh(script).stdout.splitlines() if line.strip()]


def lynis(ssh) -> tuple[str, list[tuple[str, str]]]:
    # The stock guest never ran `apt-get update`; its package lists are empty.
    install = ssh(
        "sudo apt-get update -q >/dev/null 2>&1; "
        "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null 2>&1; test -x /usr/sbin/lynis"
    )
    if not install.ok:
        return f"lynis not installed: {install.stderr.strip()[-200:]}", []
    ssh("sudo lynis audit system --quick --no-colors >/dev/null 2>&1", timeout=3600)
    report = ssh("sudo cat /var/log/lynis-report.dat").stdout
    m = _INDEX.search(report)
    items = []
    for line in report.splitlines():
        if line.startswith(("suggestion[]=", "warning[]=")):
            kind, _, rest = line.partition("[]=")
            test, text = (rest.split("|") + ["", ""])[:2]
            items.append((f"{kind} {test}", text))
    return (m.group(1) if m else "no index in report"), items


def phase_boot(label, image, user_data, user, key, args, tmp) -> dict:
    cluster, guest, status = boot_alone(image, label, user_data, user, key, args.timeout)
    with cluster:
        ssh = _ssh(guest, Path(tmp) / f"cm-{label}")
        row = {
            "guest": label,
            "ssh": guest.timings.get("ssh_banner"),
            "cloud_init": guest.timings.get("cloud_init_done"),
            "uptime": guest.timings.get("cloud_init_done_guest_uptime"),
            "status": status.status,
            "blame": blame(ssh),
            "early_listeners": early_listeners(ssh),
        }
        if label != "stock":
            row["boot_filter_log"] = ssh("sudo cat /var/lib/hardened-do/boot-filter.log; cat /proc/uptime; date +%s.%N").stdout
        if not args.skip_lynis and label in args.lynis.split(","):
            if label != "stock" and not args.no_upgrade:
                ssh("sudo unattended-upgrade >/dev/null 2>&1 || true", timeout=3600)
            row["lynis"], row["suggestions"] = lynis(ssh)
    print(f"# {label}: {json.dumps({k: v for k, v in row.items() if k not in ('suggestions',)})}", file=sys.stderr, flush=True)
    return row


def phase_window(image, key, args, tmp, baked: bool = False) -> dict:
    """Seconds during which something answered that should not, from the target's qemu start."""
    probe = (Path(__file__).parent / "exposure_probe.py").read_text()
    cluster = Cluster(image=image, vpc_cidr="10.10.0.0/16")
    with cluster:
        peer = cluster.add("peer", minimal_user_data(key.public, user="tester"), vpc_ip=f"{PEER_IP}/16",
                           ssh_user="tester", ssh_key=key.path, public_keys=[key.public])
        cluster.start()
        peer.wait_for_ssh(args.timeout)
        peer.wait_for_cloud_init(args.timeout)
        pssh = _ssh(peer, Path(tmp) / "cm-peer")
        pssh(f"sudo ip addr add {OUTSIDE_IP}/16 dev eth1", timeout=60)
        peer.ssh("cat > /tmp/probe.py", input=probe, timeout=60)
        ports = f"22 {INTERNAL_PORT} {UNDECLARED_PORT}"
        pssh(f"nohup python3 /tmp/probe.py {TARGET_IP} {PEER_IP} {OUTSIDE_IP} {ports} > /tmp/probe.jsonl 2>/tmp/probe.err &",
             timeout=60)
        probe_start = time.monotonic()
        time.sleep(3)
        first = pssh("head -1 /tmp/probe.jsonl").stdout.strip()
        target = cluster.add("target", with_listeners(hardened_user_data(key.public, baked=baked)),
                             vpc_ip=f"{TARGET_IP}/16", ssh_user="ops", ssh_key=key.path, public_keys=[key.public],
                             image=baked_image() if baked else image)
        started = time.monotonic()
        target.wait_for_ssh(args.timeout)
        status = target.wait_for_cloud_init(args.timeout)
        time.sleep(20)  # a margin after the hand-over
        rows = [json.loads(line) for line in pssh("cat /tmp/probe.jsonl").stdout.splitlines() if line.startswith("{")]
        tssh = _ssh(target, Path(tmp) / "cm-target")
        log = tssh("sudo cat /var/lib/hardened-do/boot-filter.log; cat /proc/uptime; date +%s.%N").stdout
    offset = started - probe_start  # probe second at which the target's qemu started
    must_not = [f"vpc:{UNDECLARED_PORT}", f"outside:{UNDECLARED_PORT}", f"outside:{INTERNAL_PORT}", "outside:22", "ssh_password"]
    result = {"status": status.status, "first_probe": first, "boot_filter_log": log, "seconds": len(rows)}
    for name in must_not:
        result[name] = sorted({round(r["t"] - offset) for r in rows if r.get(name) and r["t"] >= offset})
    # Controls: what must answer once the host is up, so the probes are known to work.
    for name in (f"vpc:{INTERNAL_PORT}", "vpc:22"):
        hits = [round(r["t"] - offset) for r in rows if r.get(name) and r["t"] >= offset]
        result[f"first answer {name}"] = hits[0] if hits else None
    print(f"# window: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-lynis", action="store_true")
    parser.add_argument("--lynis", default="hardened", help="comma-separated guests to audit (stock,hardened,baked)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--only", choices=("stock", "hardened", "baked", "window"), help="run just one phase")
    parser.add_argument("--skip-baked", action="store_true", help="no guest from the baked image")
    parser.add_argument("--skip-window", action="store_true", help="no exposure-window phase")
    parser.add_argument("--window-baked", action="store_true",
                        help="probe a target booted from the baked image (the hand-over comes sooner)")
    parser.add_argument("--no-upgrade", action="store_true",
                        help="audit without installing pending security updates first (Lynis PKGS-7392 then costs points)")
    args = parser.parse_args()
    image = build_image()
    rows, window = [], None
    with tempfile.TemporaryDirectory(prefix="hd-bench-") as tmp:
        key = make_ssh_key(tmp)
        if args.only in (None, "stock"):
            rows.append(phase_boot("stock", image, minimal_user_data(key.public, user="tester"), "tester", key, args, tmp))
        if args.only in (None, "hardened"):
            rows.append(phase_boot("hardened", image, hardened_user_data(key.public), "ops", key, args, tmp))
        if args.only == "baked" or (args.only is None and not args.skip_baked):
            rows.append(phase_boot("baked", baked_image(), hardened_user_data(key.public, baked=True), "ops", key, args, tmp))
        if args.only == "window" or (args.only is None and not args.skip_window):
            window = phase_window(image, key, args, tmp, baked=args.window_baked)

    fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else "-"  # noqa: E731
    if rows:
        print(f"{'guest':<10}{'ssh answers s':>15}{'cloud-init done s':>19}{'guest uptime s':>16}{'status':>9}{'Lynis index':>13}")
        for r in rows:
            print(f"{r['guest']:<10}{fmt(r['ssh']):>15}{fmt(r['cloud_init']):>19}{fmt(r['uptime']):>16}{r['status']:>9}{r.get('lynis', '-'):>13}")
        by = {r["guest"]: r for r in rows}
        if "stock" in by and by["stock"]["cloud_init"]:
            for label in ("hardened", "baked"):
                if label in by and by[label]["cloud_init"]:
                    print(f"{label} / stock (cloud-init done): {by[label]['cloud_init'] / by['stock']['cloud_init']:.2f}x (goal 1.5x)")
        for r in rows:
            print(f"\n{r['guest']}: cloud-init analyze blame (top)")
            for line in r["blame"]:
                print(f"  {line}")
            print(f"{r['guest']}: listeners and socket units up before cloud-init.service")
            for line in r["early_listeners"] or ["  (none)"]:
                print(f"  {line}")
            if r.get("suggestions"):
                print(f"{r['guest']}: Lynis suggestions left ({len(r['suggestions'])})")
                for test, text in r["suggestions"]:
                    why = LEFT.get(test.split()[-1], "not addressed")
                    print(f"  {test}: {text}\n      left because: {why}")
    if window:
        print("\nexposure window (seconds from the target's qemu start during which it answered)")
        for name in (f"vpc:{UNDECLARED_PORT}", f"outside:{UNDECLARED_PORT}", f"outside:{INTERNAL_PORT}", "outside:22", "ssh_password"):
            secs = window[name]
            print(f"  {name:<22} {len(secs):>4} s  {secs[:10]}{' ...' if len(secs) > 10 else ''}")
        print(f"  control: internal port from the VPC first answered at {window[f'first answer vpc:{INTERNAL_PORT}']} s, "
              f"SSH from the VPC at {window['first answer vpc:22']} s; target cloud-init {window['status']}")
        print(f"  boot filter log / uptime / clock on the target:\n    " + window["boot_filter_log"].strip().replace("\n", "\n    "))
    print("\nTCG emulation on a 2-core machine shared with other guests; seconds from qemu start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
