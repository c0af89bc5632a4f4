"""hardened-do: wiring only. Config -> components -> exports."""

import pulumi

from hardened_do.components.admin_keys import AdminSshKeys
from hardened_do.components.audit import ServiceAudit
from hardened_do.components.host import create_hosts, ssh_commands
from hardened_do.components.measures import audit_args, bastion_exemption, host_connections, mesh_args, pki_args
from hardened_do.components.mesh import WireGuardMesh
from hardened_do.components.network import Network
from hardened_do.components.pki import InternalPki
from hardened_do.components.stack import load_from_pulumi

# Parsed and validated before any resource is registered: a bad config stops
# here with every problem listed, and nothing is created.
stack = load_from_pulumi()

keys = AdminSshKeys("admin-keys", {"stack": stack})
network = Network("network", {"stack": stack})

hosts = create_hosts(stack, network, keys.fingerprints)
logins = ssh_commands(stack, hosts)

# The measures that act on running hosts, over SSH through the bastion. Their
# commands take the droplets' addresses as inputs, so they run only after the
# droplets exist; a preview opens no connection.
connections = host_connections(stack, hosts)
# First, so the burst of sessions that follows cannot get the bastion banned.
exemption = bastion_exemption(stack, connections)
after_exemption = pulumi.ResourceOptions(depends_on=[exemption] if exemption else [])
mesh = WireGuardMesh("mesh", mesh_args(stack, connections), opts=after_exemption) if stack.mesh else None
pki = InternalPki(
    "pki", pki_args(stack, connections, mesh.overlay_ips if mesh else None), opts=after_exemption
) if stack.pki else None
audit = ServiceAudit(
    "audit",
    audit_args(stack, connections),
    # Audit the finished host: after the mesh listens and the certificates are in.
    opts=pulumi.ResourceOptions(depends_on=[m for m in (exemption, mesh, pki) if m is not None]),
)


def _host_output(name: str) -> dict:
    # One output per field: the addresses and the overlay address are known
    # at preview, the certificate's expiry only once it is signed.
    host = hosts[name]
    out = {"role": stack.host(name).role, "private_ip": host.private_ip, "public_ip": host.public_ip,
           "ssh": logins[name]}
    if mesh:
        out["overlay_ip"] = mesh.overlay_ips[name]
    if pki:
        out["cert_expiry"] = pki.host_cert_expiry.apply(lambda e: e.get(name))
    return out


pulumi.export("vpc_id", network.vpc_id)
pulumi.export("firewall_ids", network.firewall_ids)
pulumi.export("hosts", {name: _host_output(name) for name in hosts})
if pki:
    pulumi.export("ca_cert_pem", pki.ca_cert_pem)
if mesh:
    pulumi.export("wireguard_admin_configs", mesh.admin_configs)
pulumi.export("audit", audit.reports)
