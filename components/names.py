"""Name patterns shared by the config model and the SSH-generic components."""

from __future__ import annotations

import re

# RFC 1123 host label, lowercase only: it becomes a host name, a DigitalOcean
# resource name, a tag, a WireGuard peer comment and a certificate SAN.
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

DNS_LABEL_HINT = "1-63 characters, lowercase a-z, 0-9 and '-', not starting or ending with '-'"


def is_dns_label(value: object) -> bool:
    """True for a lowercase DNS label; `fullmatch`, so no trailing newline slips through."""
    return isinstance(value, str) and DNS_LABEL.fullmatch(value) is not None


# The group whose members may log in over SSH (sshd's AllowGroups).
SSH_GROUP = "ssh-users"

# Users and groups that already exist on the supported images (Debian 12 and
# Ubuntu 24.04 DigitalOcean images, with the packages cloud-init installs), and
# the names we create ourselves. An admin_user among them would be skipped or
# half-created by cloud-init, and the admins locked out. The one list.
SYSTEM_ACCOUNTS = frozenset(
    {
        # base-passwd (both images)
        "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news",
        "uucp", "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup",
        # base groups
        "adm", "tty", "disk", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape",
        "sudo", "audio", "dip", "operator", "src", "shadow", "utmp", "video", "sasl",
        "plugdev", "staff", "users", "input", "sgx", "kvm", "render", "crontab", "netdev",
        "lxd", "admin", "wheel", "sambashare", "lpadmin", "ssl-cert", "ssh", "tss",
        "landscape", "fwupd-refresh", "polkitd", "pollinate", "uuidd", "dnsmasq", "tcpdump",
        "usbmux", "rdma", "_ssh", "_apt", "_chrony", "_laurel", "chrony", "ntp",
        "messagebus", "syslog", "sshd", "systemd-journal", "systemd-network",
        "systemd-resolve", "systemd-timesync", "systemd-coredump", "systemd-oom",
        "systemd-journal-remote", "statd", "ubuntu", "debian", "do-agent", "droplet-agent",
        "dhcpcd", "cloud-init", "wireguard", "fail2ban", "ufw", "unattended-upgrades",
        # ours
        SSH_GROUP,
    }
)


def is_system_account(name: str) -> bool:
    """True for a name the images (or we) already use; any systemd-* name too."""
    return name in SYSTEM_ACCOUNTS or name.startswith(("systemd-", "_"))


_DO_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def do_name(*parts: str, limit: int = 64) -> str:
    """A DigitalOcean resource name from parts: joined by '-', anything outside
    a closed alphabet (letters, digits, '.', '_', '@', '-') replaced by '-',
    cut to `limit` characters. Names built from free text (key comments) go
    through here; so do names built from validated labels, at no cost."""
    joined = "-".join(p for p in parts if p)
    return _DO_NAME_UNSAFE.sub("-", joined)[:limit].strip("-.") or "hd"
