"""The hardened droplet."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_digitalocean as do

from ..cloud_init.render import render_user_data
from .config import StackConfig
from .names import do_name


class HardenedHostArgs(TypedDict):
    stack: StackConfig
    """The validated stack model."""
    host_name: str
    """Name of a host in `stack.hosts`."""
    vpc_id: pulumi.Input[str]
    """VPC the droplet joins (its eth1 network)."""
    tag_name: pulumi.Input[str]
    """Role tag; its cloud firewall must already exist (see `firewall`)."""
    firewall: pulumi.Resource
    """The role's firewall: the droplet is created only after it exists."""
    ssh_key_fingerprints: pulumi.Input[list]
    """DigitalOcean SSH key fingerprints injected at creation."""
    nat_gateway: pulumi.Resource | None
    """For private-only hosts: created first, so the first boot has egress."""


class HardenedHost(pulumi.ComponentResource):
    """A droplet in the VPC, tagged for its role's firewall, hardened by cloud-init."""

    droplet_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    public_ip: pulumi.Output[str | None]
    user_data_bytes: int

    def __init__(self, name: str, args: HardenedHostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hardened-do:index:HardenedHost", name, None, opts)
        stack = args["stack"]
        host = stack.host(args["host_name"])
        role = stack.roles[host.role]

        # Rendered from config alone: known at preview, identical between runs,
        # and independent of other hosts (changing it replaces the droplet).
        user_data = render_user_data(stack, host.name)
        self.user_data_bytes = len(user_data.encode())

        depends_on = [args["firewall"]]
        if not role.public_networking and args.get("nat_gateway") is not None:
            depends_on.append(args["nat_gateway"])

        self.droplet = do.Droplet(
            f"{name}-droplet",
            name=do_name(host.name, limit=63),
            region=stack.region,
            image=stack.image_for(host),
            size=stack.size_for(host),
            vpc_uuid=args["vpc_id"],
            tags=[args["tag_name"]],
            ssh_keys=args["ssh_key_fingerprints"],
            user_data=user_data,
            monitoring=stack.monitoring,
            ipv6=stack.ipv6 and role.public_networking,
            public_networking=role.public_networking,
            droplet_agent=stack.droplet_agent,
            graceful_shutdown=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        self.droplet_id = self.droplet.id
        self.private_ip = self.droplet.ipv4_address_private
        self.public_ip = self.droplet.ipv4_address if role.public_networking else pulumi.Output.from_input(None)
        self.register_outputs(
            {"droplet_id": self.droplet_id, "private_ip": self.private_ip, "public_ip": self.public_ip}
        )


def create_hosts(
    stack: StackConfig,
    network,
    ssh_key_fingerprints: pulumi.Input[list],
    *,
    resource_prefix: str = "",
    opts: pulumi.ResourceOptions | None = None,
) -> dict[str, "HardenedHost"]:
    """One HardenedHost per host of the stack, wired to `network` (a Network).

    Resource names are `f"{resource_prefix}{host.name}"`.
    """
    return {
        host.name: HardenedHost(
            f"{resource_prefix}{host.name}",
            {
                "stack": stack,
                "host_name": host.name,
                "vpc_id": network.vpc_id,
                "tag_name": network.tags[host.role].name,
                "firewall": network.firewalls[host.role],
                "ssh_key_fingerprints": ssh_key_fingerprints,
                "nat_gateway": network.nat_gateway,
            },
            opts=opts,
        )
        for host in stack.hosts
    }


def ssh_command(admin_user: str, target_ip: str, jump_ip: str | None = None) -> str:
    """The command an admin runs to reach a host (through the bastion if needed)."""
    if jump_ip:
        return f"ssh -J {admin_user}@{jump_ip} {admin_user}@{target_ip}"
    return f"ssh {admin_user}@{target_ip}"


def ssh_commands(stack: StackConfig, hosts: dict[str, HardenedHost]) -> dict[str, pulumi.Output[str]]:
    """Host name -> the command that logs in as the admin user.

    Hosts other than the bastion are reached on their private address through
    it (`ssh -J`) when the stack has a bastion; otherwise on their public one.
    """
    bastion = stack.bastion_host
    jump_ip = hosts[bastion.name].public_ip if bastion else pulumi.Output.from_input(None)
    commands = {}
    for name, host in hosts.items():
        behind_bastion = bastion is not None and name != bastion.name
        target = host.private_ip if behind_bastion else host.public_ip
        commands[name] = pulumi.Output.all(target, jump_ip).apply(
            lambda v, behind=behind_bastion: ssh_command(stack.admin_user, v[0], v[1] if behind else None)
        )
    return commands

