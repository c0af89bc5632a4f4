"""Command line of the VM test bed (scripts/vm runs this).

    scripts/vm image [--force]       build the guest image (cached) and print its directory
    scripts/vm image-info            what the cached image holds
    scripts/vm boot --user-data FILE [--vpc-ip 10.10.0.11/24] [--name NAME]
                    [--key PRIVATE_KEY] [--user USER] [--forward PORT ...]
                                     boot one guest, print how to log in, stay up until Ctrl-C
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import tempfile
import time
from pathlib import Path

from . import image as image_mod
from .vm import Cluster, GuestError, make_ssh_key


def _say(msg: str) -> None:
    print(msg, flush=True)


def _forward_arg(spec: str) -> tuple[str, int]:
    if "/" in spec:
        a, b = spec.split("/", 1)
        port, proto = (a, b) if a.isdigit() else (b, a)
    else:
        port, proto = spec, "tcp"
    if proto not in ("tcp", "udp") or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{spec!r}: use PORT or PORT/udp")
    return proto, int(port)


def cmd_boot(args: argparse.Namespace) -> int:
    user_data = Path(args.user_data).read_text()
    iface = ipaddress.ip_interface(args.vpc_ip)
    keydir = tempfile.TemporaryDirectory(prefix="hardened-do-vm-key-")
    if args.key:
        key_path = Path(args.key).expanduser().resolve()
        pub = Path(f"{key_path}.pub")
        public_keys = [pub.read_text().strip()] if pub.exists() else []
    else:
        # like a droplet created with one SSH key: served as meta-data, and
        # DO's vendor-data lets it log in as root (unless the user-data says no)
        key = make_ssh_key(keydir.name)
        key_path, public_keys = key.path, [key.public]

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    try:
        with Cluster(vpc_cidr=str(iface.network)) as cluster:
            guest = cluster.add(
                args.name, user_data, vpc_ip=str(iface),
                ssh_user=args.user, ssh_key=key_path, public_keys=public_keys,
                forward_ports=args.forward, memory_mb=args.memory,
            )
            cluster.start()
            _say(f"booting {guest.name}: public eth0 {guest.public_mac} (DHCP 10.0.2.15), "
                 f"VPC eth1 {guest.vpc_mac} {guest.vpc_ip}")
            _say(f"console log: {guest.console_path}")
            for (proto, gport) in [("tcp", 22), *args.forward]:
                _say(f"  {proto} 127.0.0.1:{guest.host_port(gport, proto)} -> guest port {gport}")
            try:
                guest.wait_for_ssh(args.timeout, login=False)
                _say(f"sshd answers after {guest.timings['ssh_banner']:.1f} s")
                _say(f"log in with:\n  {guest.login_command()}")
                status = guest.wait_for_cloud_init(args.timeout, poll_every=60)
                _say(f"cloud-init {status.status} after {guest.timings['cloud_init_done']:.1f} s"
                     + (f" ({status.detail.splitlines()[0] if status.detail else ''})" if not status.ok else ""))
            except GuestError as e:
                _say(f"warning: {e}")
            _say("up; Ctrl-C to shut down and remove the guest")
            while guest.running:
                time.sleep(1)
            _say(f"qemu exited after {time.monotonic() - t0:.0f} s")
            return 1
    except KeyboardInterrupt:
        _say("\nshutting down")
        return 0
    finally:
        keydir.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/vm", description="Local Debian 12 guests that boot like droplets.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("image", help="build the guest image if needed; print its directory")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("image-info", help="print the cached image's manifest")
    bt = sub.add_parser("boot", help="boot one guest from a user-data file and stay up until Ctrl-C")
    bt.add_argument("--user-data", required=True, help="cloud-init user-data file (e.g. from `python -m cloud_init render`)")
    bt.add_argument("--name", default="vm1", help="hostname (meta-data local-hostname); default vm1")
    bt.add_argument("--vpc-ip", default="10.10.0.11/24", help="static address on the VPC NIC eth1; default 10.10.0.11/24")
    bt.add_argument("--key", help="private key to log in with; its .pub is also the droplet's SSH key "
                                  "(default: a fresh key, root login as on a new droplet)")
    bt.add_argument("--user", default="root", help="user for the printed ssh command; default root")
    bt.add_argument("--forward", type=_forward_arg, action="append", default=[], metavar="PORT[/udp]",
                    help="also forward this guest port to a free 127.0.0.1 port (repeatable)")
    bt.add_argument("--memory", type=int, default=1024, help="MiB; default 1024")
    bt.add_argument("--timeout", type=float, default=1200, help="seconds to wait for SSH and cloud-init")
    args = ap.parse_args(argv)

    if args.cmd == "image":
        img = image_mod.build_image(force=args.force)
        print(img.directory)
        return 0
    if args.cmd == "image-info":
        return image_mod.main(["info"])
    return cmd_boot(args)


if __name__ == "__main__":
    sys.exit(main())
