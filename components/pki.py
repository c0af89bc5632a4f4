"""Internal PKI: a CA in Pulumi state, host keys on the hosts.

The CA (ECDSA P-384, pulumi-tls) is the one private key this program keeps
in state, as a secret (principle 5). Hosts generate their own ECDSA P-256 key
and a CSR (components/hostagent/tls-csr.sh); Pulumi reads back only the CSR, checks
that it asks for exactly this host's subject, SANs and key type
(components/csr.py `check_csr`: a host cannot obtain a certificate for
another host's name or address; a mismatch fails the update), signs it
with `tls.LocallySignedCert`, and pushes the certificate, its chain and the
CA certificate back (components/hostagent/tls-install.sh), the CA also into the system
trust store so every host trusts every other host's certificate.

Host certificates are short-lived (30 days by default) with an early renewal
window (10 days): any `pulumi up` inside the window replaces the certificate
and re-installs it. Schedule an `up` (or `up --target` of the certificates)
at least every 20 days, or raise `validity_hours`.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import pulumi
import pulumi_tls as tls
from pulumi_command import remote

from .csr import check_csr, openssl_config, san_entries
from .remote import PASS_PREVIOUS_OUTPUT, HostConnection, check_hosts, connection_args, hostagent

CA_KEY_CURVE = "P384"
HOST_CERT_USES = ["digital_signature", "server_auth", "client_auth"]
CA_CERT_USES = ["cert_signing", "crl_signing", "digital_signature"]


class InternalPkiArgs(TypedDict):
    hosts: list[HostConnection]
    """Hosts that get a certificate (their `private_ip` becomes an IP SAN)."""
    common_name: NotRequired[str]
    """CN of the root CA (default 'hardened-do internal CA')."""
    organization: NotRequired[str]
    """O of every certificate (default 'hardened-do')."""
    intermediate: NotRequired[bool]
    """Sign hosts with an intermediate CA under the root (default False). The
    root then signs only the intermediate, which can be rotated alone."""
    domain: NotRequired[str]
    """Adds `<host>.<domain>` as a DNS SAN of each host, e.g. 'internal'."""
    dns_names: NotRequired[dict[str, list[str]]]
    """Extra DNS SANs by host name (service aliases)."""
    overlay_ips: NotRequired[dict[str, pulumi.Input[str]]]
    """Mesh addresses by host name (WireGuardMesh.overlay_ips), as IP SANs."""
    validity_hours: NotRequired[int]
    """Host certificate lifetime (default 720 = 30 days)."""
    early_renewal_hours: NotRequired[int]
    """Renew when less than this is left (default 240 = 10 days)."""
    ca_validity_hours: NotRequired[int]
    """CA certificate lifetime (default 87600 = 10 years)."""
    ca_early_renewal_hours: NotRequired[int]
    """Renew the CA when less than this is left (default 8760 = 1 year)."""
    reload_commands: NotRequired[dict[str, str]]
    """Command run on a host after its certificate changed, by host name,
    e.g. 'systemctl reload nginx'."""


class InternalPki(pulumi.ComponentResource):
    """A root CA (optionally an intermediate) and one host certificate per host."""

    ca_cert_pem: pulumi.Output[str]
    """The root certificate: what clients trust."""
    issuer_cert_pem: pulumi.Output[str]
    """The certificate that signs hosts (the intermediate, or the root)."""
    host_cert_pems: pulumi.Output[dict]
    """Host certificate by host name."""
    host_cert_expiry: pulumi.Output[dict]
    """Host certificate end of validity (RFC 3339) by host name."""

    def __init__(self, name: str, args: InternalPkiArgs, opts: pulumi.ResourceOptions | None = None):
        hosts = list(args["hosts"])
        check_hosts(hosts, component="InternalPki")
        organization = args.get("organization", "hardened-do")
        validity = args.get("validity_hours", 720)
        renewal = args.get("early_renewal_hours", 240)
        ca_validity = args.get("ca_validity_hours", 87600)
        ca_renewal = args.get("ca_early_renewal_hours", 8760)
        for label, life, early in (("host", validity, renewal), ("CA", ca_validity, ca_renewal)):
            if not 0 <= early < life:
                raise ValueError(
                    f"InternalPki: the {label} early renewal window ({early} h) must be shorter than "
                    f"the {label} certificate lifetime ({life} h)"
                )
        # Fail before anything is registered: every SAN is known or checked
        # here, except addresses that are outputs of other resources.
        dns_names = args.get("dns_names") or {}
        unknown = sorted(set(dns_names) - {h["name"] for h in hosts})
        if unknown:
            raise ValueError(f"InternalPki: dns_names for unknown hosts: {', '.join(unknown)}")
        for h in hosts:
            san_entries(h["name"], dns_names=dns_names.get(h["name"], ()), domain=args.get("domain"))

        super().__init__("hardened-do:index:InternalPki", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        with_intermediate = args.get("intermediate", False)

        self.ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve=CA_KEY_CURVE, opts=child)
        self.ca_cert = tls.SelfSignedCert(
            f"{name}-ca-cert",
            private_key_pem=self.ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=args.get("common_name", "hardened-do internal CA"), organization=organization
            ),
            is_ca_certificate=True,
            max_path_length=1 if with_intermediate else 0,
            allowed_uses=CA_CERT_USES,
            validity_period_hours=ca_validity,
            early_renewal_hours=ca_renewal,
            set_subject_key_id=True,
            opts=child,
        )
        signer_key, signer_cert = self.ca_key.private_key_pem, self.ca_cert.cert_pem
        chain = pulumi.Output.from_input("")
        if with_intermediate:
            self.intermediate_key = tls.PrivateKey(
                f"{name}-intermediate-key", algorithm="ECDSA", ecdsa_curve=CA_KEY_CURVE, opts=child
            )
            request = tls.CertRequest(
                f"{name}-intermediate-csr",
                private_key_pem=self.intermediate_key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(
                    common_name=f"{args.get('common_name', 'hardened-do internal CA')} (hosts)",
                    organization=organization,
                ),
                opts=child,
            )
            self.intermediate_cert = tls.LocallySignedCert(
                f"{name}-intermediate-cert",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=self.ca_key.private_key_pem,
                ca_cert_pem=self.ca_cert.cert_pem,
                is_ca_certificate=True,
                max_path_length=0,
                allowed_uses=CA_CERT_USES,
                validity_period_hours=ca_validity,
                early_renewal_hours=ca_renewal,
                set_subject_key_id=True,
                opts=child,
            )
            signer_key, signer_cert = self.intermediate_key.private_key_pem, self.intermediate_cert.cert_pem
            chain = self.intermediate_cert.cert_pem

        overlay_ips = args.get("overlay_ips") or {}
        reloads = args.get("reload_commands") or {}
        self.csr_commands, self.certs, self.install_commands = {}, {}, {}
        for h in hosts:
            host = h["name"]
            sans = pulumi.Output.all(h.get("private_ip"), overlay_ips.get(host)).apply(
                lambda ips, host=host: san_entries(
                    host, private_ip=ips[0], overlay_ip=ips[1],
                    dns_names=dns_names.get(host, ()), domain=args.get("domain"),
                )
            )
            request_config = sans.apply(
                lambda s, host=host: openssl_config(host, s, organization=organization)
            )
            csr = remote.Command(
                f"{name}-csr-{host}",
                add_previous_output_in_env=PASS_PREVIOUS_OUTPUT,
                connection=connection_args(h),
                create=hostagent.remote_command("tls-csr.sh", hostagent.TLS_DIR, user=h["user"]),
                stdin=request_config,
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-cert-{host}",
                # Signed only if it asks for exactly this host's names,
                # addresses and key type (a mismatch fails the update).
                cert_request_pem=pulumi.Output.all(csr.stdout, sans).apply(
                    lambda v, host=host: None if v[0] is None
                    else check_csr(v[0], host, v[1], organization=organization)
                ),
                ca_private_key_pem=signer_key,
                ca_cert_pem=signer_cert,
                allowed_uses=HOST_CERT_USES,
                validity_period_hours=validity,
                early_renewal_hours=renewal,
                set_subject_key_id=True,
                opts=child,
            )
            install = remote.Command(
                f"{name}-install-{host}",
                add_previous_output_in_env=PASS_PREVIOUS_OUTPUT,
                connection=connection_args(h),
                create=pulumi.Output.all(cert.cert_pem, chain, self.ca_cert.cert_pem).apply(
                    lambda pems, user=h["user"], reload=reloads.get(host, ""): hostagent.remote_command(
                        "tls-install.sh",
                        hostagent.TLS_DIR,
                        pems[0].strip(),
                        pems[1].strip(),
                        pems[2].strip(),
                        hostagent.CA_TRUST_PATH,
                        reload,
                        user=user,
                    )
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[csr]),
            )
            self.csr_commands[host], self.certs[host], self.install_commands[host] = csr, cert, install

        self.ca_cert_pem = self.ca_cert.cert_pem
        self.issuer_cert_pem = signer_cert
        self.host_cert_pems = pulumi.Output.all(**{h: c.cert_pem for h, c in self.certs.items()}) if self.certs \
            else pulumi.Output.from_input({})
        self.host_cert_expiry = pulumi.Output.all(**{h: c.validity_end_time for h, c in self.certs.items()}) \
            if self.certs else pulumi.Output.from_input({})
        self.register_outputs(
            {
                "ca_cert_pem": self.ca_cert_pem,
                "issuer_cert_pem": self.issuer_cert_pem,
                "host_cert_pems": self.host_cert_pems,
                "host_cert_expiry": self.host_cert_expiry,
            }
        )
