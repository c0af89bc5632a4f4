"""The baseline's policies: thin pulumi-policy wrappers around `rules`.

Each policy converts what the engine passes (property proxies that raise on
unknown values) into plain data, reads its config, runs the pure check and
reports each message. A check that an unknown value keeps from deciding is
reported the way pulumi-policy reports any unknown: as an advisory "can't
run policy during preview" note; the engine checks again with real values
during `pulumi up`, where a violation stops the update.

Enforcement: the pack's level (`ENFORCEMENT_LEVEL`, mandatory) applies to
every policy; none sets its own, so a policy config file can lower or raise
any of them (`"firewall-no-public-ssh": "advisory"`, see README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

import rules

PACK_NAME = "hardened-do-baseline"
ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY


def plain(value: Any) -> Any:
    """Engine property proxies -> dicts and lists, unknown values -> rules.UNKNOWN.

    The proxies raise UnknownValueError on reading an unknown value; the
    checks want to see it and decide for themselves whether it matters.
    """
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except UnknownValueError:
                out[key] = rules.UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except UnknownValueError:
                items.append(rules.UNKNOWN)
        return items
    return value


def _unknown(error: rules.Undecidable) -> UnknownValueError:
    return UnknownValueError(UNKNOWN_STRING_VALUE, [error.path])


def _int_list(config: Mapping[str, Any], key: str, default: Sequence[int]) -> list[int]:
    value = config.get(key)
    if value is None:
        return list(default)
    return [int(v) for v in value]


def _number(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key)
    return default if value is None else float(value)


ResourceCheck = Callable[..., list]


def _resource_policy(
    name: str,
    description: str,
    check: ResourceCheck,
    severity: Severity,
    config_schema: PolicyConfigSchema | None = None,
    options: Callable[[Mapping[str, Any]], dict] = lambda _config: {},
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        try:
            messages = check(args.resource_type, plain(args.props), args.name, **options(args.get_config()))
        except rules.Undecidable as error:
            raise _unknown(error) from None
        for message in messages:
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        config_schema=config_schema,
        severity=severity,
    )


def _validate_droplets_behind_firewall(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [
        {
            "type": r.resource_type,
            "urn": r.urn,
            "name": r.name,
            "props": plain(r.props),
            "property_dependencies": {k: [d.urn for d in deps] for k, deps in r.property_dependencies.items()},
        }
        for r in args.resources
        if r.resource_type in (rules.DROPLET, rules.DROPLET_AUTOSCALE, rules.FIREWALL)
    ]
    external = [str(t) for t in (args.get_config().get("externalFirewallTags") or [])]
    try:
        violations = rules.check_droplets_behind_firewall(resources, external)
    except rules.Undecidable as error:
        raise _unknown(error) from None
    for violation in violations:
        report_violation(violation.message, violation.urn)


def _max_hours_schema(default: float, what: str) -> PolicyConfigSchema:
    return PolicyConfigSchema(
        properties={
            "maxValidityHours": {
                "type": "integer",
                "minimum": 1,
                "default": int(default),
                "description": f"Longest validity_period_hours accepted for {what}.",
            }
        }
    )


droplet_in_vpc = _resource_policy(
    "droplet-in-vpc",
    "Droplets (and autoscale pool templates) join a VPC of their own (vpcUuid is set).",
    rules.check_droplet_in_vpc,
    Severity.HIGH,
)

droplet_ssh_keys = _resource_policy(
    "droplet-ssh-keys",
    "Droplets (and autoscale pool templates) are created with SSH keys, never a root password.",
    rules.check_droplet_ssh_keys,
    Severity.HIGH,
)

droplet_behind_firewall = StackValidationPolicy(
    name="droplet-behind-firewall",
    description=(
        "Every droplet carries a tag that a DigitalOcean cloud firewall of the stack attaches "
        "to, or is listed in a firewall's dropletIds."
    ),
    validate=_validate_droplets_behind_firewall,
    config_schema=PolicyConfigSchema(
        properties={
            "externalFirewallTags": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Tags attached to cloud firewalls managed outside this stack.",
            }
        }
    ),
    severity=Severity.CRITICAL,
)

firewall_no_public_ssh = _resource_policy(
    "firewall-no-public-ssh",
    "No cloud firewall inbound rule opens SSH to 0.0.0.0/0 or ::/0.",
    rules.check_firewall_no_public_ssh,
    Severity.CRITICAL,
    PolicyConfigSchema(
        properties={
            "sshPorts": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                "default": [rules.SSH_PORT],
                "description": "TCP ports sshd listens on.",
            }
        }
    ),
    lambda config: {"ssh_ports": _int_list(config, "sshPorts", [rules.SSH_PORT])},
)

droplet_monitoring = _resource_policy(
    "droplet-monitoring",
    "Droplets run the DigitalOcean metrics agent (monitoring is true).",
    rules.check_droplet_monitoring,
    Severity.MEDIUM,
)

droplet_user_data = _resource_policy(
    "droplet-user-data",
    "Droplets boot with hardening user_data that holds no private keys or tokens and fits in 64 KiB.",
    rules.check_droplet_user_data,
    Severity.CRITICAL,
)

tls_key_strength = _resource_policy(
    "tls-key-strength",
    "TLS private keys are ECDSA P256/P384/P521, ED25519, or RSA of at least 3072 bits.",
    rules.check_tls_key_strength,
    Severity.HIGH,
    PolicyConfigSchema(
        properties={
            "minRsaBits": {
                "type": "integer",
                "minimum": 2048,
                "default": rules.MIN_RSA_BITS,
                "description": "Smallest RSA key size accepted.",
            }
        }
    ),
    lambda config: {"min_rsa_bits": int(_number(config, "minRsaBits", rules.MIN_RSA_BITS))},
)

tls_ca_certificate = _resource_policy(
    "tls-ca-certificate",
    "CA certificates are valid for at most 10 years and may sign certificates (cert_signing).",
    rules.check_tls_ca_certificate,
    Severity.HIGH,
    _max_hours_schema(rules.MAX_CA_VALIDITY_HOURS, "CA certificates"),
    lambda config: {"max_validity_hours": _number(config, "maxValidityHours", rules.MAX_CA_VALIDITY_HOURS)},
)

tls_host_certificate = _resource_policy(
    "tls-host-certificate",
    "Host certificates are valid for at most 90 days and renewed early (earlyRenewalHours > 0).",
    rules.check_tls_host_certificate,
    Severity.MEDIUM,
    _max_hours_schema(rules.MAX_HOST_CERT_VALIDITY_HOURS, "host certificates"),
    lambda config: {"max_validity_hours": _number(config, "maxValidityHours", rules.MAX_HOST_CERT_VALIDITY_HOURS)},
)

POLICIES = [
    droplet_in_vpc,
    droplet_ssh_keys,
    droplet_behind_firewall,
    firewall_no_public_ssh,
    droplet_monitoring,
    droplet_user_data,
    tls_key_strength,
    tls_ca_certificate,
    tls_host_certificate,
]
