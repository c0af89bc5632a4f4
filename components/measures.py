"""The deploy-time measures on the stack's own droplets: how the program
reaches them over SSH and what it asks the mesh, the CA and the audit to do.

The SSH-generic components (mesh.py, pki.py, audit.py) take a list of
`HostConnection`; this module derives that list from the stack model and the
droplets, and the components' arguments from the stack's config keys, so
`__main__.py` stays wiring only.

How the deploy reaches each droplet:

* the bastion on its public address;
* every other host on its private (VPC) address, through the bastion as
  the SSH `proxy` (only the bastion accepts SSH from the admin networks);
* without a bastion, every host on its public address;
* always as `admin_user`, with the key from the deployer's SSH agent (no
  key material in state).

The addresses are droplet outputs, so every remote command depends on its
droplet (and on the bastion's) and runs only once they exist. `pulumi
preview` opens no SSH connection: commands run only on `up`.
"""

from __future__ import annotations

from typing import Mapping, TypedDict

import pulumi

from .audit import ServiceAuditArgs
from .config import StackConfig
from .mesh import AdminPeerArgs, OverlayRuleArgs, WireGuardMeshArgs
from .pki import InternalPkiArgs
from pulumi_command import remote

from .services import overlay_internal_rules
from .stack import overlay_pins
from .remote import PASS_PREVIOUS_OUTPUT, HostConnection, connection_args, hostagent


def host_connections(stack: StackConfig, hosts: Mapping[str, object]) -> dict[str, HostConnection]:
    """Host name -> how the deploy reaches it (see the module docstring).

    `hosts` maps host names to objects with `public_ip` and `private_ip`
    outputs (HardenedHost).
    """
    bastion = stack.bastion_host
    jump: HostConnection | None = None
    if bastion is not None:
        jump = {
            "name": bastion.name,
            "host": hosts[bastion.name].public_ip,
            "user": stack.admin_user,
            "private_ip": hosts[bastion.name].private_ip,
            "role": bastion.role,
        }
    conns: dict[str, HostConnection] = {}
    for host in stack.hosts:
        if jump is not None and host.name == jump["name"]:
            conns[host.name] = jump
            continue
        droplet = hosts[host.name]
        conn: HostConnection = {
            "name": host.name,
            "host": droplet.private_ip if jump is not None else droplet.public_ip,
            "user": stack.admin_user,
            "private_ip": droplet.private_ip,
            "role": host.role,
        }
        if jump is not None:
            conn["proxy"] = jump
        conns[host.name] = conn
    return conns


def mesh_args(stack: StackConfig, conns: Mapping[str, HostConnection]) -> WireGuardMeshArgs:
    args: WireGuardMeshArgs = {
        "hosts": list(conns.values()),
        "overlay_cidr": stack.overlay_cidr,
        "listen_port": stack.wireguard_port,
    }
    args["overlay_rules"] = overlay_rules(stack, list(conns))
    pins = overlay_pins(stack)
    if pins:
        args["overlay_pins"] = pins
    bastion = stack.bastion_host
    if stack.mesh_admin_peers and bastion is not None:
        admins: list[AdminPeerArgs] = [{"name": p.name, "public_key": p.public_key} for p in stack.mesh_admin_peers]
        args["admin_peers"] = admins
        args["admin_gateway"] = bastion.name
        args["admin_endpoint"] = conns[bastion.name]["host"]
    return args


def overlay_rules(stack: StackConfig, names: list[str]) -> dict[str, list[OverlayRuleArgs]]:
    """Per host, its `internal` services and the hosts of their source roles:
    what it admits over the overlay (the mesh's `overlay_rules`)."""
    rules: dict[str, list[OverlayRuleArgs]] = {}
    for host in stack.hosts:
        if host.name not in names:
            continue
        host_rules: list[OverlayRuleArgs] = [
            {"protocol": proto, "port": port,
             "sources": [h.name for h in stack.hosts if h.role in source_roles and h.name in names]}
            for proto, port, source_roles in overlay_internal_rules(stack, host.role)
        ]
        if host_rules:
            rules[host.name] = host_rules
    return rules


def pki_args(
    stack: StackConfig, conns: Mapping[str, HostConnection], overlay_ips: Mapping[str, str] | None
) -> InternalPkiArgs:
    args: InternalPkiArgs = {
        "hosts": list(conns.values()),
        "intermediate": stack.pki_intermediate,
        "validity_hours": stack.pki_validity_hours,
        "early_renewal_hours": stack.pki_early_renewal_hours,
        "ca_validity_hours": stack.pki_ca_validity_hours,
        "ca_early_renewal_hours": stack.pki_ca_early_renewal_hours,
        "common_name": f"{stack.name_prefix} internal CA",
    }
    if stack.pki_domain:
        args["domain"] = stack.pki_domain
    if overlay_ips:
        args["overlay_ips"] = {name: ip for name, ip in overlay_ips.items() if name in conns}
    return args


def audit_args(stack: StackConfig, conns: Mapping[str, HostConnection]) -> ServiceAuditArgs:
    # Droplets built by this program carry their declaration
    # (/etc/hardened-do/services.json, written by cloud-init).
    return {"hosts": list(conns.values()), "mode": stack.audit_mode}


class BastionExemptionArgs(TypedDict):
    hosts: list[HostConnection]
    """Hosts reached through the bastion."""
    bastion_address: pulumi.Input[str]
    """The bastion's VPC address: where every SSH session to them comes from."""


class BastionExemption(pulumi.ComponentResource):
    """Tells fail2ban on each host behind the bastion never to ban it.

    Pushed after boot because the bastion's address is not known when the
    hosts boot (and must not be in their user-data: a new bastion would
    replace every host). Runs first, so the other measures' burst of SSH
    sessions cannot lock the deploy out.
    """

    def __init__(self, name: str, args: BastionExemptionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hardened-do:index:BastionExemption", name, None, opts)
        self.commands = {
            h["name"]: remote.Command(
                f"{name}-{h['name']}",
                add_previous_output_in_env=PASS_PREVIOUS_OUTPUT,
                connection=connection_args(h),
                create=pulumi.Output.from_input(args["bastion_address"]).apply(
                    lambda address, user=h["user"]: hostagent.remote_command("fail2ban-ignore.sh", address, user=user)
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for h in args["hosts"]
        }
        self.register_outputs({})


def bastion_exemption(stack: StackConfig, conns: Mapping[str, HostConnection]) -> BastionExemption | None:
    """The exemption for the stack's hosts behind its bastion (None without one)."""
    bastion = stack.bastion_host
    behind = [c for c in conns.values() if "proxy" in c]
    if bastion is None or not behind:
        return None
    return BastionExemption(
        "fail2ban-ignore-bastion",
        {"hosts": behind, "bastion_address": conns[bastion.name]["private_ip"]},
    )
