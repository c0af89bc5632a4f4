"""One hardened droplet in a VPC: the smallest useful hardened-do program.

No stack model to learn: a plain dict is validated by parse_stack_config
(every problem listed, nothing created on error), then three components.
"""

import pulumi

import hardened_do as hd

config = pulumi.Config()
stack = hd.parse_stack_config(
    {
        "region": config.get("region") or "fra1",
        "vpc_cidr": "10.20.0.0/20",
        "admin_ssh_keys": [config.require("admin_ssh_key")],
        "ssh_allowed_sources": [config.require("ssh_allowed_source")],
        "roles": {"web": {"services": [{"name": "https", "port": 443, "exposure": "public"}]}},
        "hosts": [{"name": "web-1", "role": "web"}],
    },
    name_prefix=f"minimal-{pulumi.get_stack()}",
)

keys = hd.AdminSshKeys("admin-keys", {"stack": stack})
network = hd.Network("network", {"stack": stack})
web = hd.HardenedHost(
    "web-1",
    {
        "stack": stack,
        "host_name": "web-1",
        "vpc_id": network.vpc_id,
        "tag_name": network.tags["web"].name,
        "firewall": network.firewalls["web"],
        "ssh_key_fingerprints": keys.fingerprints,
        "nat_gateway": None,
    },
)

pulumi.export("public_ip", web.public_ip)
pulumi.export("ssh", web.public_ip.apply(lambda ip: hd.ssh_command(stack.admin_user, ip)))
