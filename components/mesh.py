"""WireGuard mesh over the private network, on any SSH-reachable hosts.

Per host, two remote commands:

* `<name>-key-<host>` generates the host's key on the host (once; an
  existing key is kept) and prints only the public key, which Pulumi reads
  back from stdout. The private key never enters state or user_data.
* `<name>-peers-<host>` installs the host's config (every other host as a
  peer, reached over its VPC address) and applies it with `wg syncconf`, so
  existing tunnels stay up. Its stdin is the config: when a host joins or
  leaves, every other host's config changes and so does that command, and
  nothing else (no droplet is replaced; user_data never mentions peers).

Addresses come from components/overlay.py: a function of each host alone
(or its pin), so membership changes never renumber anyone.
"""

from __future__ import annotations

from typing import NotRequired, Sequence, TypedDict

import pulumi
from pulumi_command import remote

from . import overlay
from .remote import PASS_PREVIOUS_OUTPUT, HostConnection, check_hosts, connection_args, hostagent


class AdminPeerArgs(TypedDict):
    name: str
    """Who this is (a DNS label), e.g. 'alice-laptop'."""
    public_key: str
    """Their WireGuard public key; the private half stays on their machine."""


class WireGuardMeshArgs(TypedDict):
    hosts: list[HostConnection]
    """Mesh members; each needs `private_ip` (its VPC address, the peer endpoint)."""
    overlay_cidr: str
    """Overlay range the tunnel addresses come from, e.g. 10.200.0.0/24."""
    listen_port: NotRequired[int]
    """UDP port on every host (default 51820); the firewalls open it to the VPC only."""
    persistent_keepalive: NotRequired[int]
    """Seconds between keepalives (default 25; 0 turns them off)."""
    interface: NotRequired[str]
    """Interface name (default wg0)."""
    overlay_pins: NotRequired[dict[str, str]]
    """Fixed overlay addresses by host (or `admin:<name>`) name; see
    components/overlay.py for when a pin is needed."""
    admin_peers: NotRequired[list[AdminPeerArgs]]
    """Admins' own machines, connected through `admin_gateway`."""
    admin_gateway: NotRequired[str]
    """Name of the mesh host admin peers connect to (the bastion). Its cloud
    and host firewalls must admit the WireGuard port from the admins."""
    admin_endpoint: NotRequired[pulumi.Input[str]]
    """Address the admins' machines reach the gateway at (its public IP)."""
    overlay_rules: NotRequired[dict[str, list["OverlayRuleArgs"]]]
    """Services a host admits over the tunnel from named mesh hosts only, by
    host name. The host firewall (UFW) gets one rule per source address on
    the tunnel interface, kept in step with the membership on every deploy.
    Hosts must not also admit these ports from the whole overlay range."""


class OverlayRuleArgs(TypedDict):
    port: int
    """Port of the service."""
    protocol: str
    """`tcp` or `udp`."""
    sources: list[str]
    """Names of the mesh hosts that may connect (others and admin peers may not)."""


class WireGuardMesh(pulumi.ComponentResource):
    """A full WireGuard mesh: one /32 per host, peers over the private network."""

    overlay_ips: dict[str, str]
    """Overlay address by host name (and `admin:<name>`); known at preview."""
    public_keys: pulumi.Output[dict]
    """WireGuard public key by host name, as read back from the hosts."""
    admin_configs: pulumi.Output[dict]
    """Client config by admin name (secret)."""

    def __init__(self, name: str, args: WireGuardMeshArgs, opts: pulumi.ResourceOptions | None = None):
        hosts = list(args["hosts"])
        check_hosts(hosts, component="WireGuardMesh")
        missing = [h["name"] for h in hosts if h.get("private_ip") is None]
        if missing:
            raise overlay.OverlayError(
                f"WireGuardMesh: hosts without private_ip (the peer endpoint): {', '.join(missing)}"
            )
        cidr = args["overlay_cidr"]
        port = args.get("listen_port", overlay.DEFAULT_PORT)
        keepalive = args.get("persistent_keepalive", overlay.DEFAULT_KEEPALIVE)
        keepalive = 0 if keepalive is None else keepalive
        iface = args.get("interface", overlay.DEFAULT_INTERFACE)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise overlay.OverlayError("WireGuardMesh: listen_port must be a UDP port, 1-65535")
        if isinstance(keepalive, bool) or not isinstance(keepalive, int) or not 0 <= keepalive <= 65535:
            raise overlay.OverlayError("WireGuardMesh: persistent_keepalive must be 0 (off) to 65535 seconds")
        admins = list(args.get("admin_peers") or [])
        gateway = args.get("admin_gateway")
        self._check_admins(admins, gateway, args.get("admin_endpoint"), [h["name"] for h in hosts])

        # Planned before any resource exists: a collision or bad pin fails the
        # preview with nothing created.
        keys = [h["name"] for h in hosts] + [overlay.ADMIN_PREFIX + a["name"] for a in admins]
        addresses = overlay.allocate(cidr, keys, args.get("overlay_pins"))
        overlay_ips = {k: str(v) for k, v in addresses.items()}
        rules_arg = overlay_rule_args(args.get("overlay_rules") or {}, overlay_ips, [h["name"] for h in hosts])
        admin_members = [
            overlay.AdminPeer(
                a["name"],
                overlay_ips[overlay.ADMIN_PREFIX + a["name"]],
                overlay.check_public_key(a["public_key"], who=f"admin peer {a['name']}"),
            )
            for a in admins
        ]

        super().__init__("hardened-do:index:WireGuardMesh", name, None, opts)
        self.overlay_ips = overlay_ips
        child = pulumi.ResourceOptions(parent=self)
        self.key_commands = {
            h["name"]: remote.Command(
                f"{name}-key-{h['name']}",
                add_previous_output_in_env=PASS_PREVIOUS_OUTPUT,
                connection=connection_args(h),
                create=hostagent.remote_command("wg-keygen.sh", iface, user=h["user"]),
                opts=child,
            )
            for h in hosts
        }
        pubkeys = {host: cmd.stdout.apply(lambda out, host=host: _public_key(out, host))
                   for host, cmd in self.key_commands.items()}
        members = pulumi.Output.all(
            *[
                pulumi.Output.all(h["name"], self.overlay_ips[h["name"]], h["private_ip"], pubkeys[h["name"]])
                for h in hosts
            ]
        ).apply(lambda rows: None if any(r[3] is None for r in rows) else [overlay.Member(*r) for r in rows])

        self.peer_commands = {}
        for h in hosts:
            config = members.apply(
                lambda ms, me=h["name"]: None if ms is None else overlay.render_host_config(
                    me, ms, overlay_cidr=cidr, port=port, keepalive=keepalive,
                    interface=iface, admins=admin_members, gateway=gateway,
                )
            )
            self.peer_commands[h["name"]] = remote.Command(
                f"{name}-peers-{h['name']}",
                add_previous_output_in_env=PASS_PREVIOUS_OUTPUT,
                connection=connection_args(h),
                create=hostagent.remote_command(
                    "wg-apply.sh", iface, "1" if h["name"] == gateway and admins else "0",
                    # Absent and empty mean the same: no overlay-only rules.
                    *([rules_arg[h["name"]]] if rules_arg.get(h["name"]) else []), user=h["user"],
                ),
                stdin=config,
                # The config needs the host's own key file, which the key
                # command creates; the peers' keys are data dependencies.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.key_commands[h["name"]]]),
            )

        self.public_keys = pulumi.Output.all(**pubkeys) if pubkeys else pulumi.Output.from_input({})
        self.admin_configs = self._admin_configs(
            admin_members, members, gateway, args.get("admin_endpoint"), cidr, port, keepalive
        )
        self.register_outputs(
            {"overlay_ips": self.overlay_ips, "public_keys": self.public_keys, "admin_configs": self.admin_configs}
        )

    @staticmethod
    def _check_admins(admins: list[AdminPeerArgs], gateway: str | None, endpoint, host_names: Sequence[str]) -> None:
        if not admins:
            return
        names = [a.get("name") for a in admins]
        for n in names:
            overlay.check_host_name(n)
        if len(set(names)) != len(names):
            raise overlay.OverlayError("WireGuardMesh: admin peer names must be unique")
        if gateway not in host_names:
            raise overlay.OverlayError(
                "WireGuardMesh: admin_peers need admin_gateway, the name of a mesh host (the bastion) "
                f"they connect through; hosts are: {', '.join(host_names)}"
            )
        if endpoint is None:
            raise overlay.OverlayError("WireGuardMesh: admin_peers need admin_endpoint, the gateway's public address")

    @staticmethod
    def _admin_configs(admins, members, gateway, endpoint, cidr, port, keepalive) -> pulumi.Output[dict]:
        if not admins:
            return pulumi.Output.secret({})

        def render(values):
            ms, ep = values
            if ms is None:
                return {}
            gw = next(m for m in ms if m.name == gateway)
            return {
                a.name: overlay.render_admin_config(
                    a, gw, gateway_endpoint=ep, overlay_cidr=cidr, port=port, keepalive=keepalive
                )
                for a in admins
            }

        # Nothing in it is a key, but it maps the private network: who may
        # see it is the stack's secret-holders, not everyone with state access.
        return pulumi.Output.secret(pulumi.Output.all(members, endpoint).apply(render))


def overlay_rule_args(rules: dict, overlay_ips: dict[str, str], host_names: Sequence[str]) -> dict[str, str]:
    """wg-apply's RULES argument by host: `overlay_rules` with names resolved to overlay addresses."""
    out = {}
    for host, host_rules in rules.items():
        if host not in host_names:
            raise overlay.OverlayError(f"WireGuardMesh: overlay_rules for unknown host {str(host)[:40]!r}")
        resolved = []
        for rule in host_rules:
            unknown = [s for s in rule["sources"] if s not in host_names]
            if unknown:
                raise overlay.OverlayError(
                    f"WireGuardMesh: overlay_rules of {host}: unknown source hosts {', '.join(unknown)}"
                )
            resolved.append((rule["protocol"], rule["port"], [overlay_ips[s] for s in rule["sources"]]))
        out[host] = overlay.render_overlay_rules(resolved)
    return out


def _public_key(stdout: str | None, host: str) -> str | None:
    # None only where no command ran (a mock engine without command
    # outputs); a real run always yields a string, and anything but one
    # public key in it fails the update here.
    if stdout is None:
        return None
    return overlay.check_public_key(stdout, who=f"host {host}")
