"""The network edge: VPC, one tag and one cloud firewall per role, NAT gateway."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_digitalocean as do

from .config import StackConfig
from .names import do_name
from .services import CloudOutboundRule, CloudRule, cloud_inbound_rules, cloud_outbound_rules


class NetworkArgs(TypedDict):
    stack: StackConfig
    """The validated stack model (components.config.parse_stack_config)."""


def _inbound(rule: CloudRule, tags: dict[str, do.Tag], stack: StackConfig) -> do.FirewallInboundRuleArgs:
    by_name = {stack.tag_for(role): tag for role, tag in tags.items()}
    return do.FirewallInboundRuleArgs(
        protocol=rule.protocol,
        port_range=rule.port_range,
        source_addresses=list(rule.source_addresses) or None,
        # Referencing the Tag resources (not just their names) orders each
        # firewall after the tags it names.
        source_tags=[by_name[t].name for t in rule.source_tags] or None,
    )


def _outbound(rule: CloudOutboundRule) -> do.FirewallOutboundRuleArgs:
    return do.FirewallOutboundRuleArgs(
        protocol=rule.protocol,
        port_range=rule.port_range,
        destination_addresses=list(rule.destination_addresses),
    )


class Network(pulumi.ComponentResource):
    """VPC plus deny-by-default cloud firewalls attached by role tag.

    Tags and firewalls depend on nothing but the VPC config, so they exist
    before any droplet: a droplet created with a role tag is covered by its
    firewall from its first second.
    """

    vpc_id: pulumi.Output[str]
    tag_names: pulumi.Output[dict]
    firewall_ids: pulumi.Output[dict]
    nat_gateway_id: pulumi.Output[str | None]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hardened-do:index:Network", name, None, opts)
        stack = args["stack"]
        child = pulumi.ResourceOptions(parent=self)

        self.vpc = do.Vpc(
            f"{name}-vpc",
            name=do_name(stack.name_prefix, stack.region),
            region=stack.region,
            ip_range=stack.vpc_cidr,
            description=f"{stack.name_prefix}: managed by hardened-do",
            opts=child,
        )
        self.tags = {role: do.Tag(f"{name}-tag-{role}", name=stack.tag_for(role), opts=child) for role in stack.roles}
        self.firewalls = {role: self._create_firewall(name, stack, role) for role in stack.roles}
        self.nat_gateway = self._create_nat_gateway(name, stack) if stack.needs_nat_gateway else None

        self.vpc_id = self.vpc.id
        self.tag_names = pulumi.Output.all(**{r: t.name for r, t in self.tags.items()})
        self.firewall_ids = pulumi.Output.all(**{r: f.id for r, f in self.firewalls.items()})
        self.nat_gateway_id = self.nat_gateway.id if self.nat_gateway else pulumi.Output.from_input(None)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "tag_names": self.tag_names,
                "firewall_ids": self.firewall_ids,
                "nat_gateway_id": self.nat_gateway_id,
            }
        )

    def _create_firewall(self, name: str, stack: StackConfig, role: str) -> do.Firewall:
        return do.Firewall(
            f"{name}-fw-{role}",
            name=do_name(stack.name_prefix, role),
            tags=[self.tags[role].name],
            inbound_rules=[_inbound(r, self.tags, stack) for r in cloud_inbound_rules(stack, role)],
            outbound_rules=[_outbound(r) for r in cloud_outbound_rules(stack)],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_nat_gateway(self, name: str, stack: StackConfig) -> do.VpcNatGateway:
        # Private-only droplets have no public address; the NAT gateway becomes
        # the VPC's default route so they can still fetch updates.
        return do.VpcNatGateway(
            f"{name}-nat",
            name=do_name(stack.name_prefix, "nat"),
            type="PUBLIC",
            region=stack.region,
            size=1,
            vpcs=[do.VpcNatGatewayVpcArgs(vpc_uuid=self.vpc.id, default_gateway=True)],
            opts=pulumi.ResourceOptions(parent=self),
        )
