"""hardened-do: wiring only. Config -> components -> exports."""

import pulumi

from components.config import load_from_pulumi
from components.host import create_hosts, ssh_command
from components.network import Network
from components.ssh_keys import AdminSshKeys

# Parsed and validated before any resource is registered: a bad config stops
# here with every problem listed, and nothing is created.
stack = load_from_pulumi()

keys = AdminSshKeys("admin-keys", {"stack": stack})
network = Network("network", {"stack": stack})

hosts = create_hosts(stack, network, keys.fingerprints)

bastion = stack.bastion_host
jump_ip = hosts[bastion.name].public_ip if bastion else pulumi.Output.from_input(None)


def _host_output(name: str) -> pulumi.Output[dict]:
    host = hosts[name]
    behind_bastion = bastion is not None and name != bastion.name
    target = host.private_ip if behind_bastion else host.public_ip
    return pulumi.Output.all(host.private_ip, host.public_ip, target, jump_ip).apply(
        lambda v: {
            "role": stack.host(name).role,
            "private_ip": v[0],
            "public_ip": v[1],
            "ssh": ssh_command(stack.admin_user, v[2], v[3] if behind_bastion else None),
        }
    )


pulumi.export("vpc_id", network.vpc_id)
pulumi.export("firewall_ids", network.firewall_ids)
pulumi.export("hosts", {name: _host_output(name) for name in hosts})
