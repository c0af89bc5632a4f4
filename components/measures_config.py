"""Config of the deploy-time measures: the WireGuard mesh, the internal CA and
the service audit.

These keys are flat (`mesh`, `pki_domain`, ...) because Pulumi.yaml can only
type scalars and arrays of scalars; `components/config.py` adds them to the
stack model and calls `measures_problems` for the checks that relate them
to each other and to the rest of the stack.

Every default is the secure one: the mesh and the CA are on, the audit
enforces, host certificates live 30 days.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .names import DNS_LABEL_HINT, is_dns_label
from .overlay import OverlayError, check_public_key

AuditMode = Literal["enforce", "warn"]

# Hours; the same defaults as InternalPki's, restated here because the
# config reference (Pulumi.yaml, README) shows them.
HOST_CERT_HOURS = 720
HOST_CERT_RENEWAL_HOURS = 240
CA_CERT_HOURS = 87600
CA_CERT_RENEWAL_HOURS = 8760
# A host certificate longer than a year defeats the point of short-lived
# certificates (a stolen key stays useful); a CA longer than 20 years
# outlives every algorithm choice made today.
MAX_HOST_CERT_HOURS = 8760
MAX_CA_CERT_HOURS = 175200


class AdminPeer(BaseModel):
    """An admin's own machine in the mesh, given as `name:public_key`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    public_key: str


def _admin_peer(value: Any) -> Any:
    if isinstance(value, AdminPeer):
        return value
    if isinstance(value, dict):
        name, key = value.get("name"), value.get("public_key")
    elif isinstance(value, str) and ":" in value:
        name, _, key = value.partition(":")
    else:
        raise ValueError("each admin peer is 'name:wireguard-public-key', e.g. 'alice-laptop:AbC...='")
    name = str(name).strip()
    if not is_dns_label(name):
        raise ValueError(f"admin peer name must be a DNS label ({DNS_LABEL_HINT}), e.g. 'alice-laptop'")
    try:
        # The key is not echoed: someone may have pasted a private key here.
        key = check_public_key(str(key), who=f"admin peer {name}")
    except OverlayError as exc:
        raise ValueError(f"{exc}; give the output of `wg pubkey`, never the private key") from None
    return AdminPeer(name=name, public_key=key)


AdminPeerSpec = Annotated[AdminPeer, BeforeValidator(_admin_peer)]


def _domain(value: Any) -> Any:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise ValueError("must be a DNS domain such as 'internal'")
    labels = value.strip().strip(".").lower().split(".")
    if not all(is_dns_label(label) for label in labels) or len(".".join(labels)) > 200:
        raise ValueError(f"must be a DNS domain of dot-separated labels ({DNS_LABEL_HINT}), e.g. 'internal'")
    return ".".join(labels)


def _hours(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a whole number of hours, 0 or more")
    return value


Domain = Annotated[str, BeforeValidator(_domain)]
Hours = Annotated[int, BeforeValidator(_hours)]


class MeasuresFields(BaseModel):
    """The measures' keys; StackConfig inherits them (and this model's checks)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    mesh: bool = Field(True, description="Build the WireGuard mesh between all hosts over SSH after they exist.")
    mesh_admin_peers: tuple[AdminPeerSpec, ...] = Field(
        (),
        description=(
            "Admins' machines joining the mesh through the bastion, each 'name:wireguard-public-key'. "
            "Each gets a client config as a secret output."
        ),
    )
    pki: bool = Field(True, description="Create the internal CA (pulumi-tls) and issue every host a certificate.")
    pki_domain: Domain = Field("internal", description="Adds `<host>.<domain>` to each host certificate ('' for none).")
    pki_intermediate: bool = Field(
        False, description="Sign hosts with an intermediate CA, so the root's key signs only the intermediate."
    )
    pki_validity_hours: Hours = Field(HOST_CERT_HOURS, description="Host certificate lifetime in hours.")
    pki_early_renewal_hours: Hours = Field(
        HOST_CERT_RENEWAL_HOURS, description="A `pulumi up` renews a host certificate with less than this left."
    )
    pki_ca_validity_hours: Hours = Field(CA_CERT_HOURS, description="CA certificate lifetime in hours.")
    pki_ca_early_renewal_hours: Hours = Field(
        CA_CERT_RENEWAL_HOURS, description="A `pulumi up` renews the CA with less than this left."
    )
    audit_mode: AuditMode = Field(
        "enforce",
        description="`enforce`: an undeclared listener on a public interface fails `pulumi up`; `warn`: reported only.",
    )


    @model_validator(mode="after")
    def _measures(self) -> "MeasuresFields":
        problems = measures_problems(self)
        if problems:
            # config.py's error formatter splits " | " into one line per problem.
            raise ValueError(" | ".join(problems))
        return self


def measures_problems(stack: Any) -> list[str]:
    """Checks between the measures' keys and the rest of the stack (one line each)."""
    problems = []
    for label, life, early, cap, key in (
        ("host", stack.pki_validity_hours, stack.pki_early_renewal_hours, MAX_HOST_CERT_HOURS, "pki_"),
        ("CA", stack.pki_ca_validity_hours, stack.pki_ca_early_renewal_hours, MAX_CA_CERT_HOURS, "pki_ca_"),
    ):
        if not 1 <= life <= cap:
            problems.append(f"{key}validity_hours: {life} h; the {label} certificate lifetime must be 1 to {cap} hours")
        elif early >= life:
            problems.append(
                f"{key}early_renewal_hours: {early} h is not shorter than the {label} certificate "
                f"lifetime ({life} h); every `pulumi up` would renew it. Use e.g. a third of the lifetime"
            )
    if stack.pki and stack.pki_validity_hours >= stack.pki_ca_validity_hours:
        problems.append(
            "pki_validity_hours: host certificates must expire before the CA that signs them "
            f"({stack.pki_validity_hours} h >= pki_ca_validity_hours {stack.pki_ca_validity_hours} h)"
        )
    names = [p.name for p in stack.mesh_admin_peers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"mesh_admin_peers: {', '.join(repeated)} listed twice; admin peer names must be unique")
    keys = [p.public_key for p in stack.mesh_admin_peers]
    if len(set(keys)) != len(keys):
        problems.append("mesh_admin_peers: two peers share a public key; each machine needs its own key")
    if stack.mesh_admin_peers and not stack.mesh:
        problems.append("mesh_admin_peers: admin peers join the mesh, but mesh is false; set mesh: true or remove them")
    if stack.mesh_admin_peers and stack.mesh and not any(getattr(r, "bastion", False) for r in getattr(stack, "roles", {}).values()):
        problems.append(
            "mesh_admin_peers: admin peers connect through the bastion; add a role with bastion: true"
        )
    return problems
