"""WireGuard mesh, internal PKI and service audit on servers you already have.

Nothing here is DigitalOcean-specific: the three components reach each host
over SSH (pulumi-command), so they work on any Linux servers with a private
network between them. What they need from you:

* SSH as root, or as a user with passwordless sudo, from where `pulumi up`
  runs, on each server's `port` (default 22). The deploy key comes from your
  SSH agent; none goes into state.
* UDP 51820 open between the servers' private addresses (the mesh), and the
  packages `wireguard-tools` and `openssl` on each server.

Each server's declared services (what may listen, how widely) are passed to
the audit here, because no hardened-do cloud-init wrote them at boot.
"""

import pulumi

import hardened_do as hd

config = pulumi.Config()
# [{name, host, private_ip, port?, user?, services?: [{name, port, protocol?, exposure}]}]
servers = config.require_object("servers")
vpc_cidr = config.require("private_cidr")
overlay_cidr = config.get("overlay_cidr") or "10.200.0.0/24"

hosts: list[hd.HostConnection] = [
    {"name": s["name"], "host": s["host"], "port": s.get("port", 22), "user": s.get("user", "root"),
     "private_ip": s["private_ip"]}
    for s in servers
]


def declared_services(server: dict) -> dict:
    """The audit's declaration: the baseline's SSH and WireGuard plus the server's own."""
    baseline = [
        {"name": "ssh", "port": 22, "protocol": "tcp", "exposure": "public", "managed": True},
        {"name": "wireguard", "port": 51820, "protocol": "udp", "exposure": "private", "managed": True},
    ]
    own = [{"protocol": "tcp", **svc, "managed": False} for svc in server.get("services", [])]
    return {"version": 1, "role": "byo", "vpc_cidr": vpc_cidr, "overlay_cidr": overlay_cidr,
            "services": baseline + own}


mesh = hd.WireGuardMesh("mesh", {"hosts": hosts, "overlay_cidr": overlay_cidr})
pki = hd.InternalPki("pki", {"hosts": hosts, "overlay_ips": mesh.overlay_ips, "domain": "internal"})
audit = hd.ServiceAudit(
    "audit",
    {"hosts": hosts, "declarations": {s["name"]: declared_services(s) for s in servers}},
    # Audit once the mesh is up, so its listener counts as declared.
    opts=pulumi.ResourceOptions(depends_on=[mesh]),
)

pulumi.export("overlay_ips", mesh.overlay_ips)
pulumi.export("ca_cert_pem", pki.ca_cert_pem)
pulumi.export("audit_reports", audit.reports)
