"""Host certificate requests (pure functions, no Pulumi).

The host generates its key and the CSR itself (components/hostagent/tls-csr.sh); this
module decides what the CSR asks for: the subject alternative names (the
host name, its configured DNS names, its private and overlay addresses) and
the openssl request config that carries them. pulumi-tls copies a CSR's DNS
and IP SANs into the certificate it signs, so what is rendered here is what
clients verify against.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

_DNS_NAME = re.compile(
    r"(?=.{1,253}\Z)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
# Fields of an openssl config value that would end the value or start
# another directive; none of them can appear in a valid name or address.
_UNSAFE = re.compile(r"[\s\"'#$\\;=,]")
_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


class CsrError(ValueError):
    """A SAN that cannot go into a certificate; the message says which and why."""


@dataclass(frozen=True)
class Sans:
    dns: tuple[str, ...]
    ips: tuple[str, ...]


def _dns(name: str, *, host: str) -> str:
    value = name.strip().lower().rstrip(".")
    if not _DNS_NAME.fullmatch(value) or _UNSAFE.search(value):
        raise CsrError(
            f"host {host}: {name[:80]!r} is not a DNS name (labels of a-z, 0-9 and '-', "
            "dot-separated; a leading '*.' is allowed)"
        )
    return value


def _ip(value: str, *, host: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise CsrError(f"host {host}: {what} {str(value)[:60]!r} is not an IP address") from None


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return tuple(out)


def san_entries(
    host: str,
    *,
    private_ip: str | None = None,
    overlay_ip: str | None = None,
    dns_names: Sequence[str] = (),
    domain: str | None = None,
    extra_ips: Sequence[str] = (),
) -> Sans:
    """The SANs of `host`'s certificate, host name first (it is also the CN).

    `domain` adds `<host>.<domain>` (e.g. `web-1.internal`); `dns_names` are
    further names (service aliases). Addresses: private (VPC), overlay, extra.
    Duplicates are dropped, order is kept, so the CSR is stable run to run.
    """
    dns = [_dns(host, host=host)]
    if domain:
        dns.append(_dns(f"{host}.{domain.strip('.')}", host=host))
    dns += [_dns(n, host=host) for n in dns_names]
    ips = []
    if private_ip:
        ips.append(_ip(private_ip, host=host, what="private_ip"))
    if overlay_ip:
        ips.append(_ip(overlay_ip, host=host, what="overlay_ip"))
    ips += [_ip(a, host=host, what="address") for a in extra_ips]
    return Sans(_unique(dns), _unique(ips))


def openssl_config(common_name: str, sans: Sans, *, organization: str | None = None) -> str:
    """An `openssl req -config` file that asks for exactly `sans`.

    Key usage is asked for too, though pulumi-tls sets its own from
    `allowed_uses`: the CSR then reads correctly when inspected by hand.
    """
    cn = _dns(common_name, host=common_name)
    if organization is not None and not _ORG.fullmatch(organization):
        raise CsrError("organization may hold 1-64 letters, digits, spaces and - . _ only")
    alt = [f"DNS.{i} = {d}" for i, d in enumerate(sans.dns, 1)]
    alt += [f"IP.{i} = {a}" for i, a in enumerate(sans.ips, 1)]
    dn = [f"CN = {cn}"]
    if organization:
        dn.insert(0, f"O = {organization.strip()}")
    return "\n".join(
        [
            "# hardened-do host certificate request",
            "[req]",
            "prompt = no",
            "utf8 = yes",
            "distinguished_name = dn",
            "req_extensions = ext",
            "",
            "[dn]",
            *dn,
            "",
            "[ext]",
            "basicConstraints = critical, CA:FALSE",
            "keyUsage = critical, digitalSignature",
            "extendedKeyUsage = serverAuth, clientAuth",
            "subjectAltName = @alt",
            "",
            "[alt]",
            *alt,
            "",
        ]
    )
