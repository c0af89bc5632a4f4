"""The baseline's checks as pure functions over resource properties.

Every check takes what the Pulumi engine hands a policy pack: the resource
type token, its properties as plain dicts and lists with the providers'
camelCase names (`vpcUuid`, `sshKeys`, `inboundRules[].portRange`, ...) and
the resource's logical name. It returns the violation messages, each naming
the resource, what is wrong and how to fix it; an empty list means compliant
or not applicable.

During a preview some values are not known yet (the id of a VPC that does
not exist, the fingerprint of a new SSH key). They arrive as the engine's
unknown placeholders or as `UNKNOWN`. A check that cannot decide because of
one raises `Undecidable`; `pack.py` turns that into the engine's standard
"can't run during preview" note, and the engine runs the check again with
real values during `pulumi up`. A check never passes a resource just because
something was unknown, and never fails it for that reason either, except
where the unknown itself answers the question (a `vpcUuid` that comes from
another resource's output is set, whatever its value turns out to be).

Nothing here imports Pulumi, so the checks run the same in the policy pack,
in tests, and against the offline plan of `offline/mock_engine.py`.

The pack stands alone: it holds any DigitalOcean stack to the baseline, not
only ours, and is published and run without hardened_do installed. So the
constants below (the SSH port, the user-data limit, key strengths) are its
own, on purpose, even where hardened_do has the same numbers.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

DROPLET = "digitalocean:index/droplet:Droplet"
DROPLET_AUTOSCALE = "digitalocean:index/dropletAutoscale:DropletAutoscale"
FIREWALL = "digitalocean:index/firewall:Firewall"
TLS_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
TLS_SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert"
TLS_LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"

SSH_PORT = 22
# DigitalOcean rejects larger user_data; failing at preview beats failing
# half-way through an update.
USER_DATA_LIMIT = 64 * 1024
MIN_RSA_BITS = 3072
STRONG_ECDSA_CURVES = ("P256", "P384", "P521")
HOURS_PER_YEAR = 8760
MAX_CA_VALIDITY_HOURS = 10 * HOURS_PER_YEAR
MAX_HOST_CERT_VALIDITY_HOURS = 90 * 24

# The engine's placeholders for values that are not known during a preview
# (pulumi/sdk/go/common/resource/plugin/rpc.go; pulumi_policy/proxy.py).
ENGINE_UNKNOWNS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)


class _Unknown:
    """A value the engine will only know after the resources it depends on exist."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value in ENGINE_UNKNOWNS)


class Undecidable(Exception):
    """An unknown value decides the outcome; check again once it is known."""

    def __init__(self, path: str):
        super().__init__(f"{path} is not known until the resources it depends on exist")
        self.path = path


class StackViolation(NamedTuple):
    urn: str
    message: str


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _num(value: Any) -> str:
    """2048.0 (numbers cross the engine as doubles) prints as 2048."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------
# Droplets and droplet autoscale pools
# --------------------------------------------------------------------------


class _Host(NamedTuple):
    label: str  # how messages name the resource
    settings: Mapping  # where the droplet settings live
    prefix: str  # their property path, for messages
    monitoring_key: str


def _host(resource_type: str, props: Mapping, name: str) -> _Host | None:
    """Droplet settings of a droplet, or of the template of an autoscale pool.

    An autoscale pool creates droplets from its template, outside any later
    review; its template has to meet the same baseline as a droplet.
    """
    if resource_type == DROPLET:
        return _Host(f"droplet '{name}'", props, "", "monitoring")
    if resource_type == DROPLET_AUTOSCALE:
        template = props.get("dropletTemplate")
        if is_unknown(template):
            raise Undecidable("dropletTemplate")
        return _Host(
            f"droplet autoscale pool '{name}'",
            template if isinstance(template, Mapping) else {},
            "dropletTemplate.",
            # The template has no `monitoring`; this flag installs the same
            # metrics agent.
            "withDropletAgent",
        )
    return None


def check_droplet_in_vpc(resource_type: str, props: Mapping, name: str) -> list[str]:
    host = _host(resource_type, props, name)
    if host is None:
        return []
    vpc = host.settings.get("vpcUuid")
    # An unknown id is another resource's output (the stack's VPC, before it
    # exists): the droplet is being put in a VPC.
    if is_unknown(vpc) or vpc:
        return []
    return [
        f"{host.label} sets no {host.prefix}vpcUuid, so DigitalOcean places it in the "
        "region's default VPC, whose private network it shares with every other droplet "
        "of the account in that region. Fix: create a digitalocean.Vpc for the stack and "
        f"pass its id as {'droplet_template.' if host.prefix else ''}vpc_uuid "
        "(hardened-do: components.network.Network().vpc_id)."
    ]


def check_droplet_ssh_keys(resource_type: str, props: Mapping, name: str) -> list[str]:
    host = _host(resource_type, props, name)
    if host is None:
        return []
    keys = host.settings.get("sshKeys")
    if is_unknown(keys):
        return []  # computed from SshKey resources: set, just not known yet
    if _is_list(keys) and any(is_unknown(k) or (k is not None and str(k).strip()) for k in keys):
        return []
    return [
        f"{host.label} has no {host.prefix}sshKeys: DigitalOcean then gives root a "
        "password and emails it, and the droplet can be logged into with it. Fix: register "
        "the admins' public keys as digitalocean.SshKey resources and pass their "
        "fingerprints or ids as ssh_keys; they are injected only when the droplet is "
        "created (hardened-do: hardened_do.AdminSshKeys(...).fingerprints)."
    ]


def check_droplet_monitoring(resource_type: str, props: Mapping, name: str) -> list[str]:
    host = _host(resource_type, props, name)
    if host is None:
        return []
    key = host.monitoring_key
    value = host.settings.get(key)
    if is_unknown(value):
        raise Undecidable(host.prefix + key)
    if value is True:
        return []
    if value is None:
        setting = "unset" if host.prefix else "unset (off by default)"
    else:
        setting = repr(value)
    argument = "droplet_template.with_droplet_agent" if host.prefix else "monitoring"
    return [
        f"{host.label} has {host.prefix}{key} {setting}: without the DigitalOcean metrics "
        "agent there are no CPU, memory and disk graphs or alert policies for it, so a "
        "compromised or failing host goes unnoticed. Fix: set "
        f"{argument}=True (hardened-do: stack config `monitoring: true`)."
    ]


# What private key material looks like. The descriptions go into messages;
# the matched text never does (a message must not leak the secret it found).
_KEY_MARKERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"PRIVATE KEY"), 'a "PRIVATE KEY" block (PEM, OpenSSH or PGP private key)'),
    (re.compile(r"PuTTY-User-Key-File"), 'a PuTTY private key ("PuTTY-User-Key-File")'),
    (re.compile(r"(?im)^[ \t]*PrivateKey[ \t]*="), 'a WireGuard "PrivateKey =" line'),
    (re.compile(r"openssh-key-v1"), "an OpenSSH private key body (openssh-key-v1)"),
    (re.compile(r"\bdo[opr]_v1_[0-9a-f]{64}\b"), "a DigitalOcean API token (dop_v1_/doo_v1_/dor_v1_)"),
)
_B64_CHARS = re.compile(r"[A-Za-z0-9+/=\s]{40,}")
_GZIP_MAGIC = b"\x1f\x8b"
# Bounded so a compressed bomb in user_data cannot stall a preview.
_MAX_INFLATED = 1024 * 1024


def _b64_candidates(text: str) -> Iterable[bytes]:
    """Base64 runs in `text`, whole (wrapped blocks) and token by token."""
    for run in _B64_CHARS.finditer(text):
        tokens = run.group().split()
        for candidate in ["".join(tokens), *tokens]:
            if len(candidate) < 40:
                continue
            candidate = candidate[: len(candidate) - len(candidate) % 4]
            try:
                yield base64.b64decode(candidate, validate=True)
            except (binascii.Error, ValueError):
                continue


def _inflate(data: bytes) -> bytes | None:
    if not data.startswith(_GZIP_MAGIC):
        return None
    try:
        return zlib.decompressobj(wbits=31).decompress(data, _MAX_INFLATED)
    except zlib.error:
        return None


def private_key_markers(text: str) -> list[str]:
    """Descriptions of the private key material (or tokens) found in `text`.

    Looks at the text itself, at base64 runs in it (cloud-init's
    `write_files` with `encoding: b64`, or user_data that is base64 as a
    whole) and at gzip data inside those (`encoding: gz+b64`).
    """
    found: list[str] = []

    def scan(chunk: str, how: str) -> None:
        for pattern, description in _KEY_MARKERS:
            if pattern.search(chunk):
                entry = description + how
                if entry not in found:
                    found.append(entry)

    scan(text, "")
    for decoded in _b64_candidates(text):
        inflated = _inflate(decoded)
        if inflated is not None:
            scan(inflated.decode("latin-1"), ", gzip+base64-encoded")
        else:
            scan(decoded.decode("latin-1"), ", base64-encoded")
    return found


def check_droplet_user_data(resource_type: str, props: Mapping, name: str) -> list[str]:
    host = _host(resource_type, props, name)
    if host is None:
        return []
    user_data = host.settings.get("userData")
    if is_unknown(user_data):
        raise Undecidable(host.prefix + "userData")
    if user_data is None or not str(user_data).strip():
        return [
            f"{host.label} has no {host.prefix}userData, so nothing hardens it at first boot "
            "(admin user, sshd drop-in, host firewall, fail2ban, unattended upgrades) and it "
            "boots with the image's defaults. Fix: pass a hardening cloud-config as user_data "
            "(hardened-do: cloud_init.render_user_data, which components.host.HardenedHost uses)."
        ]
    text = str(user_data)
    problems = []
    markers = private_key_markers(text)
    if markers:
        problems.append(
            f"{host.label} has secret material in {host.prefix}userData: "
            + "; ".join(markers)
            + ". user_data is stored in the Pulumi state and at DigitalOcean, and any process "
            "on the droplet can read it from the metadata service (169.254.169.254). Fix: "
            "generate private keys on the host (ssh-keygen, wg genkey, openssl genpkey) and "
            "read back only the public part, or push secrets over SSH after boot "
            "(pulumi-command); rotate the exposed key."
        )
    size = len(text.encode("utf-8"))
    if size > USER_DATA_LIMIT:
        problems.append(
            f"{host.label} has {size} bytes of {host.prefix}userData, over DigitalOcean's "
            f"limit of {USER_DATA_LIMIT} bytes (64 KiB): the API rejects it. Fix: keep user_data "
            "to what the first boot needs and push the rest over SSH after boot; nothing in it "
            "may grow with the number of hosts."
        )
    return problems


# --------------------------------------------------------------------------
# Cloud firewalls
# --------------------------------------------------------------------------


def _port_range_covers(port_range: Any, port: int) -> bool:
    if port_range is None:
        return True  # tcp without ports: DigitalOcean opens them all
    text = str(port_range).strip().lower()
    if text in ("", "all", "0"):
        return True
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            return low <= port <= high
        return int(text) == port
    except ValueError:
        return True  # unreadable: assume the worst; the message shows it


def _world_sources(sources: Sequence[str]) -> list[str]:
    """The sources that together admit every IPv4 or every IPv6 address."""
    by_version: dict[int, list[tuple[str, Any]]] = {4: [], 6: []}
    for source in sources:
        try:
            net = ipaddress.ip_network(str(source).strip(), strict=False)
        except ValueError:
            continue
        by_version[net.version].append((source, net))
    world: list[str] = []
    for entries in by_version.values():
        if not entries:
            continue
        collapsed = ipaddress.collapse_addresses(net for _, net in entries)
        if any(net.prefixlen == 0 for net in collapsed):
            # Report only the broad ones when a single /0 is among them.
            zeros = [s for s, net in entries if net.prefixlen == 0]
            world += zeros or [s for s, _ in entries]
    return world


def check_firewall_no_public_ssh(
    resource_type: str, props: Mapping, name: str, ssh_ports: Sequence[int] = (SSH_PORT,)
) -> list[str]:
    if resource_type != FIREWALL:
        return []
    rules = props.get("inboundRules")
    if is_unknown(rules):
        raise Undecidable("inboundRules")
    if not _is_list(rules):
        return []
    problems: list[str] = []
    undecided: list[str] = []
    for i, rule in enumerate(rules):
        path = f"inboundRules[{i}]"
        if is_unknown(rule):
            undecided.append(path)
            continue
        if not isinstance(rule, Mapping):
            continue
        action, protocol, port_range = rule.get("action"), rule.get("protocol"), rule.get("portRange")
        unknown = [k for k, v in (("action", action), ("protocol", protocol), ("portRange", port_range)) if is_unknown(v)]
        if unknown:
            undecided.append(f"{path}.{unknown[0]}")
            continue
        if str(action or "allow").lower() == "deny" or str(protocol or "").lower() != "tcp":
            continue
        ports = [p for p in ssh_ports if _port_range_covers(port_range, int(p))]
        if not ports:
            continue
        sources, sources_unknown = _known_strings(rule.get("sourceAddresses"))
        world = _world_sources(sources)
        if not world:
            # An unknown source could still be 0.0.0.0/0; a known /0 settles it.
            if sources_unknown:
                undecided.append(f"{path}.sourceAddresses")
            continue
        shown = "(unset: all ports)" if port_range in (None, "") else repr(port_range)
        port_text = ", ".join(str(p) for p in ports)
        problems.append(
            f"firewall '{name}' {path} opens SSH to the whole internet: tcp portRange {shown} "
            f"includes port {port_text} and sourceAddresses include {', '.join(world)}, so anyone "
            "can attack sshd. Fix: admit SSH only from your admin networks (sourceAddresses "
            "such as 203.0.113.0/24; hardened-do: stack config ssh_allowed_sources) or from a "
            f"bastion's tag (sourceTags), and keep port {port_text} out of rules open to the world."
        )
    if undecided and not problems:
        raise Undecidable(", ".join(undecided))
    return problems


def _known_strings(value: Any) -> tuple[list[str], bool]:
    """(the known strings in a list property, whether any part was unknown)."""
    if is_unknown(value):
        return [], True
    if not _is_list(value):
        return [], False
    known, unknown = [], False
    for item in value:
        if is_unknown(item):
            unknown = True
        elif item is not None:
            # Droplet ids are integers, which cross the engine as doubles.
            known.append(_num(item) if isinstance(item, float) else str(item))
    return known, unknown


def check_droplets_behind_firewall(
    resources: Iterable[Mapping], external_firewall_tags: Sequence[str] = ()
) -> list[StackViolation]:
    """Every droplet (and autoscale pool) is covered by a cloud firewall of the stack.

    `resources`: mappings with `type`, `urn`, `name`, `props` and optionally
    `property_dependencies` (property name -> URNs it was computed from), as
    the engine describes the stack's resources to a stack policy. A firewall
    covers a droplet when they share a tag, or when its `dropletIds` holds
    the droplet's id or was computed from the droplet (which is how it shows
    during a preview, before the droplet has an id).
    """
    resources = list(resources)
    firewall_tags: set[str] = set(external_firewall_tags)
    firewall_ids: set[str] = set()
    firewall_sources: set[str] = set()
    firewall_unknown = False
    for res in resources:
        if res.get("type") != FIREWALL:
            continue
        props = res.get("props") or {}
        tags, tags_unknown = _known_strings(props.get("tags"))
        ids, ids_unknown = _known_strings(props.get("dropletIds"))
        sources = list((res.get("property_dependencies") or {}).get("dropletIds") or [])
        firewall_tags.update(tags)
        firewall_ids.update(ids)
        firewall_sources.update(sources)
        # Unknown ids computed from droplets of this stack are accounted for
        # by their URNs; unknown ids from anywhere else could cover anything.
        firewall_unknown |= tags_unknown or (ids_unknown and not sources)

    problems: list[StackViolation] = []
    undecided: list[str] = []
    for res in resources:
        rtype, urn, name = res.get("type"), res.get("urn", ""), res.get("name", "")
        props = res.get("props") or {}
        if rtype == DROPLET:
            label, tag_path = f"droplet '{name}'", "tags"
            tags, tags_unknown = _known_strings(props.get("tags"))
            droplet_id = props.get("id")
            by_id = urn in firewall_sources or (
                droplet_id not in (None, "")
                and not is_unknown(droplet_id)
                and (_num(droplet_id) if isinstance(droplet_id, float) else str(droplet_id)) in firewall_ids
            )
        elif rtype == DROPLET_AUTOSCALE:
            label, tag_path = f"droplet autoscale pool '{name}'", "dropletTemplate.tags"
            template = props.get("dropletTemplate")
            if is_unknown(template):
                tags, tags_unknown = [], True
            else:
                tags, tags_unknown = _known_strings((template or {}).get("tags"))
            by_id = False  # pool members come and go; only tags follow them
        else:
            continue
        if by_id or any(t in firewall_tags for t in tags):
            continue
        if tags_unknown or firewall_unknown:
            undecided.append(f"{name}.{tag_path}")
            continue
        listed = ", ".join(sorted(t for t in firewall_tags)) or "none"
        problems.append(
            StackViolation(
                urn,
                f"{label} is not covered by any cloud firewall: its {tag_path} "
                f"({', '.join(tags) or 'none'}) match no digitalocean.Firewall's tags "
                f"(firewall tags in this stack: {listed}) and no firewall lists it in "
                "dropletIds, so nothing at the edge filters what reaches the ports it listens on. Fix: create "
                "a firewall that attaches by tag, before the droplet, and give the droplet that "
                "tag (tags=[tag.name]); for a firewall managed outside this stack, add its tag "
                "to this policy's externalFirewallTags config.",
            )
        )
    if undecided and not problems:
        raise Undecidable(", ".join(undecided))
    return problems


# --------------------------------------------------------------------------
# TLS (pulumi-tls): the internal CA and host certificates
# --------------------------------------------------------------------------


def check_tls_key_strength(
    resource_type: str, props: Mapping, name: str, min_rsa_bits: int = MIN_RSA_BITS
) -> list[str]:
    if resource_type != TLS_PRIVATE_KEY:
        return []
    algorithm = props.get("algorithm")
    if is_unknown(algorithm):
        raise Undecidable("algorithm")
    algorithm = str(algorithm or "").upper()
    label = f"TLS private key '{name}'"
    fix = (
        'Fix: use algorithm="ECDSA" with ecdsa_curve="P256" or "P384", algorithm="ED25519", '
        f'or algorithm="RSA" with rsa_bits={min_rsa_bits} or more.'
    )
    if algorithm == "ED25519":
        return []
    if algorithm == "ECDSA":
        curve = props.get("ecdsaCurve")
        if is_unknown(curve):
            raise Undecidable("ecdsaCurve")
        if curve is not None and str(curve).upper() in STRONG_ECDSA_CURVES:
            return []
        shown = "unset, which means P224" if curve is None else repr(curve)
        return [
            f"{label} uses ECDSA with ecdsaCurve {shown}; only {', '.join(STRONG_ECDSA_CURVES)} "
            f"are accepted (P224 is below 128-bit security). {fix}"
        ]
    if algorithm == "RSA":
        bits = props.get("rsaBits")
        if is_unknown(bits):
            raise Undecidable("rsaBits")
        number = 2048.0 if bits is None else _as_number(bits)
        if number is not None and number >= min_rsa_bits:
            return []
        shown = "unset, which means 2048" if bits is None else _num(bits)
        return [
            f"{label} is RSA with rsaBits {shown}, fewer than {min_rsa_bits} bits "
            f"(below 128-bit security). {fix}"
        ]
    return [f"{label} has algorithm {algorithm or 'unset'!r}, which the baseline does not accept. {fix}"]


def _duration(hours: float) -> str:
    if hours >= 2 * HOURS_PER_YEAR:
        return f"about {hours / HOURS_PER_YEAR:.1f} years"
    return f"about {hours / 24:.0f} days"


def _validity(props: Mapping, label: str, limit: float, limit_text: str, kind: str) -> tuple[list[str], list[str], float | None]:
    value = props.get("validityPeriodHours")
    if is_unknown(value):
        return [], ["validityPeriodHours"], None
    hours = _as_number(value)
    if hours is None:
        return [f"{label} sets no validityPeriodHours. Fix: set validity_period_hours to at most {_num(limit)} ({limit_text})."], [], None
    if hours > limit:
        return [
            f"{label} is valid for {_num(value)} hours ({_duration(hours)}), "
            f"longer than the {_num(limit)} hours ({limit_text}) allowed for {kind}: a stolen key "
            f"stays useful that long, since these certificates cannot be revoked. Fix: set "
            f"validity_period_hours to {_num(limit)} or less."
        ], [], hours
    return [], [], hours


def _is_ca(props: Mapping) -> bool:
    value = props.get("isCaCertificate")
    if is_unknown(value):
        raise Undecidable("isCaCertificate")
    return value is True


def check_tls_ca_certificate(
    resource_type: str, props: Mapping, name: str, max_validity_hours: float = MAX_CA_VALIDITY_HOURS
) -> list[str]:
    """CA certificates: the self-signed root, and intermediates (locally signed CAs)."""
    if resource_type not in (TLS_SELF_SIGNED_CERT, TLS_LOCALLY_SIGNED_CERT) or not _is_ca(props):
        return []
    label = f"CA certificate '{name}'"
    limit_text = f"{max_validity_hours / HOURS_PER_YEAR:g} years"
    problems, undecided, _ = _validity(props, label, max_validity_hours, limit_text, "a CA")
    uses, uses_unknown = _known_strings(props.get("allowedUses"))
    if "cert_signing" not in uses and uses_unknown:
        undecided.append("allowedUses")
    elif "cert_signing" not in uses:
        shown = ", ".join(uses) or "none"
        problems.append(
            f"{label} has allowedUses ({shown}) without \"cert_signing\": clients reject the "
            "certificates it signs. Fix: allowed_uses=[\"cert_signing\", \"crl_signing\"] "
            "(plus \"digital_signature\" if the CA key signs anything else)."
        )
    if undecided and not problems:
        raise Undecidable(", ".join(undecided))
    return problems


def check_tls_host_certificate(
    resource_type: str, props: Mapping, name: str, max_validity_hours: float = MAX_HOST_CERT_VALIDITY_HOURS
) -> list[str]:
    """Host (leaf) certificates issued by the internal CA."""
    if resource_type != TLS_LOCALLY_SIGNED_CERT or _is_ca(props):
        return []
    label = f"host certificate '{name}'"
    limit_text = f"{max_validity_hours / 24:g} days"
    problems, undecided, hours = _validity(props, label, max_validity_hours, limit_text, "a host certificate")
    early = props.get("earlyRenewalHours")
    if is_unknown(early):
        undecided.append("earlyRenewalHours")
    else:
        early_hours = 0.0 if early is None else (_as_number(early) or 0.0)
        if early_hours <= 0:
            shown = "unset (0)" if early is None else _num(early)
            problems.append(
                f"{label} has earlyRenewalHours {shown}: Pulumi only replaces it after it has "
                "expired, so the host serves an expired certificate until someone runs an update. "
                "Fix: set early_renewal_hours (for example a third of the validity, 720 for 90 "
                "days) and run `pulumi up` at least that often."
            )
        elif hours is not None and early_hours >= hours:
            problems.append(
                f"{label} has earlyRenewalHours {_num(early)}, not less than its validity of "
                f"{_num(props.get('validityPeriodHours'))} hours: it is due for renewal as soon as "
                "it is issued, so every update replaces it. Fix: make early_renewal_hours a "
                "fraction of validity_period_hours."
            )
    if undecided and not problems:
        raise Undecidable(", ".join(undecided))
    return problems
