"""The stack model: the one place where configuration is read and validated.

Everything downstream (firewall rules, UFW rules, cloud-init, resources) works
on the typed objects defined here, never on raw config. Parsing happens before
any resource is registered, so a rejected config creates nothing.

Errors are collected (not raised one at a time) and each names the config key,
what is wrong and how to fix it. Values are echoed only where they are
harmless (numbers, CIDRs, names); key material and free text never are.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pulumi.errors import RunError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import do_slugs
from .measures_config import MeasuresFields
from .names import DNS_LABEL_HINT, SSH_GROUP, do_name, is_dns_label, is_system_account
from .ssh_public_keys import (
    PRIVATE_KEY_MESSAGE,
    SshKeyError,
    SshPublicKey,
    looks_like_private_key,
    parse_public_key,
)

PROJECT = "hardened-do"

SUPPORTED_IMAGES = ("ubuntu-24-04-x64", "debian-12-x64")
SSH_PORT = 22
# DigitalOcean documents these per-firewall limits; a plan that exceeds them
# would fail half-way through `pulumi up`, so they are checked up front.
MAX_FIREWALL_RULES = 50
# DigitalOcean refuses user_data over 64 KiB. We hold ourselves to 24 KiB: the
# baseline (boot filter, sshd, UFW, fail2ban, upgrades, kernel and audit
# settings, commented for whoever reads them on the host) renders to about
# 14.9 KB, which leaves about 9 KiB for what the config adds (keys, services
# and their sources, a CA) and still more than half of the hard limit free.
USER_DATA_LIMIT = 64 * 1024
USER_DATA_BUDGET = 24 * 1024

# Ranges DigitalOcean Kubernetes uses for pods and services by default; a VPC or
# overlay on top of them breaks routing the day a cluster joins the VPC.
RESERVED_RANGES = (
    ipaddress.ip_network("10.244.0.0/16"),
    ipaddress.ip_network("10.245.0.0/16"),
)

# Every pattern is used with `fullmatch` (never `match` with `$`, which also
# matches before a final newline).
_UNIX_USER = re.compile(r"[a-z][a-z0-9_-]{0,30}")
_NAME_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,30}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")

# C0 and C1 control characters (DEL included) and the Unicode line and
# paragraph separators YAML treats as line breaks. None may appear in any
# key or string value; PEM text may hold plain newlines and nothing else.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PEM_KEYS = {"trusted_ca_pem"}

# SSH exposure threshold. Sources are judged as a union (0.0.0.0/1 plus
# 128.0.0.0/1 is the whole internet too). Needing allow_ssh_from_anywhere:
# more than a /8's worth of globally routable IPv4 addresses (2^24, the size of
# the largest single allocations; no admin network is that big), or more than
# a /32 of global unicast IPv6 (2000::/3; a /32 is a whole ISP's allocation).
SSH_EXPOSURE_MAX_V4 = 2**24
SSH_EXPOSURE_MAX_V6 = 2**96
# Not globally routable: never counted as exposure.
_NON_GLOBAL_V4 = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3",
    )
)
_GLOBAL_V6 = ipaddress.ip_network("2000::/3")

Exposure = Literal["public", "private", "internal"]
Protocol = Literal["tcp", "udp"]


def _size_slug(v: str) -> str:
    # The shape here; membership in DigitalOcean's list in StackConfig, where
    # allow_unlisted_slugs is known.
    if not do_slugs.SIZE_SHAPE.fullmatch(v):
        raise ValueError("must be a droplet size slug such as 's-1vcpu-1gb'")
    return v


def _image_slug(v: str) -> str:
    if v not in SUPPORTED_IMAGES:
        raise ValueError(f"unsupported image; use one of {', '.join(SUPPORTED_IMAGES)}")
    return v


SizeSlug = Annotated[str, AfterValidator(_size_slug)]
ImageSlug = Annotated[str, AfterValidator(_image_slug)]


def canonical_ca_pem(text: str) -> str:
    """One CA certificate, parsed by `cryptography` and re-encoded as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if looks_like_private_key(text):
        raise ValueError(
            f"{PRIVATE_KEY_MESSAGE}; hosts must only get the CA *certificate* "
            "(-----BEGIN CERTIFICATE-----)"
        )
    body = text.strip()
    if not (
        body.startswith("-----BEGIN CERTIFICATE-----")
        and body.endswith("-----END CERTIFICATE-----")
        and body.count("-----BEGIN") == 1
    ):
        raise ValueError("must be one PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)")
    try:
        cert = x509.load_pem_x509_certificate(body.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("is not a valid certificate: its PEM body is not base64 DER of an X.509 certificate") from None
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    except ValueError:
        raise ValueError("is not a valid certificate: its extensions do not parse") from None
    if not is_ca:
        raise ValueError("is not a CA certificate (basicConstraints CA:TRUE is missing); give the CA's own certificate")
    if cert.not_valid_after_utc <= datetime.datetime.now(datetime.timezone.utc):
        raise ValueError(f"the CA certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}; renew it")
    return cert.public_bytes(Encoding.PEM).decode("ascii")


class ConfigError(RunError, ValueError):
    """The stack config was rejected. `problems` lists one line per problem.

    A `pulumi.RunError`: Pulumi shows it as its message alone, without a
    Python traceback, and fails the preview or update.
    """

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


_CIDR_CHARS = re.compile(r"[0-9A-Fa-f.:/]{1,49}")


def _network(value: Any, *, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    # A closed alphabet before Python's parser: it accepts IPv6 zone ids
    # (`fe80::1%anything/128`), which have no place in a firewall rule.
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a CIDR string such as 10.10.0.0/16")
    if not _CIDR_CHARS.fullmatch(value):
        raise ValueError(
            "is not a valid CIDR (only digits, a-f, '.', ':' and '/' may appear; no IPv6 "
            "zone ids); use e.g. 203.0.113.0/24 or 2001:db8::/48"
        )
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        # Echoed only when it looks like an address: no address group has
        # more than four hex digits in a row, a pasted secret has many.
        shown = "" if re.search(r"[0-9A-Fa-f]{5,}", value) else f"{value!r} "
        raise ValueError(
            f"{shown}is not a valid CIDR with the host bits zero "
            "(for example 203.0.113.0/24 or 198.51.100.7/32)"
        ) from None


def canonical_cidr(value: Any, *, what: str) -> str:
    """The CIDR in its one canonical spelling (what every renderer prints)."""
    return str(_network(value, what=what))


def _is_anywhere(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return net.prefixlen == 0


def _overlap(a, b) -> int:
    if a.version != b.version or not a.overlaps(b):
        return 0
    return min(a.num_addresses, b.num_addresses)


def global_exposure(sources) -> tuple[int, int]:
    """(IPv4, IPv6) counts of globally routable addresses the union of `sources` covers."""
    nets = [ipaddress.ip_network(s) for s in sources]
    v4 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 4))
    v6 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 6))
    count4 = sum(n.num_addresses - sum(_overlap(n, x) for x in _NON_GLOBAL_V4) for n in v4)
    count6 = sum(_overlap(n, _GLOBAL_V6) for n in v6)
    return count4, count6


def reject_control_characters(raw: Any, path: str = "") -> list[str]:
    """Problems for every key or string holding a control character (values not echoed)."""
    problems: list[str] = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            name = str(key)
            where = f"{path}.{name}" if path else name
            if _CONTROL.search(name):
                problems.append(f"{PROJECT}:{path or '(top level)'}: a key holds a control character")
                continue
            problems += reject_control_characters(value, where)
    elif isinstance(raw, (list, tuple)):
        for i, value in enumerate(raw):
            problems += reject_control_characters(value, f"{path}[{i}]")
    elif isinstance(raw, str):
        text = raw.replace("\n", "") if path in _PEM_KEYS else raw
        if len(raw) >= 40 and looks_like_private_key(raw):
            # Wherever it was pasted, the message says what it is, and no more.
            problems.append(f"{PROJECT}:{path}: {PRIVATE_KEY_MESSAGE}")
        elif _CONTROL.search(text):
            extra = " (PEM text may hold plain newlines only, no carriage returns)" if path in _PEM_KEYS else (
                " (a newline, tab or other control character; values are one line)"
            )
            problems.append(f"{PROJECT}:{path}: holds a control character{extra}; the value is not shown")
    return problems


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
        if not is_dns_label(v):
            raise ValueError(f"must be a DNS label ({DNS_LABEL_HINT}), e.g. 'https'")
        return v

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("must be a whole number from 1 to 65535")
        if not 1 <= v <= 65535:
            raise ValueError(f"{v} is out of range; use a port from 1 to 65535")
        return int(v)

    @field_validator("allowed_sources", mode="before")
    @classmethod
    def _canonical_sources(cls, v: Any, info: ValidationInfo) -> Any:
        # Public sources are CIDRs, kept in canonical form; internal ones are
        # role names (checked against the roles in StackConfig).
        if not isinstance(v, (list, tuple)):
            raise ValueError("must be a list")
        exposure = info.data.get("exposure")
        if exposure == "public":
            return tuple(canonical_cidr(s, what="allowed_sources entry") for s in v)
        if exposure == "internal" and not all(is_dns_label(s) for s in v):
            raise ValueError(f"`internal` services list role names here, and role names are DNS labels ({DNS_LABEL_HINT})")
        return tuple(v)

    @model_validator(mode="after")
    def _sources(self) -> "Service":
        if self.exposure == "private" and self.allowed_sources:
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
    size: SizeSlug | None = Field(None, description="Droplet size slug for this role's hosts.")

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

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if not is_dns_label(v):
            raise ValueError(f"must be the name of a role in `roles` ({DNS_LABEL_HINT})")
        return v
    size: SizeSlug | None = Field(None, description="Droplet size slug; overrides the role's and the default.")
    image: ImageSlug | None = Field(None, description="Image slug; overrides `image`.")
    overlay_ip: str | None = Field(
        None,
        description=(
            "Pin of the host's WireGuard overlay address (inside overlay_cidr). Needed only when "
            "two host names hash to the same address; the error then names a free one."
        ),
    )

    @field_validator("overlay_ip")
    @classmethod
    def _overlay_ip(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.fullmatch(r"[0-9.]{7,15}", v):
            raise ValueError("must be an IPv4 address inside overlay_cidr, e.g. 10.200.0.80")
        try:
            return str(ipaddress.IPv4Address(v))
        except ValueError:
            raise ValueError("must be an IPv4 address inside overlay_cidr, e.g. 10.200.0.80") from None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not is_dns_label(v):
            raise ValueError(f"must be a DNS label: {DNS_LABEL_HINT} (e.g. 'web-1')")
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
        if not _TIME.fullmatch(v):
            raise ValueError("must be a 24-hour time HH:MM, e.g. '04:30'")
        return v


class StackConfig(MeasuresFields, _Strict):
    """The whole validated stack (the mesh, PKI and audit keys come from MeasuresFields)."""

    name_prefix: str = Field(description="Prefix of every DigitalOcean name and tag.")
    region: str = Field("nyc3", description="DigitalOcean region slug.")
    vpc_cidr: str = Field("10.10.0.0/16", description="VPC range: RFC 1918, /16 to /24.")
    image: ImageSlug = Field(SUPPORTED_IMAGES[0], description="Default image slug.")
    default_size: SizeSlug = Field("s-1vcpu-1gb", description="Default droplet size slug.")
    admin_user: str = Field("ops", description="Non-root admin account created on every host.")
    admin_ssh_keys: tuple[str, ...] = Field(description="OpenSSH public keys of the admins.")
    ssh_allowed_sources: tuple[str, ...] = Field(
        (), description="CIDRs allowed to reach SSH on the entry point (bastion, or every public host if there is none)."
    )
    allow_ssh_from_anywhere: bool = Field(
        False,
        description=(
            "Explicitly open SSH to the internet. Needed when ssh_allowed_sources together "
            "cover more than a /8 of public IPv4 or a /32 of global IPv6 (0.0.0.0/0 included)."
        ),
    )
    allow_unlisted_slugs: bool = Field(
        False,
        description=(
            "Accept region and size slugs missing from the DigitalOcean lists this version "
            "knows (components/do_slugs.py); they are still checked for their shape."
        ),
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
    audit_trail: bool = Field(
        False,
        description=(
            "Install auditd (with our rules), process accounting (acct) and sysstat: the audit "
            "trail Lynis asks for. Off by default: three more packages at first boot (minutes of "
            "package configuration) and continuous disk writes."
        ),
    )
    unattended_upgrades: UnattendedUpgrades = Field(default_factory=UnattendedUpgrades)
    wireguard_port: int = Field(51820, description="UDP port of the WireGuard mesh (VPC only).")
    # A /16 by default: addresses are hashed from host names, and a larger
    # range makes two names landing on one address rare (about 2% at 50 hosts,
    # against near-certain in a /24); a pin settles the rest.
    overlay_cidr: str = Field("10.200.0.0/16", description="WireGuard overlay range.")
    trusted_ca_pem: str | None = Field(
        None, description="PEM certificate of an internal CA to add to every host's trust store."
    )
    roles: dict[str, Role] = Field(description="Roles by name.")
    hosts: tuple[Host, ...] = Field(description="Hosts to create.")

    # -- field checks ---------------------------------------------------------

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _NAME_PREFIX.fullmatch(v):
            raise ValueError("must be lowercase letters, digits and '-', at most 31 characters")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not do_slugs.REGION_SHAPE.fullmatch(v):
            raise ValueError("must be a region slug such as 'nyc3', 'fra1' or 'ams3'")
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
        return str(net)

    @field_validator("overlay_cidr")
    @classmethod
    def _overlay(cls, v: str) -> str:
        net = _network(v, what="overlay_cidr")
        if net.version != 4 or not net.is_private:
            raise ValueError(f"{v} is not a private IPv4 range; use e.g. 10.200.0.0/24")
        # Python counts these as "private" too; none can carry a mesh, and
        # link-local holds the metadata service (169.254.169.254).
        if net.is_loopback or net.is_link_local or net.is_multicast or net.is_reserved or net.is_unspecified:
            raise ValueError(
                f"{v} is loopback, link-local (the metadata service), multicast or reserved; "
                "use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
            )
        if not any(net.subnet_of(p) for p in map(ipaddress.ip_network, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))):
            raise ValueError(f"{v} is not inside an RFC 1918 range; use e.g. 10.200.0.0/24")
        if net.prefixlen > 29:
            raise ValueError(f"/{net.prefixlen} is too small for a mesh; use /29 or larger")
        return str(net)

    @field_validator("admin_user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not _UNIX_USER.fullmatch(v):
            raise ValueError(
                "must be a plain lowercase Unix user name (a-z first, then a-z, 0-9, '_', '-'; "
                "at most 31 characters), e.g. 'ops'"
            )
        if is_system_account(v):
            raise ValueError(
                f"{v!r}: not root, not an image's user or group: it already exists on the "
                f"images (or is our SSH group {SSH_GROUP!r}), so cloud-init would skip it and lock "
                "the admins out; use a name of your own, e.g. 'ops'"
            )
        return v

    @field_validator("admin_ssh_keys", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        if isinstance(v, str):
            # A single key given as a string is a common slip; refuse private
            # keys here too, before pydantic's own error could quote the value.
            if looks_like_private_key(v):
                raise ValueError(PRIVATE_KEY_MESSAGE)
            raise ValueError("must be a list of public keys, e.g. ['ssh-ed25519 AAAA... you@laptop']")
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError(
                "at least one admin SSH public key is required: without it nobody can log "
                "in (passwords are disabled). Add your ~/.ssh/id_ed25519.pub"
            )
        problems = []
        canonical = []
        for i, key in enumerate(v):
            try:
                canonical.append(parse_public_key(key).openssh)
            except SshKeyError as exc:
                problems.append(f"[{i}]: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return tuple(canonical)

    @field_validator("ssh_allowed_sources", mode="before")
    @classmethod
    def _ssh_sources(cls, v: Any) -> Any:
        if not isinstance(v, (list, tuple)):
            raise ValueError("must be a list of CIDRs, e.g. ['203.0.113.7/32']")
        return tuple(canonical_cidr(item, what="ssh_allowed_sources entry") for item in v)

    @field_validator("wireguard_port", mode="before")
    @classmethod
    def _wg_port(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or not 1024 <= v <= 65535:
            raise ValueError("must be a UDP port from 1024 to 65535 (default 51820)")
        return v

    @field_validator("trusted_ca_pem", mode="before")
    @classmethod
    def _ca(cls, v: Any) -> str | None:
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError("must be one PEM certificate as a string")
        if not v.strip():
            return None
        return canonical_ca_pem(v)

    @field_validator("roles", mode="before")
    @classmethod
    def _role_names(cls, v: Any) -> Any:
        if not isinstance(v, dict) or not v:
            raise ValueError("at least one role is required, e.g. roles: {web: {services: [...]}}")
        for name in v:
            if not is_dns_label(name) or len(name) > 20:
                raise ValueError(
                    "role names must be short DNS labels (a-z, 0-9, '-', at most 20 characters)"
                )
        return v

    # -- cross-field checks ---------------------------------------------------

    def _slug_problems(self) -> list[str]:
        if self.allow_unlisted_slugs:
            return []
        problems = []
        hint = (
            f"(DigitalOcean's list as of {do_slugs.SLUGS_AS_OF}; for a newer slug set "
            "allow_unlisted_slugs: true)"
        )
        if self.region not in do_slugs.REGIONS:
            problems.append(
                f"region: {self.region!r} is not a DigitalOcean region; use one of "
                f"{', '.join(sorted(do_slugs.REGIONS))} {hint}"
            )
        sizes = [("default_size", self.default_size)]
        sizes += [(f"roles.{n}.size", r.size) for n, r in self.roles.items() if r.size]
        sizes += [(f"hosts[{i}].size", h.size) for i, h in enumerate(self.hosts) if h.size]
        for key, size in sizes:
            if size not in do_slugs.SIZES:
                problems.append(
                    f"{key}: {size!r} is not a DigitalOcean droplet size (e.g. s-1vcpu-1gb, "
                    f"s-2vcpu-4gb, g-2vcpu-8gb) {hint}"
                )
        return problems

    def _exposure_problems(self) -> list[str]:
        if self.allow_ssh_from_anywhere:
            return []
        anywhere = [s for s in self.ssh_allowed_sources if _is_anywhere(ipaddress.ip_network(s))]
        if anywhere:
            return [
                f"ssh_allowed_sources: {', '.join(anywhere)} opens SSH to the whole internet; "
                "list your admin networks instead, or set allow_ssh_from_anywhere: true "
                "to say so explicitly"
            ]
        v4, v6 = global_exposure(self.ssh_allowed_sources)
        if v4 > SSH_EXPOSURE_MAX_V4 or v6 > SSH_EXPOSURE_MAX_V6:
            share = f"{100 * v4 / 2**32:.1f}% of the IPv4 internet" if v4 > SSH_EXPOSURE_MAX_V4 else (
                "more than a /32 of global IPv6"
            )
            return [
                f"ssh_allowed_sources: together these ranges open SSH to {share} (more than a "
                "/8 of public IPv4 or a /32 of IPv6 needs the opt-in); list your admin networks "
                "instead, or set allow_ssh_from_anywhere: true to say so explicitly"
            ]
        return []

    @model_validator(mode="after")
    def _cross(self) -> "StackConfig":
        problems: list[str] = self._slug_problems() + self._exposure_problems()
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
        return do_name(self.name_prefix, role)

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


def parse_config_values(raw: Any, *, name_prefix: str) -> StackConfig:
    """Validate raw config values (keys without the project namespace).

    Checks every value and every relation between values; the limits that
    show only once rules and user-data are derived are checked on top of
    this by `components.stack.parse_stack_config`. Raises ConfigError, and
    nothing else, on any bad input.
    """
    if not isinstance(raw, dict):
        raise ConfigError([f"{PROJECT}: config must be a mapping of keys to values"])
    # Before anything else reads a value: no control character reaches a
    # model, a message or a host.
    control = reject_control_characters(raw)
    if control:
        raise ConfigError(control)
    data = {k: v for k, v in raw.items() if v is not None}
    data["name_prefix"] = name_prefix
    try:
        stack = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None
    except (TypeError, ValueError, RecursionError) as exc:  # defensive: never a traceback
        raise ConfigError([f"{PROJECT}: could not parse the config ({type(exc).__name__})"]) from None
    return stack


def default_prefix(project: str, stack: str) -> str:
    prefix = re.sub(r"[^a-z0-9-]", "-", f"{project}-{stack}".lower()).strip("-")
    return prefix[:31].rstrip("-") or "hd"


# Namespaces of the providers and of Pulumi itself that may appear in a stack's
# config next to ours; their keys are theirs to check. Any other namespace is
# most likely a misspelling of ours, and its keys would be silently ignored.
OTHER_NAMESPACES = frozenset({"pulumi", "digitalocean", "tls", "command"})


def _string_keys() -> frozenset[str]:
    """Keys whose value is a string: Pulumi keeps them as text, never as JSON."""
    props = StackConfig.model_json_schema()["properties"]
    out = set()
    for key, prop in props.items():
        types = {prop.get("type")} | {a.get("type") for a in prop.get("anyOf", [])}
        if (types - {None, "null"}) == {"string"}:
            out.add(key)
    return frozenset(out)


STRING_KEYS = _string_keys()


def split_config_key(full_key: Any, project: str) -> tuple[str, str]:
    """(namespace, key) with Pulumi's rule: a key without a namespace is the project's."""
    ns, sep, key = str(full_key).partition(":")
    if not sep:
        return project, ns
    return ns, key


def _sort_config(items, project: str, *, where: str) -> tuple[dict[str, Any], list[str]]:
    """Our keys (namespace removed) and problems: unknown namespaces, keys set twice, nulls."""
    ours: dict[str, Any] = {}
    problems: list[str] = []
    for full_key, value in items:
        ns, key = split_config_key(full_key, project)
        if _CONTROL.search(ns + key):
            problems.append(f"{where}: a config key holds a control character")
            continue
        if ns in OTHER_NAMESPACES:
            continue
        if ns != project:
            problems.append(
                f"{where}: unknown config namespace {ns[:40]!r} (key {key[:40]!r}); this project's "
                f"keys are `{project}:<key>` (or `<key>` alone)"
            )
            continue
        if key in ours:
            problems.append(f"{project}:{key}: set twice (with and without the namespace); keep one")
            continue
        if value is None:
            problems.append(f"{project}:{key}: is null; remove the key to use the default")
            continue
        ours[key] = value
    return ours, problems


def read_pulumi_config() -> tuple[dict[str, Any], str]:
    """The running stack's raw config values and name prefix (the only reader of Pulumi's config).

    Pulumi hands the program every key as `namespace:key` with a string value
    (structured values as JSON). The same rules as `read_stack_file` apply:
    unknown namespaces are errors, and a string key's text is never decoded
    as JSON, so the string "null" stays a string.
    """
    import json

    import pulumi
    from pulumi.runtime import config as runtime_config

    every: dict[str, Any] = dict(runtime_config.get_config_env())
    every.update(runtime_config.CONFIG.get())
    decoded = []
    for full_key, text in sorted(every.items()):
        _, key = split_config_key(full_key, PROJECT)
        value: Any = text
        if isinstance(text, str) and key not in STRING_KEYS:
            try:
                value = json.loads(text)
            except ValueError:
                value = text  # a plain string where a structure belongs: the model says so
        decoded.append((full_key, value))
    raw, problems = _sort_config(decoded, PROJECT, where="stack config")
    if problems:
        raise ConfigError(problems)
    _refuse_secrets(sorted(raw))
    prefix = raw.pop("name_prefix", None)
    if prefix is not None and not isinstance(prefix, str):
        raise ConfigError([f"{PROJECT}:name_prefix: must be a string"])
    return raw, prefix or default_prefix(pulumi.get_project(), pulumi.get_stack())


def _refuse_secrets(keys: list[str]) -> None:
    """A secret value would reach user-data, which every process on a host can
    read: refuse it, as the stack-file reader does, without showing it."""
    from pulumi.runtime.config import is_config_secret

    secret = [k for k in keys if is_config_secret(f"{PROJECT}:{k}")]
    if secret:
        raise ConfigError([
            f"{PROJECT}:{k}: is a secret, but no hardened-do key may be: values can reach user-data, "
            "which any process on a host can read; set it without --secret"
            for k in secret
        ])


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that names a key twice (at any
    depth): YAML says keys are unique, and PyYAML would keep the last one."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable keys fail in the base class
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {str(key)[:40]!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_unique(text: str) -> Any:
    """YAML with duplicate keys refused (the offline reader's loader)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def read_stack_file(path: str | Path, *, project: str = PROJECT) -> tuple[dict[str, Any], str]:
    """Raw config values and name prefix of a `Pulumi.<stack>.yaml` file, without the Pulumi CLI.

    Reads config as Pulumi does: `key` alone is `<project>:key`, other
    providers' namespaces are left to them, an unknown namespace is an error
    (it is almost always a misspelling of ours), and so is a key given twice.
    """
    path = Path(path)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml")
    try:
        doc = load_yaml_unique(path.read_text())
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.__class__.__name__
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError([f"{path}: not valid YAML{line}: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc.__class__.__name__})"]) from None
    doc = doc or {}
    if not isinstance(doc, dict):
        raise ConfigError([f"{path}: must be a mapping with a `config:` section"])
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([f"{path}: `config:` must be a mapping of keys to values"])
    problems = []
    for full_key, value in config.items():
        if isinstance(value, dict) and "secure" in value:
            ns, key = split_config_key(full_key, project)
            if ns == project:
                problems.append(f"{project}:{key}: is a secret; this key must not be secret")
    raw, more = _sort_config(config.items(), project, where=str(path))
    problems += more
    if problems:
        raise ConfigError(problems)
    prefix = raw.pop("name_prefix", None)
    return raw, prefix or default_prefix(project, stack)
