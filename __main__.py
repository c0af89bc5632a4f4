"""hardened-do: wiring only. Config -> components -> exports."""

import pulumi

from hardened_do.components.admin_keys import AdminSshKeys
from hardened_do.components.host import create_hosts, ssh_commands
from hardened_do.components.network import Network
from hardened_do.components.stack import load_from_pulumi

# Parsed and validated before any resource is registered: a bad config stops
# here with every problem listed, and nothing is created.
stack = load_from_pulumi()

keys = AdminSshKeys("admin-keys", {"stack": stack})
network = Network("network", {"stack": stack})

hosts = create_hosts(stack, network, keys.fingerprints)
logins = ssh_commands(stack, hosts)


def _host_output(name: str) -> pulumi.Output[dict]:
    host = hosts[name]
    return pulumi.Output.all(host.private_ip, host.public_ip, logins[name]).apply(
        lambda v: {"role": stack.host(name).role, "private_ip": v[0], "public_ip": v[1], "ssh": v[2]}
    )


pulumi.export("vpc_id", network.vpc_id)
pulumi.export("firewall_ids", network.firewall_ids)
pulumi.export("hosts", {name: _host_output(name) for name in hosts})
