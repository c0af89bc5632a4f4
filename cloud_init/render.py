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
from functools import lru_cache
from pathlib import Path

import jinja2
import yaml

# cloud_init/ and components/ are top-level packages in the repository and
# subpackages of hardened_do once installed; import the sibling either way.
if "." in __package__:
    from ..components.config import StackConfig
    from ..components.reboots import reboot_time
    from ..components.services import expected_listeners, ufw_rules
else:
    from components.config import StackConfig
    from components.reboots import reboot_time
    from components.services import expected_listeners, ufw_rules

from . import early_firewall

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
SERVICES_FILE = "/etc/hardened-do/services.json"
PACKAGES = (
    "ufw",
    "fail2ban",
    # fail2ban's systemd backend needs the journal bindings; they are only a
    # recommendation of the fail2ban package.
    "python3-systemd",
    "unattended-upgrades",
    "wireguard-tools",
)
# What Lynis looks for beyond the seven measures: an audit trail (auditd),
# process accounting and activity history (acct, sysstat).
AUDIT_PACKAGES = ("auditd", "acct", "sysstat")
# Drivers a droplet never needs: uncommon network protocols (Lynis NETW-3200),
# USB and FireWire storage (USB-1000, STRG-1846), rarely used file systems.
# squashfs stays: Ubuntu's snaps mount it.
BLOCKED_MODULES = (
    "dccp", "sctp", "rds", "tipc", "usb-storage", "firewire-core", "firewire-ohci",
    "cramfs", "freevxfs", "jffs2", "hfs", "hfsplus", "udf",
)
FIREWIRE = ("firewire-core", "firewire-ohci")
# Stands in for the host's reboot minute in the cached per-role body.
_REBOOT_PLACEHOLDER = "@@hardened-do-reboot-time@@"


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


def boot_filter_command(stack: StackConfig, role: str) -> str:
    """The `bootcmd` entry that filters inbound traffic until UFW takes over."""
    return _template("boot-filter.sh.j2", rules=early_firewall.rule_lines(ufw_rules(stack, role)), **_filter_names())


def _filter_names() -> dict:
    return {
        "table": early_firewall.TABLE,
        "chain": early_firewall.CHAIN,
        "state_dir": early_firewall.STATE_DIR,
        "handed_over": early_firewall.HANDED_OVER,
        "log": early_firewall.LOG,
    }


def build_cloud_config(
    stack: StackConfig, host_name: str, *, baked: bool = False, _reboot_time: str | None = None
) -> dict:
    """The cloud-config of `host_name` as a dict (what `render_user_data` dumps).

    `baked`: the droplet boots from an image that already has `PACKAGES` and
    `AUDIT_PACKAGES` (a snapshot built from this cloud-config), so the boot
    skips the package steps; everything else is applied as usual.
    """
    host = stack.host(host_name)
    is_bastion = stack.bastion_role == host.role
    admin_keys = [k.openssh for k in stack.admin_keys()]
    firewall_cmds = [r.command() for r in ufw_rules(stack, host.role)]
    banner = _template("issue.j2")

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
        _file("/usr/local/sbin/hardened-do-firewall", _template("firewall.sh.j2", rules=firewall_cmds, **_filter_names()), "0755"),
        _file("/etc/fail2ban/jail.d/hardened-do.local", _template("fail2ban.local.j2")),
        # Named after the distributions' own 20auto-upgrades and
        # 50unattended-upgrades so ours are read later and win, without
        # editing files the packages own.
        _file("/etc/apt/apt.conf.d/21hardened-do-auto-upgrades", _template("auto-upgrades.conf.j2")),
        _file(
            "/etc/apt/apt.conf.d/52hardened-do-unattended-upgrades",
            _template(
                "unattended-upgrades.conf.j2",
                automatic_reboot=stack.unattended_upgrades.automatic_reboot,
                debian=stack.image_for(host).startswith("debian-"),
                reboot_time=_reboot_time or reboot_time(stack, host_name),
            ),
        ),
        _file("/etc/sysctl.d/60-hardened-do.conf", _template("sysctl.conf.j2")),
        _file("/usr/local/sbin/hardened-do-baseline", _template("baseline.sh.j2"), "0755"),
        _file("/etc/modprobe.d/hardened-do.conf", _template("modprobe.conf.j2", modules=BLOCKED_MODULES, firewire=FIREWIRE)),
        _file("/etc/security/limits.d/60-hardened-do.conf", _template("limits.conf.j2")),
        _file("/etc/issue", banner),
        _file("/etc/audit/rules.d/60-hardened-do.rules", _template("audit.rules.j2"), "0640"),
        _file("/etc/default/sysstat", 'ENABLED="true"\n'),
        # cloud-init's locale module calls update-locale (package `locales`)
        # unless the system locale already matches; writing it first makes the
        # module a no-op on images with and without that package.
        _file("/etc/default/locale", "LANG=C.UTF-8\n"),
        _file(
            SERVICES_FILE,
            json.dumps(expected_listeners(stack, host.role), separators=(",", ":"), sort_keys=True) + "\n",
        ),
    ]

    config: dict = {
        # Before anything else, on every boot until UFW has taken over.
        "bootcmd": [boot_filter_command(stack, host.role)],
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
        "package_update": not baked,
        "package_upgrade": stack.package_upgrade and not baked,
        "packages": [*PACKAGES, *AUDIT_PACKAGES],
        "runcmd": [
            ["passwd", "--lock", "root"],
            ["/usr/local/sbin/hardened-do-sshd"],
            ["/usr/local/sbin/hardened-do-firewall"],
            ["/usr/local/sbin/hardened-do-baseline"],
            ["systemctl", "restart", "systemd-sysctl.service"],
            ["augenrules", "--load"],
            ["systemctl", "enable", "--now", "fail2ban.service"],
            ["systemctl", "restart", "fail2ban.service"],
            ["systemctl", "enable", "--now", "apt-daily.timer", "apt-daily-upgrade.timer"],
        ],
    }
    if baked:
        del config["packages"]
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


def _role_body(stack: StackConfig, host_name: str, baked: bool = False) -> str:
    host = stack.host(host_name)
    # Everything in it depends on the role and the image only.
    key = ("cloud-config", host.role, stack.image_for(host), baked)
    if key not in stack._derived:
        config = build_cloud_config(stack, host_name, baked=baked, _reboot_time=_REBOOT_PLACEHOLDER)
        stack._derived[key] = yaml.dump(
            config, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000
        )
    return stack._derived[key]


def render_user_data(stack: StackConfig, host_name: str, *, baked: bool = False) -> str:
    """The exact user-data string the program sends for `host_name`.

    Identical for every host of a role but for the comment naming the host
    and its reboot minute (`components.reboots`), which depends on the names
    of the hosts listed before it in its role only.
    """
    host = stack.host(host_name)
    body = _role_body(stack, host_name, baked).replace(_REBOOT_PLACEHOLDER, reboot_time(stack, host_name))
    return f"#cloud-config\n# hardened-do: host {host.name}, role {host.role}\n{body}"
