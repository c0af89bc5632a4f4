#!/usr/bin/env python3
"""What listens where, against what was declared (the service audit).

Runs on the host with the Python 3 standard library only (Debian 12 and
Ubuntu 24.04 ship 3.11 and 3.12), as

    python3 /usr/local/lib/hardened-do/audit.py --services /etc/hardened-do/services.json

It reads the listening sockets (`ss -H -tulpn`) and the host's addresses
(`ip -j addr`), classifies each listener by how far it is exposed, and
compares that with the role's declared services (the same declaration the
cloud firewall and UFW are derived from, written by cloud-init). The report
is JSON on stdout; with --journal each violation is also logged to syslog
(facility auth, priority warning), which is how the hourly timer reports.

Exit status: 0 when no violation reaches --fail-on, 1 when one does, 2 when
the audit itself could not run (unreadable declaration, `ss` missing).

Everything except main() is a pure function of its inputs, so the unit tests
feed it literal `ss` and `ip` outputs captured from real hosts.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import socket
import subprocess
import sys

REPORT_VERSION = 1

# How far a listener is reachable, narrowest first. A wildcard bind reaches
# every interface, so its exposure is that of the widest interface the host
# has: on a private-only droplet "all interfaces" is the VPC, not the internet.
LOOPBACK, OVERLAY, VPC, LINK_LOCAL, PUBLIC = "loopback", "overlay", "vpc", "link-local", "public"
RANK = {LOOPBACK: 0, OVERLAY: 1, VPC: 2, LINK_LOCAL: 2, PUBLIC: 3}

# The widest exposure each declared exposure permits. `internal` services are
# narrowed to source roles by the cloud firewall only; on the host they are
# VPC services like `private` ones.
ALLOWED = {"public": RANK[PUBLIC], "private": RANK[VPC], "internal": RANK[VPC]}

SEVERITIES = ("warning", "critical")

# Sockets that are clients, not services: DHCP clients must bind their
# well-known ports (68, 546) on the interface they configure, and ISC
# dhclient keeps one more UDP socket on a random port. Listing them as
# violations would fail every audit on every droplet.
DHCP_CLIENT_PORTS = {("udp", 68), ("udp", 546)}
DHCP_CLIENT_PROCESSES = {"dhclient", "dhcpcd", "systemd-network", "NetworkManager"}

_USERS_RE = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+)')


class AuditError(Exception):
    """The audit could not run (as opposed to: it ran and found violations)."""


# --------------------------------------------------------------- parsing


def parse_address(local: str) -> tuple[str, str | None, int]:
    """`ss`'s local address column -> (address, interface or None, port).

    Forms seen in real output: `0.0.0.0:22`, `127.0.0.53%lo:53`,
    `0.0.0.0%eth0:8007`, `*:22` (dual-stack wildcard), `*%eth0:80`,
    `[::]:22`, `[::1]:323`, `[fe80::1]%eth0:546`, `[::ffff:127.0.0.1]:80`.
    """
    host, sep, port_text = local.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"no port in local address {local!r}")
    iface = None
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError(f"unbalanced brackets in {local!r}")
        rest = host[end + 1 :]
        host = host[1:end]
        if rest.startswith("%"):
            iface = rest[1:]
        elif rest:
            raise ValueError(f"unexpected text after ']' in {local!r}")
    if "%" in host:
        host, iface = host.split("%", 1)
    if host in ("*", "0.0.0.0", "::"):
        host = "*"
    else:
        addr = ipaddress.ip_address(host)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        host = str(addr)
    return host, iface or None, int(port_text)


def parse_processes(text: str) -> list[dict]:
    """`users:(("sshd",pid=512,fd=3),("sshd",pid=513,fd=3))` -> [{name, pid}].

    Empty when ss shows no process: kernel sockets (WireGuard) and, when not
    run as root, other users' processes.
    """
    out = []
    for name, pid in _USERS_RE.findall(text):
        entry = {"name": name.replace('\\"', '"'), "pid": int(pid)}
        if entry not in out:
            out.append(entry)
    return out


def parse_ss(text: str) -> list[dict]:
    """Listeners from `ss -H -tulpn` (no header; TCP LISTEN and UDP UNCONN)."""
    listeners = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(None, 6)
        if fields[0] in ("Netid", "State"):
            continue  # a header, if someone ran ss without -H
        if len(fields) < 6 or fields[0] not in ("tcp", "udp"):
            raise ValueError(f"line {lineno}: not `ss -tulpn` output: {line[:120]!r}")
        netid, state, _recvq, _sendq, local = fields[:5]
        if netid == "tcp" and state != "LISTEN":
            continue
        address, iface, port = parse_address(local)
        listeners.append(
            {
                "protocol": netid,
                "local": local,
                "address": address,
                "interface": iface,
                "port": port,
                "processes": parse_processes(fields[6] if len(fields) > 6 else ""),
            }
        )
    return listeners


def parse_ip_addr(text: str) -> dict[str, list[str]]:
    """`ip -j addr` -> {interface: [address/prefix, ...]}."""
    out: dict[str, list[str]] = {}
    for link in json.loads(text or "[]"):
        addrs = out.setdefault(link.get("ifname", "?"), [])
        for info in link.get("addr_info", []):
            if "local" in info and "prefixlen" in info:
                addrs.append(f"{info['local']}/{info['prefixlen']}")
    return out


# --------------------------------------------------------------- classifying


def _net(cidr: str | None):
    return ipaddress.ip_network(cidr, strict=False) if cidr else None


def classify_address(address: str, vpc_cidr: str | None, overlay_cidr: str | None) -> str:
    """The exposure of one concrete address the host owns."""
    addr = ipaddress.ip_address(address)
    overlay, vpc = _net(overlay_cidr), _net(vpc_cidr)
    if addr.is_loopback:
        return LOOPBACK
    if overlay is not None and addr.version == overlay.version and addr in overlay:
        return OVERLAY
    if vpc is not None and addr.version == vpc.version and addr in vpc:
        return VPC
    if addr.is_link_local:
        return LINK_LOCAL
    # Anything else (a public address, DigitalOcean's anchor address, a
    # container bridge) cannot be shown to be private from here.
    return PUBLIC


def classify_interface(name: str, interfaces: dict[str, list[str]], vpc_cidr, overlay_cidr) -> str:
    if name == "lo":
        return LOOPBACK
    addrs = [a.split("/")[0] for a in interfaces.get(name, [])]
    if not addrs:
        return PUBLIC  # unknown interface: assume the worst
    classes = [classify_address(a, vpc_cidr, overlay_cidr) for a in addrs]
    # A link-local address says nothing about the segment; the interface's
    # other addresses do.
    concrete = [c for c in classes if c != LINK_LOCAL] or classes
    return max(concrete, key=RANK.__getitem__)


def classify_listener(listener: dict, interfaces: dict[str, list[str]], vpc_cidr, overlay_cidr) -> str:
    address, iface = listener["address"], listener["interface"]
    if address == "*":
        if iface:
            return classify_interface(iface, interfaces, vpc_cidr, overlay_cidr)
        # Interfaces without an address (down, or bridges' slaves) receive
        # nothing for an IP socket; the others bound its reach.
        names = [n for n, addrs in interfaces.items() if n != "lo" and addrs]
        if not names:
            return PUBLIC
        return max(
            (classify_interface(n, interfaces, vpc_cidr, overlay_cidr) for n in names),
            key=RANK.__getitem__,
        )
    exposure = classify_address(address, vpc_cidr, overlay_cidr)
    if exposure == LINK_LOCAL and iface:
        return classify_interface(iface, interfaces, vpc_cidr, overlay_cidr)
    return exposure


def _describe(listener: dict) -> str:
    procs = listener["processes"]
    if not procs:
        return "no process shown (a kernel socket, or not run as root)"
    return ", ".join(f"{p['name']} (pid {p['pid']})" for p in procs)


def _where(listener: dict) -> str:
    if listener["address"] == "*":
        where = "all addresses"
    else:
        where = listener["address"]
    if listener["interface"]:
        where += f" on {listener['interface']}"
    return where


def _is_dhcp_client(listener: dict) -> bool:
    if listener["protocol"] != "udp":
        return False
    if (listener["protocol"], listener["port"]) in DHCP_CLIENT_PORTS:
        return True
    names = {p["name"] for p in listener["processes"]}
    return bool(names) and names <= DHCP_CLIENT_PROCESSES


# --------------------------------------------------------------- the audit


def audit(listeners: list[dict], declared: dict, interfaces: dict[str, list[str]], host: str = "") -> dict:
    """Compare listeners with the declaration; a JSON-ready report.

    `declared` is the services.json document (components/services.py,
    expected_listeners). Violations:

    * undeclared: a listener no service declares. `critical` when reachable
      from outside the VPC (a public address or all interfaces of a host that
      has one), `warning` when VPC- or overlay-wide. Loopback-only listeners
      are not reachable from another machine and are only listed.
    * over-exposed: a declared service bound wider than its exposure allows
      (a `private` database on 0.0.0.0 of a public host), `warning`: the
      firewalls still stop the traffic, but they are then its only defence.
      Baseline services (`managed`, e.g. sshd and the kernel's WireGuard
      socket, which cannot bind an address) are listed as relying on the
      firewall instead.
    """
    vpc_cidr = declared.get("vpc_cidr")
    overlay_cidr = declared.get("overlay_cidr")
    services = {}
    for svc in declared.get("services", []):
        services[(svc["protocol"], int(svc["port"]))] = svc

    rows, violations, seen = [], [], set()
    for listener in listeners:
        exposure = classify_listener(listener, interfaces, vpc_cidr, overlay_cidr)
        svc = services.get((listener["protocol"], listener["port"]))
        row = dict(listener, exposure=exposure, service=svc["name"] if svc else None)
        violation = None
        if svc is not None:
            allowed = ALLOWED.get(svc["exposure"], RANK[VPC])
            if RANK[exposure] <= allowed:
                row["status"] = "declared"
            elif svc.get("managed"):
                row["status"] = "relies-on-firewall"
            else:
                row["status"] = "over-exposed"
                violation = {
                    "kind": "over-exposed",
                    "severity": "warning",
                    "service": svc["name"],
                    "declared_exposure": svc["exposure"],
                }
        elif exposure == LOOPBACK:
            row["status"] = "loopback"
        elif _is_dhcp_client(listener):
            row["status"] = "client"
        else:
            row["status"] = "undeclared"
            violation = {
                "kind": "undeclared",
                "severity": "critical" if exposure == PUBLIC else "warning",
            }
        rows.append(row)
        if violation is None:
            continue
        key = (violation["kind"], listener["protocol"], listener["port"], exposure,
               tuple(p["name"] for p in listener["processes"]))
        if key in seen:
            continue  # the IPv4 and IPv6 sockets of one daemon are one finding
        seen.add(key)
        violation.update(
            protocol=listener["protocol"],
            port=listener["port"],
            address=listener["address"],
            interface=listener["interface"],
            exposure=exposure,
            processes=listener["processes"],
        )
        violation["message"] = _message(host, listener, violation)
        violations.append(violation)

    counts = {s: sum(1 for v in violations if v["severity"] == s) for s in SEVERITIES}
    return {
        "version": REPORT_VERSION,
        "host": host,
        "role": declared.get("role"),
        "ok": not violations,
        "summary": dict(counts, listeners=len(rows)),
        "violations": violations,
        "listeners": rows,
    }


def _message(host: str, listener: dict, violation: dict) -> str:
    prefix = f"{host}: " if host else ""
    what = f"{listener['protocol']} port {listener['port']}"
    where = f"{_where(listener)} ({violation['exposure']})"
    if violation["kind"] == "undeclared":
        return f"{prefix}undeclared {what} listens on {where}; process: {_describe(listener)}"
    return (
        f"{prefix}service {violation['service']!r} ({what}) is declared {violation['declared_exposure']} "
        f"but listens on {where}; process: {_describe(listener)}"
    )


def failing(report: dict, fail_on: str) -> list[dict]:
    """The violations that make the audit fail at threshold `fail_on`."""
    if fail_on == "never":
        return []
    floor = 0 if fail_on == "any" else SEVERITIES.index(fail_on)
    return [v for v in report["violations"] if SEVERITIES.index(v["severity"]) >= floor]


# --------------------------------------------------------------- the CLI


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise AuditError(f"`{argv[0]}` is not installed (package iproute2)") from None
    except subprocess.CalledProcessError as exc:
        raise AuditError(f"`{' '.join(argv)}` failed: {exc.stderr.strip()[:300]}") from None


def _log(report: dict) -> None:
    import syslog

    syslog.openlog("hardened-do-audit", 0, syslog.LOG_AUTH)
    try:
        for v in report["violations"]:
            syslog.syslog(syslog.LOG_WARNING, f"{v['severity']}: {v['message']}")
        s = report["summary"]
        syslog.syslog(
            syslog.LOG_INFO,
            f"{s['listeners']} listeners, {s['critical']} critical, {s['warning']} warning",
        )
    finally:
        syslog.closelog()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", required=True, help="the role's services.json")
    parser.add_argument("--ss-output", help="read `ss -H -tulpn` output from this file ('-' = stdin)")
    parser.add_argument("--ip-output", help="read `ip -j addr` output from this file")
    parser.add_argument("--host-name", default=None, help="name used in messages (default: hostname)")
    parser.add_argument("--journal", action="store_true", help="log violations to syslog, auth.warning")
    parser.add_argument("--quiet", action="store_true", help="print no JSON report")
    parser.add_argument(
        "--fail-on", choices=("any", "critical", "never"), default="any",
        help="exit 1 on any violation (default), on critical ones only, or never",
    )
    args = parser.parse_args(argv)
    try:
        try:
            declared = json.loads(_read(args.services))
        except (OSError, ValueError) as exc:
            raise AuditError(f"cannot read the declaration {args.services}: {exc}") from None
        ss_text = _read(args.ss_output) if args.ss_output else _run(["ss", "-H", "-tulpn"])
        ip_text = _read(args.ip_output) if args.ip_output else _run(["ip", "-j", "addr"])
        report = audit(parse_ss(ss_text), declared, parse_ip_addr(ip_text), args.host_name or socket.gethostname())
    except (AuditError, ValueError) as exc:
        print(f"hardened-do audit: {exc}", file=sys.stderr)
        return 2
    if args.journal:
        _log(report)
    if not args.quiet:
        json.dump(report, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    bad = failing(report, args.fail_on)
    for v in bad:
        print(f"hardened-do audit: {v['severity']}: {v['message']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
