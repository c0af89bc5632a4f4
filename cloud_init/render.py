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
import re
import shlex
from functools import lru_cache
from pathlib import Path

import jinja2
import yaml

from ..components.config import USER_DATA_BUDGET, USER_DATA_LIMIT, StackConfig
from ..components.hostagent import SERVICES_PATH
from ..components.memo import StackMemo
from ..components.names import SSH_GROUP
from ..components.reboots import reboot_time
from ..components.services import expected_listeners, ufw_rules

from . import early_firewall

TEMPLATES = Path(__file__).parent / "templates"


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


# ---- one escaping helper per target --------------------------------------------
#
# Every value a template interpolates goes through the helper for the file it
# lands in, even where the config parser already guarantees the value is
# harmless: the parser and the renderer are checked apart, and either alone
# keeps a hostile value out. A value a target cannot hold raises instead of
# being mangled.

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UnsafeValue(ValueError):
    """A value that cannot be written safely into its target file."""


def _text(value: object, target: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UnsafeValue(f"{target}: expected a string or an integer, got {type(value).__name__}")
    text = str(value)
    if _CONTROL.search(text):
        raise UnsafeValue(f"{target}: a value holds a control character")
    return text


def shell_quote(value: object) -> str:
    """One POSIX shell word (single-quoted unless it is plainly safe)."""
    return shlex.quote(_text(value, "shell"))


_SSHD_TOKEN = re.compile(r"[A-Za-z0-9@._:,+/=-]+")


def sshd_value(value: object) -> str:
    """One sshd_config argument: a bare token (sshd's quoting cannot hold every
    character, so anything outside a closed alphabet is refused)."""
    text = _text(value, "sshd")
    if not _SSHD_TOKEN.fullmatch(text):
        raise UnsafeValue("sshd: a value holds characters sshd_config cannot take unquoted")
    return text


def apt_string(value: object) -> str:
    """A double-quoted apt.conf string (apt has no escape for '"')."""
    text = _text(value, "apt")
    if '"' in text or "\\" in text:
        raise UnsafeValue("apt: a value holds a quote or a backslash")
    return f'"{text}"'


def ufw_comment(value: object) -> str:
    """A UFW rule comment, as a shell word: UFW stores it in its rules file."""
    text = _text(value, "ufw comment")
    if not re.fullmatch(r"[A-Za-z0-9 ._-]{1,64}", text):
        raise UnsafeValue("ufw comment: only letters, digits, space, '.', '_' and '-'")
    return shlex.quote(text)


def config_token(value: object) -> str:
    """One bare word of a whitespace-separated config file (modprobe.d)."""
    text = _text(value, "config")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        raise UnsafeValue("config: a word may hold only letters, digits, '_', '.' and '-'")
    return text


def fail2ban_address(value: object) -> str:
    """One entry of a fail2ban address list (`ignoreip`): an address or CIDR,
    space-separated from the next, so nothing but address characters."""
    text = _text(value, "fail2ban")
    if not re.fullmatch(r"[0-9A-Fa-f.:/]{2,49}", text):
        raise UnsafeValue("fail2ban: an address list entry must be an IP address or CIDR")
    return text


def yaml_comment(value: object) -> str:
    """One YAML comment line (the only text of user-data not dumped as data)."""
    text = _text(value, "yaml comment")
    if not re.fullmatch(r"[A-Za-z0-9 :,._-]*", text):
        raise UnsafeValue("yaml comment: only letters, digits, space and : , . _ -")
    return f"# {text}"


FILTERS = {
    "shell": shell_quote,
    "sshd": sshd_value,
    "apt_string": apt_string,
    "ufw_comment": ufw_comment,
    "fail2ban_address": fail2ban_address,
    "config_token": config_token,
}


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    return env


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
    firewall_rules = ufw_rules(stack, host.role)
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
        _file(
            "/usr/local/sbin/hardened-do-firewall",
            _template("firewall.sh.j2", rules=firewall_rules, **_filter_names()),
            "0755",
        ),
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
                debian=stack.image_for(host).startswith("debian-"),
                reboot_time=_reboot_time or reboot_time(stack, host_name),
            ),
        ),
        _file("/etc/sysctl.d/60-hardened-do.conf", _template("sysctl.conf.j2")),
        _file("/usr/local/sbin/hardened-do-baseline", _template("baseline.sh.j2"), "0755"),
        _file("/etc/modprobe.d/hardened-do.conf", _template("modprobe.conf.j2", modules=BLOCKED_MODULES, firewire=FIREWIRE)),
        _file("/etc/security/limits.d/60-hardened-do.conf", _template("limits.conf.j2")),
        _file("/etc/issue", banner),
        # cloud-init's locale module calls update-locale (package `locales`)
        # unless the system locale already matches; writing it first makes the
        # module a no-op on images with and without that package.
        _file("/etc/default/locale", "LANG=C.UTF-8\n"),
        _file(
            SERVICES_PATH,
            json.dumps(expected_listeners(stack, host.role), separators=(",", ":"), sort_keys=True) + "\n",
        ),
    ]
    if stack.audit_trail:
        files += [
            _file("/etc/audit/rules.d/60-hardened-do.rules", _template("audit.rules.j2"), "0640"),
            _file("/etc/default/sysstat", 'ENABLED="true"\n'),
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
        "packages": [*PACKAGES, *(AUDIT_PACKAGES if stack.audit_trail else ())],
        "runcmd": [
            ["passwd", "--lock", "root"],
            ["/usr/local/sbin/hardened-do-sshd"],
            ["/usr/local/sbin/hardened-do-firewall"],
            ["/usr/local/sbin/hardened-do-baseline"],
            ["systemctl", "restart", "systemd-sysctl.service"],
            *([["augenrules", "--load"]] if stack.audit_trail else []),
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


# Every host of a role (and image) shares its body: rendered once per stack.
_ROLE_BODIES = StackMemo()


def _role_body(stack: StackConfig, host_name: str, baked: bool = False) -> str:
    host = stack.host(host_name)
    # Everything in it depends on the role and the image only.
    key = (host.role, stack.image_for(host), baked)

    def render() -> str:
        config = build_cloud_config(stack, host_name, baked=baked, _reboot_time=_REBOOT_PLACEHOLDER)
        return yaml.dump(config, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)

    return _ROLE_BODIES.get(stack, key, render)


def render_user_data(stack: StackConfig, host_name: str, *, baked: bool = False) -> str:
    """The exact user-data string the program sends for `host_name`.

    Identical for every host of a role but for the comment naming the host
    and its reboot minute (`components.reboots`), which depends on the names
    of the hosts listed before it in its role only.
    """
    host = stack.host(host_name)
    comment = yaml_comment(f"hardened-do: host {host.name}, role {host.role}")
    body = _role_body(stack, host_name, baked).replace(_REBOOT_PLACEHOLDER, reboot_time(stack, host_name))
    return f"#cloud-config\n{comment}\n{body}"


def _indented(text: str, indent: int = 6) -> int:
    """Bytes `text` takes as a YAML literal block indented by `indent`."""
    return len(text.encode()) + indent * (text.count("\n") + 1)


def user_data_parts(stack: StackConfig, host_name: str) -> dict[str, int]:
    """Approximate bytes of the parts of a host's user-data that the config
    makes grow, by what the user would change to shrink it."""
    role = stack.host(host_name).role
    rules = ufw_rules(stack, role)
    # Rules the baseline derives from the admin networks: SSH on the entry
    # point, and WireGuard on the bastion for admin peers when the mesh is on.
    admin_networks = set(stack.ssh_allowed_sources)
    ssh_rules = [
        r for r in rules
        if r.comment == "hardened-do ssh" or (r.comment == "hardened-do wireguard" and r.source in admin_networks)
    ]
    service_rules = [r for r in rules if r not in ssh_rules]
    listeners = json.dumps(expected_listeners(stack, role), separators=(",", ":"), sort_keys=True)
    keys = stack.admin_ssh_keys
    return {
        f"the services of role {role!r} and their allowed_sources "
        f"({len(service_rules)} UFW rules plus the audit's service list)":
            sum(_indented(r.command()) for r in service_rules) + _indented(listeners),
        f"ssh_allowed_sources ({len(ssh_rules)} UFW rules)": sum(_indented(r.command()) for r in ssh_rules),
        "trusted_ca_pem": _indented(stack.trusted_ca_pem) if stack.trusted_ca_pem else 0,
        f"admin_ssh_keys ({len(keys)} keys)": sum(len(k) + 8 for k in keys),
    }


def user_data_problems(stack: StackConfig) -> list[str]:
    """Hosts whose user-data is over our budget, as `hosts[i]: ...` problems.

    The message names the part of the config that makes the user-data big,
    so the fix it suggests is the one that helps."""
    problems = []
    for i, host in enumerate(stack.hosts):
        size = len(render_user_data(stack, host.name).encode())
        if size > USER_DATA_BUDGET:
            parts = sorted(user_data_parts(stack, host.name).items(), key=lambda kv: -kv[1])
            (biggest, biggest_size), rest = parts[0], [p for p in parts[1:] if p[1]]
            others = "; then " + ", ".join(f"{name} ~{n} bytes" for name, n in rest) if rest else ""
            problems.append(
                f"hosts[{i}]: user_data of {host.name!r} is {size} bytes, over the "
                f"{USER_DATA_BUDGET}-byte budget (DigitalOcean's hard limit is {USER_DATA_LIMIT}); "
                f"most of it is {biggest} (~{biggest_size} bytes){others}. Shrink that first"
            )
    return problems
