"""One service declaration, many enforcers (pure functions, no Pulumi).

From a role's declared services this module derives:

* the DigitalOcean Cloud Firewall rules (edge),
* the UFW rules (host),
* the listeners the service audit expects.

There is no second list to keep in sync: change a service in the stack config
and all three follow.

The two firewalls differ in what they can see. The cloud firewall knows
droplet tags, so `internal` services are opened to the source roles' tags
only. UFW is written once at boot into user_data, which must not change when
other hosts come and go (principle 4); it cannot list peer addresses, so it
opens `internal` services to the VPC range and leaves the role check to the
edge. Both deny everything else.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field

from .config import MAX_FIREWALL_RULES, SSH_PORT, StackConfig

ANYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class EffectiveService:
    """A declared service, or one the baseline adds (ssh, wireguard)."""

    name: str
    port: int
    protocol: str
    exposure: str
    # Where the edge firewall lets traffic in from.
    source_addresses: tuple[str, ...] = ()
    source_roles: tuple[str, ...] = ()
    # Where UFW lets traffic in from ("any" or CIDRs).
    host_sources: tuple[str, ...] = ()
    rate_limited: bool = False
    managed: bool = False  # added by the baseline, not declared by the user


@dataclass(frozen=True)
class CloudRule:
    protocol: str
    port_range: str | None
    source_addresses: tuple[str, ...] = ()
    source_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CloudOutboundRule:
    protocol: str
    port_range: str | None
    destination_addresses: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class UfwRule:
    action: str  # allow | limit
    port: int
    protocol: str
    source: str  # "any" or a CIDR
    comment: str

    def command(self) -> str:
        """The rule as one shell command line, every field quoted."""
        return shlex.join(
            ["ufw", self.action, "proto", self.protocol, "from", self.source,
             "to", "any", "port", str(self.port), "comment", self.comment]
        )


def _ssh_service(stack: StackConfig, role: str) -> EffectiveService:
    admin_sources = ANYWHERE if stack.allow_ssh_from_anywhere and not stack.ssh_allowed_sources else stack.ssh_allowed_sources
    bastion = stack.bastion_role
    if bastion is None or role == bastion:
        # The entry point: SSH from the admin networks only.
        return EffectiveService(
            name="ssh", port=SSH_PORT, protocol="tcp", exposure="public",
            source_addresses=tuple(admin_sources), host_sources=tuple(admin_sources),
            rate_limited=True, managed=True,
        )
    # Behind a bastion: the edge admits SSH from the bastion's tag only; the
    # host admits it from the VPC (it cannot know the bastion's address at boot).
    # Not rate limited: every deploy-time SSH session (pulumi-command opens
    # one per command) arrives from the bastion's one address, and `ufw limit`
    # would drop the seventh within 30 s. fail2ban still bans failed logins.
    return EffectiveService(
        name="ssh", port=SSH_PORT, protocol="tcp", exposure="internal",
        source_roles=(bastion,), host_sources=(stack.vpc_cidr,),
        rate_limited=False, managed=True,
    )


def effective_services(stack: StackConfig, role: str) -> list[EffectiveService]:
    """Every service a role's hosts accept, the baseline's own included."""
    out = [_ssh_service(stack, role)]
    if stack.mesh and role == stack.bastion_role and stack.ssh_allowed_sources:
        # The admins' machines join the mesh through the bastion, from the
        # admin networks. Open whether or not admin peers are configured yet:
        # adding one must not change user-data (and replace the bastion);
        # WireGuard answers nothing to a packet without a known peer's key.
        sources = (stack.vpc_cidr, *stack.ssh_allowed_sources)
        out.append(EffectiveService(
            name="wireguard", port=stack.wireguard_port, protocol="udp", exposure="public",
            source_addresses=sources, host_sources=sources, managed=True,
        ))
    else:
        out.append(EffectiveService(
            name="wireguard", port=stack.wireguard_port, protocol="udp", exposure="private",
            source_addresses=(stack.vpc_cidr,), host_sources=(stack.vpc_cidr,), managed=True,
        ))
    for svc in stack.roles[role].services:
        if svc.exposure == "public":
            sources = tuple(svc.allowed_sources) or ANYWHERE
            out.append(EffectiveService(
                name=svc.name, port=svc.port, protocol=svc.protocol, exposure="public",
                source_addresses=sources, host_sources=sources,
            ))
        # Peers reach private services over the VPC or over the WireGuard
        # overlay; the overlay is encrypted inside UDP, so only the host
        # firewall sees (and must admit) it. Internal services are admitted
        # over the overlay from the source roles' overlay addresses only,
        # pushed with the mesh's peer lists (`overlay_internal_rules`): user-data
        # cannot know other hosts' addresses.
        elif svc.exposure == "private":
            out.append(EffectiveService(
                name=svc.name, port=svc.port, protocol=svc.protocol, exposure="private",
                source_addresses=(stack.vpc_cidr,), host_sources=(stack.vpc_cidr, stack.overlay_cidr),
            ))
        else:
            out.append(EffectiveService(
                name=svc.name, port=svc.port, protocol=svc.protocol, exposure="internal",
                source_roles=tuple(svc.allowed_sources), host_sources=(stack.vpc_cidr,),
            ))
    return out


def overlay_internal_rules(stack: StackConfig, role: str) -> list[tuple[str, int, tuple[str, ...]]]:
    """(protocol, port, source roles) of each `internal` service of `role`:
    what the mesh admits over the overlay, and from whom."""
    return [
        (svc.protocol, svc.port, tuple(svc.allowed_sources))
        for svc in stack.roles[role].services
        if svc.exposure == "internal"
    ]


def cloud_inbound_rules(stack: StackConfig, role: str) -> list[CloudRule]:
    rules = []
    for svc in effective_services(stack, role):
        rules.append(CloudRule(
            protocol=svc.protocol,
            port_range=str(svc.port),
            source_addresses=svc.source_addresses,
            source_tags=tuple(stack.tag_for(r) for r in svc.source_roles),
        ))
    # ICMP inside the VPC only: enough for diagnostics and path-MTU discovery
    # between hosts, nothing for the internet to map.
    rules.append(CloudRule(protocol="icmp", port_range=None, source_addresses=(stack.vpc_cidr,)))
    return rules


def cloud_outbound_rules(stack: StackConfig) -> list[CloudOutboundRule]:
    """Explicit egress: name resolution, time, package updates, the VPC."""
    vpc = (stack.vpc_cidr,)
    return [
        CloudOutboundRule("udp", "53", ANYWHERE),
        CloudOutboundRule("tcp", "53", ANYWHERE),
        CloudOutboundRule("udp", "123", ANYWHERE),
        CloudOutboundRule("tcp", "80", ANYWHERE),
        CloudOutboundRule("tcp", "443", ANYWHERE),
        CloudOutboundRule("icmp", None, ANYWHERE),
        CloudOutboundRule("udp", str(stack.wireguard_port), vpc),
        CloudOutboundRule("tcp", "1-65535", vpc),
        CloudOutboundRule("udp", "1-65535", vpc),
    ]


def firewall_rule_count(stack: StackConfig, role: str) -> int:
    return len(cloud_inbound_rules(stack, role)) + len(cloud_outbound_rules(stack))


def check_firewall_limits(stack: StackConfig) -> list[str]:
    problems = []
    for role in stack.roles:
        n = firewall_rule_count(stack, role)
        if n > MAX_FIREWALL_RULES:
            problems.append(
                f"roles.{role}.services: the role needs {n} cloud firewall rules, more than "
                f"DigitalOcean's limit of {MAX_FIREWALL_RULES}; merge services or use port ranges"
            )
    return problems


def ufw_rules(stack: StackConfig, role: str) -> list[UfwRule]:
    rules = []
    for svc in effective_services(stack, role):
        for src in svc.host_sources:
            # `ufw limit` (6 new connections in 30 s) only where anyone can
            # connect. From the admin networks, which the cloud firewall
            # already narrows SSH to, it protects nothing and drops a deploy:
            # pulumi-command opens one connection per command, and every
            # command to a host behind the bastion opens one to the bastion.
            action = "limit" if svc.rate_limited and src in ANYWHERE else "allow"
            source = "any" if src in ANYWHERE else src
            rule = UfwRule(action, svc.port, svc.protocol, source, f"hardened-do {svc.name}")
            if rule not in rules:
                rules.append(rule)
    return rules


def expected_listeners(stack: StackConfig, role: str) -> dict:
    """The audit's view: what may listen, and how widely it may be exposed."""
    services = []
    for svc in effective_services(stack, role):
        entry = {
            "name": svc.name,
            "port": svc.port,
            "protocol": svc.protocol,
            "exposure": svc.exposure,
            "managed": svc.managed,
        }
        services.append(entry)
    return {
        "version": 1,
        "role": role,
        "vpc_cidr": stack.vpc_cidr,
        "overlay_cidr": stack.overlay_cidr,
        "services": services,
    }


def as_dicts(items) -> list[dict]:
    return [asdict(i) for i in items]
