"""The stack model: the one place where configuration is read and validated.

Everything downstream (firewall rules, UFW rules, cloud-init, resources) works
on the typed objects defined here, never on raw config. Parsing happens before
any resource is registered, so a rejected config creates nothing.

Errors are collected (not raised one at a time) and each names the config key,
what is wrong and how to fix it. Values are echoed only where they are
harmless (numbers, CIDRs, names); key material and free text never are.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .sshkeys import SshKeyError, SshPublicKey, looks_like_private_key, parse_public_key

PROJECT = "hardened-do"

SUPPORTED_IMAGES = ("ubuntu-24-04-x64", "debian-12-x64")
SSH_PORT = 22
# DigitalOcean documents these per-firewall limits; a plan that exceeds them
# would fail half-way through `pulumi up`, so they are checked up front.
MAX_FIREWALL_RULES = 50
# DigitalOcean refuses user_data over 64 KiB. We hold ourselves to a quarter of
# that so there is headroom for what users add (principle 4).
USER_DATA_LIMIT = 64 * 1024
USER_DATA_BUDGET = 16 * 1024

# Ranges DigitalOcean Kubernetes uses for pods and services by default; a VPC or
# overlay on top of them breaks routing the day a cluster joins the VPC.
RESERVED_RANGES = (
    ipaddress.ip_network("10.244.0.0/16"),
    ipaddress.ip_network("10.245.0.0/16"),
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")
_REGION = re.compile(r"^[a-z]{3}[0-9]$")
_SIZE = re.compile(r"^[a-z0-9-]{3,64}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_RESERVED_USERS = {"root", "daemon", "bin", "sys", "sync", "nobody", "sshd", "ubuntu", "debian"}

Exposure = Literal["public", "private", "internal"]
Protocol = Literal["tcp", "udp"]


class ConfigError(ValueError):
    """The stack config was rejected. `problems` lists one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"stack config rejected ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}); nothing was created:\n{lines}"
        )


class _Strict(BaseModel):
    # Unknown keys are errors: a typo such as `exposre: public` must not
    # silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _network(value: Any, *, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a CIDR string such as 10.10.0.0/16")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(
            f"{value[:60]!r} is not a valid CIDR with the host bits zero "
            "(for example 203.0.113.0/24 or 198.51.100.7/32)"
        ) from None


def _is_anywhere(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return net.prefixlen == 0


class Service(_Strict):
    """One network service a role offers. The single source of truth for the
    cloud firewall, UFW and the service audit."""

    name: str = Field(description="Short name of the service (DNS label), e.g. `https`.")
    port: int = Field(description="Port number, 1-65535.")
    protocol: Protocol = Field("tcp", description="`tcp` or `udp`.")
    exposure: Exposure = Field(
        description=(
            "`public`: reachable from the internet (or from `allowed_sources` CIDRs); "
            "`private`: reachable from anywhere inside the VPC; "
            "`internal`: reachable only from the roles named in `allowed_sources`."
        )
    )
    allowed_sources: tuple[str, ...] = Field(
        (),
        description=(
            "For `public`: CIDRs to narrow the exposure (default: the whole internet). "
            "For `internal`: role names (required). Not used for `private`."
        ),
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError("must be a lowercase DNS label (a-z, 0-9, '-'), e.g. 'https'")
        return v

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("must be a whole number from 1 to 65535")
        if not 1 <= v <= 65535:
            raise ValueError(f"{v} is out of range; use a port from 1 to 65535")
        return v

    @model_validator(mode="after")
    def _sources(self) -> "Service":
        if self.exposure == "public":
            for src in self.allowed_sources:
                _network(src, what="allowed_sources entry")
        elif self.exposure == "private" and self.allowed_sources:
            raise ValueError(
                "`private` services are open to the whole VPC, so allowed_sources "
                "is not used; use exposure `internal` with role names to narrow it"
            )
        elif self.exposure == "internal" and not self.allowed_sources:
            raise ValueError(
                "`internal` services need allowed_sources: the role names that may "
                "connect, e.g. allowed_sources: [web]"
            )
        return self


class Role(_Strict):
    services: tuple[Service, ...] = Field((), description="Services this role offers.")
    public_networking: bool = Field(
        True,
        description=(
            "false makes the role's droplets private-only (no public IPv4/IPv6); "
            "they reach the internet through the VPC NAT gateway and are administered "
            "through the bastion."
        ),
    )
    bastion: bool = Field(
        False,
        description=(
            "This role is the SSH entry point: it accepts SSH from "
            "`ssh_allowed_sources` and may forward to the VPC (ProxyJump). "
            "Other roles then accept SSH only from the bastion."
        ),
    )
    size: str | None = Field(None, description="Droplet size slug for this role's hosts.")

    @field_validator("size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and not _SIZE.match(v):
            raise ValueError("must be a droplet size slug such as 's-1vcpu-1gb'")
        return v

    @model_validator(mode="after")
    def _unique(self) -> "Role":
        names: set[str] = set()
        ports: set[tuple[int, str]] = set()
        for svc in self.services:
            if svc.name in names:
                raise ValueError(f"service name {svc.name!r} is declared twice; names must be unique")
            names.add(svc.name)
            key = (svc.port, svc.protocol)
            if key in ports:
                raise ValueError(
                    f"port {svc.port}/{svc.protocol} is declared twice; declare each port once"
                )
            ports.add(key)
            if svc.port == SSH_PORT and svc.protocol == "tcp":
                raise ValueError(
                    "port 22/tcp is managed by the baseline (ssh_allowed_sources and the "
                    "bastion role); remove it from services"
                )
        if self.bastion and not self.public_networking:
            raise ValueError("a bastion role needs public_networking: true")
        return self


class Host(_Strict):
    name: str = Field(description="Host name (a DNS label, unique in the stack).")
    role: str = Field(description="Name of a role in `roles`.")
    size: str | None = Field(None, description="Droplet size slug; overrides the role's and the default.")
    image: str | None = Field(None, description="Image slug; overrides `image`.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError(
                "must be a DNS label: 1-63 characters, lowercase a-z, 0-9 and '-', "
                "not starting or ending with '-' (e.g. 'web-1')"
            )
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is not None and v not in SUPPORTED_IMAGES:
            raise ValueError(f"unsupported image; use one of {', '.join(SUPPORTED_IMAGES)}")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and not _SIZE.match(v):
            raise ValueError("must be a droplet size slug such as 's-1vcpu-1gb'")
        return v


class UnattendedUpgrades(_Strict):
    automatic_reboot: bool = Field(
        True, description="Reboot automatically when an update needs it."
    )
    reboot_time: str = Field("04:30", description="Reboot window start, HH:MM in the host's time zone (UTC).")
    reboot_window_minutes: int = Field(
        60,
        ge=1,
        le=1440,
        description=(
            "Width of the reboot window: each host reboots at its own minute inside it, "
            "never two hosts of one role at the same minute."
        ),
    )

    @field_validator("reboot_time")
    @classmethod
    def _time(cls, v: str) -> str:
        if not _TIME.match(v):
            raise ValueError("must be a 24-hour time HH:MM, e.g. '04:30'")
        return v


class StackConfig(_Strict):
    """The whole validated stack."""

    name_prefix: str = Field(description="Prefix of every DigitalOcean name and tag.")
    region: str = Field("nyc3", description="DigitalOcean region slug.")
    vpc_cidr: str = Field("10.10.0.0/16", description="VPC range: RFC 1918, /16 to /24.")
    image: str = Field(SUPPORTED_IMAGES[0], description="Default image slug.")
    default_size: str = Field("s-1vcpu-1gb", description="Default droplet size slug.")
    admin_user: str = Field("ops", description="Non-root admin account created on every host.")
    admin_ssh_keys: tuple[str, ...] = Field(description="OpenSSH public keys of the admins.")
    ssh_allowed_sources: tuple[str, ...] = Field(
        (), description="CIDRs allowed to reach SSH on the entry point (bastion, or every public host if there is none)."
    )
    allow_ssh_from_anywhere: bool = Field(
        False, description="Explicitly open SSH to 0.0.0.0/0 and ::/0. Needed for any such source."
    )
    monitoring: bool = Field(True, description="Install the DigitalOcean metrics agent.")
    ipv6: bool = Field(False, description="Give public droplets an IPv6 address.")
    droplet_agent: bool = Field(
        False,
        description=(
            "Install the DigitalOcean droplet agent (web console). Off by default: it "
            "injects temporary SSH keys, an access path outside the admin key list."
        ),
    )
    package_upgrade: bool = Field(True, description="Apply all pending updates on first boot.")
    unattended_upgrades: UnattendedUpgrades = Field(default_factory=UnattendedUpgrades)
    wireguard_port: int = Field(51820, description="UDP port of the WireGuard mesh (VPC only).")
    overlay_cidr: str = Field("10.200.0.0/24", description="WireGuard overlay range.")
    trusted_ca_pem: str | None = Field(
        None, description="PEM certificate of an internal CA to add to every host's trust store."
    )
    roles: dict[str, Role] = Field(description="Roles by name.")
    hosts: tuple[Host, ...] = Field(description="Hosts to create.")

    # Memo of values derived from this (immutable) model, such as a role's
    # rendered cloud-config: every host of a role shares it, and a fleet of
    # hundreds of hosts should not render it hundreds of times.
    _derived: dict = PrivateAttr(default_factory=dict)

    # -- field checks ---------------------------------------------------------

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.match(r"^[a-z][a-z0-9-]{0,30}$", v):
            raise ValueError("must be lowercase letters, digits and '-', at most 31 characters")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not _REGION.match(v):
            raise ValueError("must be a region slug such as 'nyc3', 'fra1' or 'ams3'")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if v not in SUPPORTED_IMAGES:
            raise ValueError(f"unsupported image; use one of {', '.join(SUPPORTED_IMAGES)}")
        return v

    @field_validator("default_size")
    @classmethod
    def _size(cls, v: str) -> str:
        if not _SIZE.match(v):
            raise ValueError("must be a droplet size slug such as 's-1vcpu-1gb'")
        return v

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc(cls, v: str) -> str:
        net = _network(v, what="vpc_cidr")
        if net.version != 4 or not net.is_private or net.is_loopback or net.is_link_local:
            raise ValueError(
                f"{v} is not a private (RFC 1918) IPv4 range; use a range inside "
                "10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
            )
        if not any(net.subnet_of(p) for p in map(ipaddress.ip_network, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))):
            raise ValueError(f"{v} is not inside an RFC 1918 range; use e.g. 10.10.0.0/16")
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"/{net.prefixlen} is not allowed; DigitalOcean VPCs are /16 to /24")
        return v

    @field_validator("overlay_cidr")
    @classmethod
    def _overlay(cls, v: str) -> str:
        net = _network(v, what="overlay_cidr")
        if net.version != 4 or not net.is_private:
            raise ValueError(f"{v} is not a private IPv4 range; use e.g. 10.200.0.0/24")
        if net.prefixlen > 29:
            raise ValueError(f"/{net.prefixlen} is too small for a mesh; use /29 or larger")
        return v

    @field_validator("admin_user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not _UNIX_USER.match(v) or v in _RESERVED_USERS:
            raise ValueError(
                "must be a plain lowercase Unix user name (not root or an image's default "
                "user), e.g. 'ops'"
            )
        return v

    @field_validator("admin_ssh_keys", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        if isinstance(v, str):
            # A single key given as a string is a common slip; refuse private
            # keys here too, before pydantic's own error could quote the value.
            if looks_like_private_key(v):
                raise ValueError(parse_error_private())
            raise ValueError("must be a list of public keys, e.g. ['ssh-ed25519 AAAA... you@laptop']")
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError(
                "at least one admin SSH public key is required: without it nobody can log "
                "in (passwords are disabled). Add your ~/.ssh/id_ed25519.pub"
            )
        problems = []
        for i, key in enumerate(v):
            try:
                parse_public_key(key)
            except SshKeyError as exc:
                problems.append(f"[{i}]: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return tuple(v)

    @field_validator("ssh_allowed_sources", mode="before")
    @classmethod
    def _ssh_sources(cls, v: Any) -> Any:
        if not isinstance(v, (list, tuple)):
            raise ValueError("must be a list of CIDRs, e.g. ['203.0.113.7/32']")
        for item in v:
            _network(item, what="ssh_allowed_sources entry")
        return tuple(v)

    @field_validator("wireguard_port", mode="before")
    @classmethod
    def _wg_port(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or not 1024 <= v <= 65535:
            raise ValueError("must be a UDP port from 1024 to 65535 (default 51820)")
        return v

    @field_validator("trusted_ca_pem")
    @classmethod
    def _ca(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if looks_like_private_key(v):
            raise ValueError(
                "this is a PRIVATE key (the value is not shown); hosts must only get the "
                "CA *certificate* (-----BEGIN CERTIFICATE-----)"
            )
        text = v.strip()
        if not (text.startswith("-----BEGIN CERTIFICATE-----") and text.endswith("-----END CERTIFICATE-----")):
            raise ValueError("must be one PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)")
        return text + "\n"

    @field_validator("roles", mode="before")
    @classmethod
    def _role_names(cls, v: Any) -> Any:
        if not isinstance(v, dict) or not v:
            raise ValueError("at least one role is required, e.g. roles: {web: {services: [...]}}")
        for name in v:
            if not isinstance(name, str) or not _DNS_LABEL.match(name) or len(name) > 20:
                raise ValueError(
                    "role names must be short DNS labels (a-z, 0-9, '-', at most 20 characters)"
                )
        return v

    # -- cross-field checks ---------------------------------------------------

    @model_validator(mode="after")
    def _cross(self) -> "StackConfig":
        problems: list[str] = []
        vpc = ipaddress.ip_network(self.vpc_cidr)
        overlay = ipaddress.ip_network(self.overlay_cidr)
        if vpc.overlaps(overlay):
            problems.append(
                f"overlay_cidr: {self.overlay_cidr} overlaps vpc_cidr {self.vpc_cidr}; "
                "choose disjoint ranges (e.g. 10.200.0.0/24)"
            )
        for reserved in RESERVED_RANGES:
            for key, net in (("vpc_cidr", vpc), ("overlay_cidr", overlay)):
                if net.overlaps(reserved):
                    problems.append(
                        f"{key}: {net} overlaps {reserved}, which DigitalOcean Kubernetes "
                        "uses by default; choose another range"
                    )

        anywhere = [s for s in self.ssh_allowed_sources if _is_anywhere(ipaddress.ip_network(s))]
        if anywhere and not self.allow_ssh_from_anywhere:
            problems.append(
                f"ssh_allowed_sources: {', '.join(anywhere)} opens SSH to the whole internet; "
                "list your admin networks instead, or set allow_ssh_from_anywhere: true "
                "to say so explicitly"
            )

        bastions = [n for n, r in self.roles.items() if r.bastion]
        if len(bastions) > 1:
            problems.append(f"roles: {', '.join(bastions)} are all bastions; mark exactly one role bastion: true")
        private_roles = [n for n, r in self.roles.items() if not r.public_networking]
        if private_roles and not bastions:
            problems.append(
                f"roles.{private_roles[0]}.public_networking: private-only hosts need a "
                "bastion role to be administered; add a role with bastion: true"
            )
        needs_public_ssh = bool(bastions) or any(r.public_networking for r in self.roles.values())
        if needs_public_ssh and not self.ssh_allowed_sources and not self.allow_ssh_from_anywhere:
            problems.append(
                "ssh_allowed_sources: empty, so no admin could reach SSH; list your admin "
                "networks as CIDRs (e.g. ['203.0.113.7/32'])"
            )

        for rname, role in self.roles.items():
            for i, svc in enumerate(role.services):
                if svc.exposure == "internal":
                    for src in svc.allowed_sources:
                        if src not in self.roles:
                            problems.append(
                                f"roles.{rname}.services[{i}].allowed_sources: {src[:40]!r} is not "
                                f"a role; use one of {', '.join(sorted(self.roles))}"
                            )
                if svc.protocol == "udp" and svc.port == self.wireguard_port:
                    problems.append(
                        f"roles.{rname}.services[{i}].port: {svc.port}/udp is the WireGuard "
                        "port; pick another port or change wireguard_port"
                    )

        seen: set[str] = set()
        for i, host in enumerate(self.hosts):
            if host.name in seen:
                problems.append(f"hosts[{i}].name: {host.name!r} is used twice; host names must be unique")
            seen.add(host.name)
            if host.role not in self.roles:
                problems.append(
                    f"hosts[{i}].role: {host.role[:40]!r} is not a role; use one of "
                    f"{', '.join(sorted(self.roles))}"
                )
        if bastions and not any(h.role == bastions[0] for h in self.hosts):
            problems.append(
                f"hosts: the bastion role {bastions[0]!r} has no host, so no other host "
                f"could be reached over SSH; add e.g. {{name: bastion-1, role: {bastions[0]}}}"
            )
        if not self.hosts:
            problems.append("hosts: no hosts declared; add e.g. {name: web-1, role: web}")
        if problems:
            raise ValueError(" | ".join(problems))
        return self

    # -- derived views ----------------------------------------------------------

    @property
    def bastion_role(self) -> str | None:
        return next((n for n, r in self.roles.items() if r.bastion), None)

    @property
    def needs_nat_gateway(self) -> bool:
        return any(not self.roles[h.role].public_networking for h in self.hosts)

    def tag_for(self, role: str) -> str:
        return f"{self.name_prefix}-{role}"

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host named {name!r}; hosts are: {', '.join(h.name for h in self.hosts)}")

    def image_for(self, host: Host) -> str:
        return host.image or self.image

    def size_for(self, host: Host) -> str:
        return host.size or self.roles[host.role].size or self.default_size

    @property
    def bastion_host(self) -> Host | None:
        return next((h for h in self.hosts if h.role == self.bastion_role), None)

    def admin_keys(self) -> list[SshPublicKey]:
        return [parse_public_key(k) for k in self.admin_ssh_keys]


def parse_error_private() -> str:
    return (
        "this is a PRIVATE key (the value is not shown). Remove it from the stack config, "
        "treat it as leaked, and paste the public half instead (`ssh-keygen -y -f KEYFILE`)"
    )


# Keys of StackConfig that a stack file may set (name_prefix is derived).
CONFIG_KEYS = tuple(k for k in StackConfig.model_fields if k != "name_prefix")


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _format_errors(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check the spelling against the config reference in the README"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "literal_error":
            msg = msg.replace("Input should be", "must be")
        key = f"{PROJECT}:{_loc(loc)}" if loc else PROJECT
        if " | " in msg and not loc:
            problems.extend(f"{PROJECT}:{part}" for part in msg.split(" | "))
        else:
            problems.append(f"{key}: {msg}")
    return problems


def parse_stack_config(raw: Any, *, name_prefix: str) -> StackConfig:
    """Validate raw config values (keys without the project namespace).

    Raises ConfigError, and nothing else, on any bad input.
    """
    if not isinstance(raw, dict):
        raise ConfigError([f"{PROJECT}: config must be a mapping of keys to values"])
    data = {k: v for k, v in raw.items() if v is not None}
    data["name_prefix"] = name_prefix
    try:
        stack = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None
    except (TypeError, ValueError, RecursionError) as exc:  # defensive: never a traceback
        raise ConfigError([f"{PROJECT}: could not parse the config ({type(exc).__name__})"]) from None
    _check_plan(stack)
    return stack


def _check_plan(stack: StackConfig) -> None:
    """Limits that only show once rules and user-data are derived.

    Imported lazily: the derivations build on this module's types.
    """
    if "." in __package__:  # installed as hardened_do.components
        from ..cloud_init.render import render_user_data
    else:  # repository layout: cloud_init/ is a top-level package
        from cloud_init.render import render_user_data

    from .services import check_firewall_limits

    from .reboots import check_reboot_window

    problems = [f"{PROJECT}:{p}" for p in check_firewall_limits(stack)]
    problems += [f"{PROJECT}:{p}" for p in check_reboot_window(stack)]
    for i, host in enumerate(stack.hosts):
        size = len(render_user_data(stack, host.name).encode())
        if size > USER_DATA_BUDGET:
            problems.append(
                f"{PROJECT}:hosts[{i}]: user_data of {host.name!r} is {size} bytes, over the "
                f"{USER_DATA_BUDGET}-byte budget (DigitalOcean's hard limit is {USER_DATA_LIMIT}); "
                "shorten trusted_ca_pem or the admin key list"
            )
    if problems:
        raise ConfigError(problems)


def default_prefix(project: str, stack: str) -> str:
    prefix = re.sub(r"[^a-z0-9-]", "-", f"{project}-{stack}".lower()).strip("-")
    return prefix[:31].rstrip("-") or "hd"


def load_from_pulumi() -> StackConfig:
    """Read the running stack's config (the only caller of pulumi.Config)."""
    import pulumi

    cfg = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    keys = set(CONFIG_KEYS)
    # Also pick up keys we do not know, so a misspelt key is reported instead of
    # silently ignored (the SDK has no public "list all keys" call).
    try:
        from pulumi.runtime import config as runtime_config

        every = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
        keys |= {k.split(":", 1)[1] for k in every if k.startswith(PROJECT + ":")}
    except Exception:
        pass
    keys.discard("name_prefix")
    for key in sorted(keys):
        try:
            value = cfg.get_object(key)
        except Exception:  # a value that is not JSON is a plain string
            value = cfg.get(key)
        if value is not None:
            raw[key] = value
    prefix = cfg.get("name_prefix") or default_prefix(pulumi.get_project(), pulumi.get_stack())
    return parse_stack_config(raw, name_prefix=prefix)


def load_stack_file(path: str | Path, *, project: str = PROJECT) -> StackConfig:
    """Read a `Pulumi.<stack>.yaml` file without the Pulumi CLI (render, tests, CI)."""
    path = Path(path)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc.__class__.__name__})"]) from None
    config = doc.get("config") or {}
    raw: dict[str, Any] = {}
    prefix = None
    for full_key, value in config.items():
        ns, _, key = str(full_key).partition(":")
        if ns != project or not key:
            continue
        if isinstance(value, dict) and "secure" in value:
            raise ConfigError([f"{project}:{key}: is a secret; this key must not be secret"])
        if key == "name_prefix":
            prefix = value
            continue
        raw[key] = value
    return parse_stack_config(raw, name_prefix=prefix or default_prefix(project, stack))
