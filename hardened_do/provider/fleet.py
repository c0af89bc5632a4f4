"""HardenedFleet: the whole baseline behind flat, serializable arguments.

Pulumi serves Python components to other languages through the component
provider host, which infers a package schema from the type annotations of
each component's `args`. `StackConfig` is a pydantic model and the other
components take Pulumi resources as arguments, neither of which a schema can
express. This wrapper takes plain strings, numbers, lists and small typed
records, turns them into a `StackConfig` with `parse_stack_config` (so every
check the Python program gets still runs, before anything is registered) and
creates the same components the Python program wires by hand.

No `from __future__ import annotations` here: the schema analyzer reads the
annotations as objects, and postponed (string) annotations would not resolve.
"""

import enum
from typing import Any, NotRequired, Optional, TypedDict

import pulumi

from ..components.admin_keys import AdminSshKeys
from ..components.config import ConfigError, StackConfig, default_prefix
from ..components.host import create_hosts, ssh_commands
from ..components.network import Network
from ..components.stack import parse_stack_config

PACKAGE = "hardened-do"


class Exposure(str, enum.Enum):
    """Who may reach a service."""

    PUBLIC = "public"
    """The internet, or only the CIDRs in `allowedSources` when given."""
    PRIVATE = "private"
    """Anywhere inside the VPC."""
    INTERNAL = "internal"
    """Only the roles named in `allowedSources`."""


class Protocol(str, enum.Enum):
    """Transport protocol of a service."""

    TCP = "tcp"
    """TCP."""
    UDP = "udp"
    """UDP."""


class FleetService(TypedDict):
    """A service a role offers: drives the cloud firewall, UFW and the service audit."""

    name: str
    """Short name of the service, a lowercase DNS label such as `https`."""
    port: int
    """Port number, 1-65535. 22/tcp is managed by the baseline and refused here."""
    exposure: Exposure
    """`public`, `private` or `internal`; see Exposure. There is no default: exposure is always a decision."""
    protocol: NotRequired[Protocol]
    """`tcp` (default) or `udp`."""
    allowed_sources: NotRequired[list[str]]
    """For `public`: CIDRs that narrow the exposure (default: the whole internet). For `internal`: the role names that may connect (required). Unused for `private`."""


class FleetRole(TypedDict):
    """A group of hosts that share services, a firewall and a cloud-config."""

    name: str
    """Role name, a DNS label of at most 20 characters; also the role's tag suffix."""
    services: NotRequired[list[FleetService]]
    """Services the role's hosts offer. Default: none (only the baseline's SSH and WireGuard)."""
    public_networking: NotRequired[bool]
    """Default true. false makes the hosts private-only (no public IP): they get egress through a VPC NAT gateway and are reached through the bastion."""
    bastion: NotRequired[bool]
    """Default false. true makes this role the SSH entry point: it alone accepts SSH from `sshAllowedSources`, every other role only from it."""
    size: NotRequired[str]
    """Droplet size slug for the role's hosts; overrides `defaultSize`."""


class FleetHost(TypedDict):
    """One droplet."""

    name: str
    """Host name, a DNS label unique in the fleet (also the droplet's name)."""
    role: str
    """Name of one of the `roles`."""
    size: NotRequired[str]
    """Droplet size slug; overrides the role's size and `defaultSize`."""
    image: NotRequired[str]
    """Image slug, `ubuntu-24-04-x64` or `debian-12-x64`; overrides `image`."""


class HardenedFleetArgs(TypedDict):
    """Inputs of HardenedFleet. Values must be known when the program runs: they are validated before anything is created."""

    admin_ssh_keys: list[str]
    """OpenSSH public keys of the admins (ed25519, ecdsa, or RSA of at least 3072 bits). Private and DSA keys are refused."""
    ssh_allowed_sources: list[str]
    """CIDRs allowed to reach SSH on the entry point (the bastion, or every public host when there is none). 0.0.0.0/0 and ::/0 are refused unless `allowSshFromAnywhere` is true."""
    roles: list[FleetRole]
    """The roles, each with its services."""
    hosts: list[FleetHost]
    """The droplets to create."""
    region: NotRequired[str]
    """DigitalOcean region slug. Default `nyc3`."""
    vpc_cidr: NotRequired[str]
    """VPC range: RFC 1918, /16 to /24, not on DOKS' 10.244/10.245. Default `10.10.0.0/16`."""
    image: NotRequired[str]
    """Default image, `ubuntu-24-04-x64` (default) or `debian-12-x64`."""
    default_size: NotRequired[str]
    """Default droplet size slug. Default `s-1vcpu-1gb`."""
    admin_user: NotRequired[str]
    """Non-root admin account created on every host (sudo, SSH key only). Default `ops`."""
    name_prefix: NotRequired[str]
    """Prefix of every DigitalOcean name and tag. Default: `<resource name>-<stack>`."""
    allow_ssh_from_anywhere: NotRequired[bool]
    """INSECURE opt-in, default false: must be true for 0.0.0.0/0 or ::/0 in `sshAllowedSources`."""
    droplet_agent: NotRequired[bool]
    """INSECURE opt-in, default false: install DigitalOcean's droplet agent (web console), which injects temporary SSH keys outside the admin key list."""
    ipv6: NotRequired[bool]
    """Give public droplets an IPv6 address. Default false."""
    monitoring: NotRequired[bool]
    """Install the DigitalOcean metrics agent. Default true."""
    trusted_ca_pem: NotRequired[str]
    """PEM certificate of an internal CA added to every host's trust store. Default: none."""


# Fleet arguments that are StackConfig keys of the same name and meaning.
_PASSTHROUGH = (
    "admin_ssh_keys",
    "ssh_allowed_sources",
    "region",
    "vpc_cidr",
    "image",
    "default_size",
    "admin_user",
    "allow_ssh_from_anywhere",
    "droplet_agent",
    "ipv6",
    "monitoring",
    "trusted_ca_pem",
)


def _plain(value: Any) -> Any:
    """Enum members to their values; whole floats to ints.

    Numbers reach a component provider as floats (the wire format has one
    number type); the config model rightly refuses a port of 443.5, so only
    whole numbers are converted and anything else is left for it to reject.
    """
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def fleet_config(args: HardenedFleetArgs) -> dict:
    """The raw stack config (as `parse_stack_config` takes it) for fleet args.

    Roles arrive as a list (schemas have no maps of records with a name
    key); a name used twice would silently drop a role in the map, so it is
    an error here.
    """
    raw: dict[str, Any] = {k: _plain(args[k]) for k in _PASSTHROUGH if args.get(k) is not None}
    roles: dict[str, Any] = {}
    problems = []
    for i, role in enumerate(_plain(list(args.get("roles") or []))):
        if not isinstance(role, dict) or not isinstance(role.get("name"), str):
            problems.append(f"{PACKAGE}:roles[{i}].name: every role needs a name, e.g. {{name: web}}")
            continue
        name = role["name"]
        if name in roles:
            problems.append(f"{PACKAGE}:roles[{i}].name: role {name[:40]!r} is declared twice; role names must be unique")
            continue
        roles[name] = {k: v for k, v in role.items() if k != "name" and v is not None}
    if problems:
        raise ConfigError(problems)
    raw["roles"] = roles
    raw["hosts"] = [
        {k: v for k, v in host.items() if v is not None} if isinstance(host, dict) else host
        for host in _plain(list(args.get("hosts") or []))
    ]
    return raw


def fleet_stack(name: str, args: HardenedFleetArgs) -> StackConfig:
    """Validate fleet args into the stack model (raises ConfigError)."""
    prefix = args.get("name_prefix") or default_prefix(name, pulumi.get_stack())
    return parse_stack_config(fleet_config(args), name_prefix=prefix)


class HardenedFleet(pulumi.ComponentResource):
    """A VPC, one deny-by-default cloud firewall per role, admin SSH keys and hardened droplets, from flat arguments."""

    vpc_id: pulumi.Output[str]
    """ID of the fleet's VPC."""
    firewall_ids: pulumi.Output[dict[str, str]]
    """Role name to the ID of its cloud firewall."""
    private_ips: pulumi.Output[dict[str, str]]
    """Host name to its VPC address."""
    public_ips: pulumi.Output[dict[str, str]]
    """Host name to its public IPv4 address, for hosts of roles with public networking."""
    ssh_commands: pulumi.Output[dict[str, str]]
    """Host name to the command that logs in as the admin user (through the bastion where there is one)."""

    def __init__(self, name: str, args: HardenedFleetArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Validated before the component registers: a rejected config
        # creates nothing at all, not even an empty component.
        stack = fleet_stack(name, args)
        super().__init__(f"{PACKAGE}:index:HardenedFleet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        keys = AdminSshKeys(f"{name}-admin-keys", {"stack": stack}, opts=child)
        network = Network(f"{name}-network", {"stack": stack}, opts=child)
        hosts = create_hosts(stack, network, keys.fingerprints, resource_prefix=f"{name}-", opts=child)

        self.vpc_id = network.vpc_id
        self.firewall_ids = network.firewall_ids
        self.private_ips = pulumi.Output.all(**{n: h.private_ip for n, h in hosts.items()})
        self.public_ips = pulumi.Output.all(
            **{n: h.public_ip for n, h in hosts.items() if stack.roles[stack.host(n).role].public_networking}
        )
        self.ssh_commands = pulumi.Output.all(**ssh_commands(stack, hosts))
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "firewall_ids": self.firewall_ids,
                "private_ips": self.private_ips,
                "public_ips": self.public_ips,
                "ssh_commands": self.ssh_commands,
            }
        )
