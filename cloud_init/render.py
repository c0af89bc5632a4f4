"""Render the cloud-config user-data of one host (a pure function).

The cloud-config is built as a data structure and dumped as YAML, so quoting
can never break it; file contents come from the templates next to this module,
rendered with undefined variables as errors.

What is deliberately *not* in user-data (principle 4): secrets and private
keys, and anything that changes when other hosts change (mesh peers,
certificates, peer addresses). user-data is readable by every process on the
droplet through the metadata service, and changing it replaces the droplet.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import jinja2
import yaml

from ..components.config import USER_DATA_BUDGET, USER_DATA_LIMIT, StackConfig
from ..components.hostagent import SERVICES_PATH
from ..components.services import expected_listeners, ufw_rules

TEMPLATES = Path(__file__).parent / "templates"

SSH_GROUP = "ssh-users"

# Algorithms both OpenSSH 9.2 (Debian 12) and 9.6 (Ubuntu 24.04) offer, in the
# order of ssh-audit's "Hardened Debian 12 (version 2)" and "Hardened Ubuntu
# Server 24.04 LTS (version 1)" policies, which compare lists in order.
_PUBKEY = (
    "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,"
    "sk-ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
    "ecdsa-sha2-nistp521,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,"
    "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com"
).split(",")
_HOST_KEYS = [
    "ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com",
]
_CIPHERS = [
    "chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes256-ctr",
    "aes192-ctr", "aes128-gcm@openssh.com", "aes128-ctr",
]
SSH_ALGORITHMS = {
    "debian-12-x64": {
        "kex": [
            "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
            "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
            "diffie-hellman-group-exchange-sha256",
        ],
        "ciphers": _CIPHERS,
        "macs": ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"],
        "host_keys": _HOST_KEYS,
        "pubkey": _PUBKEY,
    },
    "ubuntu-24-04-x64": {
        "kex": [
            "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
            "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group16-sha512",
        ],
        "ciphers": _CIPHERS,
        "macs": ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"],
        "host_keys": _HOST_KEYS,
        "pubkey": _PUBKEY,
    },
}
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-hardened-do.conf"
PACKAGES = (
    "ufw",
    "fail2ban",
    # fail2ban's systemd backend needs the journal bindings; they are only a
    # recommendation of the fail2ban package.
    "python3-systemd",
    "unattended-upgrades",
    "wireguard-tools",
)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _template(name: str, **context) -> str:
    return _env().get_template(name).render(**context)


def _file(path: str, content: str, permissions: str = "0644") -> dict:
    return {"path": path, "content": content, "owner": "root:root", "permissions": permissions}


def fail2ban_ignore_sources(stack: StackConfig, role: str) -> list[str]:
    """Sources fail2ban never bans on `role`'s hosts, besides loopback.

    The entry point (the bastion, or every public host without one) exempts
    the admin networks: a lock-out of the admins' own network is worse than
    a few more guesses at keys from a network they control. Never the whole
    internet: with `allow_ssh_from_anywhere` fail2ban keeps counting.
    """
    bastion = stack.bastion_role
    if bastion is not None and role != bastion:
        return []
    return [s for s in stack.ssh_allowed_sources if not s.endswith("/0")]


def build_cloud_config(stack: StackConfig, host_name: str) -> dict:
    """The cloud-config of `host_name` as a dict (what `render_user_data` dumps)."""
    host = stack.host(host_name)
    is_bastion = stack.bastion_role == host.role
    admin_keys = [k.openssh for k in stack.admin_keys()]
    firewall_cmds = [r.command() for r in ufw_rules(stack, host.role)]

    files = [
        _file(
            SSHD_DROPIN,
            _template(
                "sshd_hardening.conf.j2",
                ssh_group=SSH_GROUP,
                bastion=is_bastion,
                algorithms=SSH_ALGORITHMS[stack.image_for(host)],
            ),
            "0600",
        ),
        _file("/usr/local/sbin/hardened-do-sshd", _template("apply-sshd.sh.j2"), "0755"),
        _file("/usr/local/sbin/hardened-do-firewall", _template("firewall.sh.j2", rules=firewall_cmds), "0755"),
        _file(
            "/etc/fail2ban/jail.d/hardened-do.local",
            _template("fail2ban.local.j2", ignore_sources=fail2ban_ignore_sources(stack, host.role)),
        ),
        # Named after the distributions' own 20auto-upgrades and
        # 50unattended-upgrades so ours are read later and win, without
        # editing files the packages own.
        _file("/etc/apt/apt.conf.d/21hardened-do-auto-upgrades", _template("auto-upgrades.conf.j2")),
        _file(
            "/etc/apt/apt.conf.d/52hardened-do-unattended-upgrades",
            _template(
                "unattended-upgrades.conf.j2",
                automatic_reboot=stack.unattended_upgrades.automatic_reboot,
                reboot_time=stack.unattended_upgrades.reboot_time,
            ),
        ),
        _file("/etc/sysctl.d/60-hardened-do.conf", _template("sysctl.conf.j2")),
        # cloud-init's locale module calls update-locale (package `locales`)
        # unless the system locale already matches; writing it first makes the
        # module a no-op on images with and without that package.
        _file("/etc/default/locale", "LANG=C.UTF-8\n"),
        _file(
            SERVICES_PATH,
            json.dumps(expected_listeners(stack, host.role), indent=2, sort_keys=True) + "\n",
        ),
    ]

    config: dict = {
        "disable_root": True,
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["ed25519", "rsa"],
        "locale": "C.UTF-8",
        "timezone": "Etc/UTC",
        "groups": [SSH_GROUP],
        "users": [
            {
                "name": stack.admin_user,
                "gecos": "hardened-do administrator",
                "groups": ["sudo", SSH_GROUP],
                "shell": "/bin/bash",
                "lock_passwd": True,
                # Passwords are locked, so sudo cannot ask for one; access to
                # this account is guarded by the SSH key alone.
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": admin_keys,
            }
        ],
        "write_files": files,
        "package_update": True,
        "package_upgrade": stack.package_upgrade,
        "packages": list(PACKAGES),
        "runcmd": [
            ["passwd", "--lock", "root"],
            ["/usr/local/sbin/hardened-do-sshd"],
            ["/usr/local/sbin/hardened-do-firewall"],
            ["systemctl", "restart", "systemd-sysctl.service"],
            ["systemctl", "enable", "--now", "fail2ban.service"],
            ["systemctl", "restart", "fail2ban.service"],
            ["systemctl", "enable", "--now", "apt-daily.timer", "apt-daily-upgrade.timer"],
        ],
    }
    if stack.trusted_ca_pem:
        config["ca_certs"] = {"trusted": [stack.trusted_ca_pem]}
    return config


# libyaml's emitter when PyYAML has it (the wheels do): the pure-Python one
# dominates program evaluation time for large fleets.
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    pass


def _str_presenter(dumper, data: str):
    # Multi-line file contents as literal blocks: readable in `render` output
    # and in the DigitalOcean console.
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


# Rendered role bodies of the last few stacks, by the stack object's identity.
# Every host of a role shares its body, and a fleet of hundreds of hosts should
# not render it hundreds of times. Models are frozen, so one object always
# renders the same; each entry holds the stack itself, so its id cannot be
# reused by another object while the entry exists.
_ROLE_BODIES: OrderedDict[int, tuple[StackConfig, dict[tuple[str, str], str]]] = OrderedDict()
_ROLE_BODIES_KEPT = 4


def _role_body(stack: StackConfig, host_name: str) -> str:
    host = stack.host(host_name)
    entry = _ROLE_BODIES.get(id(stack))
    if entry is None or entry[0] is not stack:
        entry = (stack, {})
        _ROLE_BODIES[id(stack)] = entry
        while len(_ROLE_BODIES) > _ROLE_BODIES_KEPT:
            _ROLE_BODIES.popitem(last=False)
    bodies = entry[1]
    # Everything in it depends on the role and the image only.
    key = (host.role, stack.image_for(host))
    if key not in bodies:
        config = build_cloud_config(stack, host_name)
        bodies[key] = yaml.dump(config, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return bodies[key]


def render_user_data(stack: StackConfig, host_name: str) -> str:
    """The exact user-data string the program sends for `host_name`.

    Identical for every host of a role but for the comment naming the host:
    nothing in it depends on the other hosts (principle 4).
    """
    host = stack.host(host_name)
    return f"#cloud-config\n# hardened-do: host {host.name}, role {host.role}\n{_role_body(stack, host_name)}"


def user_data_problems(stack: StackConfig) -> list[str]:
    """Hosts whose user-data is over our budget, as `hosts[i]: ...` problems."""
    problems = []
    for i, host in enumerate(stack.hosts):
        size = len(render_user_data(stack, host.name).encode())
        if size > USER_DATA_BUDGET:
            problems.append(
                f"hosts[{i}]: user_data of {host.name!r} is {size} bytes, over the "
                f"{USER_DATA_BUDGET}-byte budget (DigitalOcean's hard limit is {USER_DATA_LIMIT}); "
                "shorten trusted_ca_pem or the admin key list"
            )
    return problems
