"""WireGuard mesh planning (pure functions, no Pulumi): addresses and configs.

Overlay addresses
-----------------
A host's overlay address is a function of that host alone: its pin if it has
one, otherwise a slot chosen by hashing its name. Nothing about *other* hosts
enters the calculation, so adding or removing hosts can never renumber the
rest; that is the property the mesh needs (every peer's AllowedIPs and every
certificate SAN names these addresses).

The price is that two names can hash to the same slot. No rule that looks
only at the current host list can resolve that without moving someone the
day a host is removed or added (whichever host "wins" a collision depends
on who else is present), so a collision is an error, raised before anything
is created, that names both hosts and a free address to pin the newcomer to.
With the default /24 overlay that happens to ~4% of 5-host and ~16% of
10-host stacks; larger fleets should use a larger overlay (a /16 makes it
~0.1% at 10 hosts) or pin addresses.

Configs
-------
Each host's config lists every other member as a `[Peer]` with
`AllowedIPs = <overlay ip>/32` and `Endpoint = <VPC address>:<port>`. The
private key is not in it: `PostUp` loads it from the host's own key file,
so the config (which travels through Pulumi) holds only public material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .names import DNS_LABEL_HINT, is_dns_label

DEFAULT_INTERFACE = "wg0"
DEFAULT_PORT = 51820
DEFAULT_KEEPALIVE = 25
ADMIN_PREFIX = "admin:"
PRIVATE_KEY_PLACEHOLDER = "<your key>"

_IFACE = re.compile(r"[a-zA-Z0-9_=+.-]{1,15}")
_HASH_SEED = b"hardened-do overlay v1\0"


class OverlayError(ValueError):
    """The mesh cannot be planned as given; the message says how to fix it."""


def check_host_name(name: object) -> str:
    if not is_dns_label(name):
        raise OverlayError(f"host name {str(name)[:70]!r} is not a DNS label ({DNS_LABEL_HINT}), e.g. 'web-1'")
    return name


def overlay_network(cidr: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        raise OverlayError(f"overlay_cidr {cidr[:60]!r} is not a CIDR with the host bits zero, e.g. 10.200.0.0/24") from None
    if net.version != 4 or net.prefixlen > 30:
        raise OverlayError(f"overlay_cidr {cidr} must be an IPv4 range of /30 or larger")
    return net


def _usable(net: ipaddress.IPv4Network) -> int:
    # Skips the network and the broadcast address.
    return net.num_addresses - 2


def preferred_address(net: ipaddress.IPv4Network, key: str) -> ipaddress.IPv4Address:
    """The slot `key` hashes to: never the network or broadcast address."""
    digest = hashlib.sha256(_HASH_SEED + key.encode()).digest()
    return net.network_address + 1 + int.from_bytes(digest[:8], "big") % _usable(net)


def _probe(net: ipaddress.IPv4Network, key: str) -> Iterable[ipaddress.IPv4Address]:
    start = int(preferred_address(net, key)) - int(net.network_address) - 1
    n = _usable(net)
    for i in range(n):
        yield net.network_address + 1 + (start + i) % n


def allocate(
    overlay_cidr: str,
    keys: Sequence[str],
    pins: Mapping[str, str] | None = None,
) -> dict[str, ipaddress.IPv4Address]:
    """Overlay address of each key (host name, or `admin:<name>` for admin peers).

    Raises OverlayError on a bad pin or a collision; the message names a
    free address for a pin.
    """
    net = overlay_network(overlay_cidr)
    pins = dict(pins or {})
    unknown = sorted(set(pins) - set(keys))
    if unknown:
        raise OverlayError(f"overlay address pins for unknown hosts: {', '.join(unknown)}")
    if len(set(keys)) != len(keys):
        raise OverlayError("overlay members must have unique names")
    if len(keys) > _usable(net):
        raise OverlayError(f"overlay_cidr {net} has {_usable(net)} addresses for {len(keys)} members; use a larger range")

    out: dict[str, ipaddress.IPv4Address] = {}
    for key in keys:
        if key in pins:
            try:
                addr = ipaddress.IPv4Address(pins[key])
            except ValueError:
                raise OverlayError(f"overlay address pin of {key}: {str(pins[key])[:40]!r} is not an IPv4 address") from None
            if addr not in net or addr in (net.network_address, net.broadcast_address):
                raise OverlayError(
                    f"overlay address pin of {key}: {addr} is not a host address of {net} "
                    "(the network and broadcast addresses are not usable)"
                )
            out[key] = addr
        else:
            out[key] = preferred_address(net, key)

    by_addr: dict[ipaddress.IPv4Address, list[str]] = {}
    for key in keys:
        by_addr.setdefault(out[key], []).append(key)
    clashes = {a: ks for a, ks in by_addr.items() if len(ks) > 1}
    if clashes:
        taken = set(out.values())
        problems = []
        for addr, ks in sorted(clashes.items()):
            movable = [k for k in ks if k not in pins]
            if not movable:
                problems.append(f"{' and '.join(ks)} are both pinned to {addr}")
                continue
            newcomer = sorted(movable)[-1]
            free = next(a for a in _probe(net, newcomer) if a not in taken)
            taken.add(free)
            problems.append(
                f"{' and '.join(ks)} both map to {addr}; pin the one that is new to a free "
                f"address, e.g. {newcomer}: {free} (pinned hosts never move)"
            )
        raise OverlayError("overlay address collision: " + "; ".join(problems))
    return out


# ------------------------------------------------------------------ keys


def check_public_key(text: str, *, who: str) -> str:
    """A WireGuard public key (base64 of 32 bytes), stripped, or OverlayError."""
    key = (text or "").strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32 or len(key) != 44:
        # The text is not echoed: it was supposed to be a public key, but a
        # misbehaving script could have printed anything.
        raise OverlayError(f"{who}: expected one WireGuard public key (44 base64 characters), got {len(key)} characters")
    return key


# ------------------------------------------------------------------ configs


@dataclass(frozen=True)
class Member:
    """A host of the mesh, as the config renderer needs it."""

    name: str
    overlay_ip: str
    private_ip: str
    public_key: str


@dataclass(frozen=True)
class AdminPeer:
    name: str
    overlay_ip: str
    public_key: str


def _peer_block(comment: str, public_key: str, allowed: Sequence[str], endpoint: str | None, keepalive: int | None) -> str:
    lines = [f"[Peer]", f"# {comment}", f"PublicKey = {public_key}", f"AllowedIPs = {', '.join(allowed)}"]
    if endpoint:
        lines.append(f"Endpoint = {endpoint}")
    if keepalive:
        lines.append(f"PersistentKeepalive = {keepalive}")
    return "\n".join(lines) + "\n"


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def render_host_config(
    me: str,
    members: Sequence[Member],
    *,
    overlay_cidr: str,
    port: int = DEFAULT_PORT,
    keepalive: int | None = DEFAULT_KEEPALIVE,
    interface: str = DEFAULT_INTERFACE,
    admins: Sequence[AdminPeer] = (),
    gateway: str | None = None,
) -> str:
    """/etc/wireguard/<interface>.conf of host `me` (no private key in it)."""
    net = overlay_network(overlay_cidr)
    if not _IFACE.fullmatch(interface):
        raise OverlayError(f"interface name {interface[:20]!r} is not a valid Linux interface name")
    by_name = {m.name: m for m in members}
    if me not in by_name:
        raise OverlayError(f"{me} is not a member of the mesh")
    if admins and gateway not in by_name:
        raise OverlayError("admin peers need a gateway: the name of a mesh host they connect to")
    self_ = by_name[me]
    admin_ips = [f"{a.overlay_ip}/32" for a in admins]

    lines = [
        "# Managed by hardened-do (WireGuardMesh); rewritten on every deploy.",
        "[Interface]",
        f"Address = {self_.overlay_ip}/{net.prefixlen}",
        f"ListenPort = {port}",
        # The private key never leaves the host: loaded from its file, so this
        # config (which passes through Pulumi) holds public material only.
        f"PostUp = wg set %i private-key /etc/wireguard/%i.key",
    ]
    if me == gateway and admins:
        # Admin peers reach the other hosts through this one; forwarding is
        # enabled on the tunnel interface only.
        lines.append("PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1")
    blocks = ["\n".join(lines) + "\n"]
    for m in sorted(members, key=lambda m: m.name):
        if m.name == me:
            continue
        allowed = [f"{m.overlay_ip}/32"]
        if m.name == gateway:
            allowed += admin_ips
        blocks.append(_peer_block(m.name, m.public_key, allowed, _endpoint(m.private_ip, port), keepalive))
    if me == gateway:
        for a in sorted(admins, key=lambda a: a.name):
            # No endpoint: the admin's machine dials in from wherever it is.
            blocks.append(_peer_block(f"admin {a.name}", a.public_key, [f"{a.overlay_ip}/32"], None, None))
    return "\n".join(blocks)


def render_admin_config(
    admin: AdminPeer,
    gateway: Member,
    *,
    gateway_endpoint: str,
    overlay_cidr: str,
    port: int = DEFAULT_PORT,
    keepalive: int | None = DEFAULT_KEEPALIVE,
) -> str:
    """The client config for an admin's own machine (its private key is theirs)."""
    net = overlay_network(overlay_cidr)
    head = "\n".join(
        [
            f"# hardened-do mesh: client config for admin {admin.name}.",
            "# Replace the placeholder with your private key (`wg genkey`); its",
            "# public half is the one given to the stack.",
            "[Interface]",
            f"PrivateKey = {PRIVATE_KEY_PLACEHOLDER}",
            f"Address = {admin.overlay_ip}/32",
        ]
    ) + "\n"
    peer = _peer_block(
        f"gateway {gateway.name}", gateway.public_key, [str(net)], _endpoint(gateway_endpoint, port), keepalive
    )
    return head + "\n" + peer


def parse_config(text: str) -> tuple[dict[str, list[str]], list[dict[str, list[str]]]]:
    """(interface section, peer sections) of a wg-quick config; for tests and checks."""
    interface: dict[str, list[str]] = {}
    peers: list[dict[str, list[str]]] = []
    current = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line == "[Interface]":
            current = interface
        elif line == "[Peer]":
            current = {}
            peers.append(current)
        else:
            if current is None:
                raise OverlayError(f"config line outside a section: {line[:60]!r}")
            k, _, v = line.partition("=")
            current.setdefault(k.strip(), []).append(v.strip())
    return interface, peers


# ------------------------------------------------------------------ services over the overlay


def render_overlay_rules(rules: Sequence[tuple[str, int, Sequence[str]]]) -> str:
    """The rules argument of wg-apply: `proto/port/ip,ip ...`, sorted.

    Each rule admits one service (`internal` exposure) on the tunnel
    interface from the listed overlay addresses only: the overlay is inside
    WireGuard, where the cloud firewall cannot see who connects. A service
    with no source host yet is listed with `-` (admitted from nobody).
    """
    parts = []
    for proto, port, sources in rules:
        if proto not in ("tcp", "udp"):
            raise OverlayError(f"overlay rule: protocol must be tcp or udp, not {str(proto)[:8]!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise OverlayError("overlay rule: port must be 1-65535")
        ips = sorted({str(ipaddress.IPv4Address(s)) for s in sources}, key=ipaddress.IPv4Address)
        parts.append(f"{proto}/{port}/{','.join(ips) or '-'}")
    return " ".join(sorted(parts))
