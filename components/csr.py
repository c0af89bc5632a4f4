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


# ------------------------------------------------------------------ checking a CSR
#
# The host makes the CSR, so what it asks for is only as trustworthy as the
# host. pulumi-tls signs whatever names a CSR carries; a compromised host
# could ask for another host's name or address. So before signing, the CSR
# is read back (a minimal DER reader: the standard library has none, and
# the few fields below are all we need) and compared with what this host
# should get: subject, SANs and key type.

OID_CN = "2.5.4.3"
OID_O = "2.5.4.10"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
OID_SAN = "2.5.29.17"
HOST_KEY = "ECDSA P-256"


@dataclass(frozen=True)
class CsrContents:
    subject: tuple[tuple[str, str], ...]
    key: str
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    other_sans: int


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, value, next position) of the DER element at `pos`."""
    if pos + 2 > len(data):
        raise CsrError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 3 or pos + n > len(data):
            raise CsrError("bad DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise CsrError("truncated DER")
    return tag, data[pos:pos + length], pos + length


def _children(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        tag, value, pos = _tlv(data, pos)
        out.append((tag, value))
    return out


def _oid(value: bytes) -> str:
    if not value:
        raise CsrError("empty OID")
    parts = [value[0] // 40, value[0] % 40]
    n = 0
    for b in value[1:]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(n)
            n = 0
    return ".".join(map(str, parts))


def read_csr(pem: str) -> CsrContents:
    """Subject, key type and SANs of a PEM certificate request."""
    import base64
    import binascii

    text = (pem or "").strip()
    begin, end = "-----BEGIN CERTIFICATE REQUEST-----", "-----END CERTIFICATE REQUEST-----"
    if not (text.startswith(begin) and text.endswith(end)) or text.count(begin) != 1:
        raise CsrError("not one PEM certificate request")
    try:
        der = base64.b64decode("".join(text[len(begin):-len(end)].split()), validate=True)
        ((_, request),) = _children(der)
        info = _children(_children(request)[0][1])
        # version, subject, subjectPublicKeyInfo, [0] attributes
        subject = []
        for _, rdn in _children(info[1][1]):
            for _, atv in _children(rdn):
                (_, oid), (_, value) = _children(atv)
                subject.append((_oid(oid), value.decode("utf-8")))
        (_, alg), (_, bits) = _children(info[2][1])
        alg_parts = _children(alg)
        key = "unknown"
        if _oid(alg_parts[0][1]) == OID_EC_PUBLIC_KEY and len(alg_parts) > 1 and alg_parts[1][0] == 0x06:
            curve = _oid(alg_parts[1][1])
            # An uncompressed P-256 point: 0x04 and two 32-byte coordinates.
            if curve == OID_P256 and len(bits) == 66 and bits[:2] == b"\x00\x04":
                key = HOST_KEY
            else:
                key = f"EC {curve}"
        dns, ips, other = [], [], 0
        attributes = [v for t, v in info[3:] if t == 0xA0]
        for attr in _children(attributes[0]) if attributes else []:
            (_, oid), (_, values) = _children(attr[1])
            if _oid(oid) != OID_EXTENSION_REQUEST:
                other += 1
                continue
            for _, extensions in _children(values):
                for _, ext in _children(extensions):
                    parts = _children(ext)
                    if _oid(parts[0][1]) != OID_SAN:
                        continue
                    for name_tag, name in _children(_children(parts[-1][1])[0][1]):
                        if name_tag == 0x82:
                            dns.append(name.decode("ascii"))
                        elif name_tag == 0x87 and len(name) in (4, 16):
                            ips.append(str(ipaddress.ip_address(name)))
                        else:
                            other += 1
    except CsrError:
        raise
    except (ValueError, IndexError, UnicodeDecodeError, binascii.Error):
        raise CsrError("the certificate request is not valid DER") from None
    return CsrContents(tuple(subject), key, tuple(dns), tuple(ips), other)


def check_csr(pem: str, host: str, sans: Sans, *, organization: str | None = None) -> str:
    """`pem`, if it asks for exactly what `host` should get; CsrError naming every difference otherwise.

    What the CSR asks for is named in the error (names and addresses, never
    key material): it is what a compromised host tried to obtain.
    """
    try:
        got = read_csr(pem)
    except CsrError as exc:
        raise CsrError(f"host {host}: refusing to sign its certificate request: {exc}") from None
    problems = []
    want_subject = ((OID_O, organization.strip()),) if organization else ()
    want_subject += ((OID_CN, host),)
    if sorted(got.subject) != sorted(want_subject):
        names = {OID_CN: "CN", OID_O: "O"}
        shown = ", ".join(f"{names.get(o, o)}={v[:64]}" for o, v in got.subject)
        problems.append(f"subject is [{shown}], expected CN={host}")
    if set(got.dns) != set(sans.dns):
        problems.append(f"DNS names {sorted(got.dns)} differ from {sorted(sans.dns)}")
    if set(got.ips) != set(sans.ips):
        problems.append(f"IP addresses {sorted(got.ips)} differ from {sorted(sans.ips)}")
    if got.other_sans:
        problems.append(f"{got.other_sans} other name(s) or attribute(s) that are never requested")
    if got.key != HOST_KEY:
        problems.append(f"key is {got.key}, expected {HOST_KEY}")
    if problems:
        raise CsrError(
            f"host {host}: refusing to sign its certificate request: " + "; ".join(problems)
            + ". The host made a request for something it should not get: check the host "
            "(/etc/hardened-do/tls) before trusting it again"
        )
    return pem
