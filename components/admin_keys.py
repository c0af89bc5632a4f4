"""Admin SSH public keys registered with DigitalOcean."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_digitalocean as do

from .config import StackConfig
from .names import do_name


class AdminSshKeysArgs(TypedDict):
    stack: StackConfig
    """The validated stack model; its admin_ssh_keys are registered."""


class AdminSshKeys(pulumi.ComponentResource):
    """One `digitalocean.SshKey` per admin public key.

    DigitalOcean injects these into root's authorized_keys at creation; the
    hardened sshd refuses root, so in practice they only matter for the
    web console. Admins log in as the admin user, whose keys cloud-init sets.
    """

    fingerprints: pulumi.Output[list]

    def __init__(self, name: str, args: AdminSshKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hardened-do:index:AdminSshKeys", name, None, opts)
        stack = args["stack"]
        self.keys = [
            do.SshKey(
                f"{name}-{i}",
                # The name is what the DigitalOcean console lists; the key's
                # own comment says whose it is.
                name=do_name(stack.name_prefix, key.comment or key.key_type),
                public_key=key.openssh,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for i, key in enumerate(stack.admin_keys())
        ]
        self.fingerprints = pulumi.Output.all(*[k.fingerprint for k in self.keys])
        self.register_outputs({"fingerprints": self.fingerprints})
