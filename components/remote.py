"""How the SSH-generic components reach a host.

Mesh, PKI and audit act on hosts over SSH (pulumi-command), so they work on
droplets, on servers this program did not create, and on local test VMs
(principle 8). A host is described by a `HostConnection`; `connection_args`
turns it into what `pulumi_command.remote` takes.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import pulumi
from pulumi_command import remote

from . import hostagent

DEFAULT_SSH_PORT = 22
# The dial budget: how long a deploy keeps trying to reach a host before it
# fails. pulumi-command opens one SSH connection per command and retries a
# failed dial with a growing pause (0.1 s up to 5 s between tries).
#
# A refused connection fails in milliseconds, but a silently dropped one
# (a fail2ban or `ufw limit` DROP, a cloud firewall that does not admit the
# deploy source, a wrong address) costs a whole per-dial timeout, and behind
# some NATs the kernel's own SYN retries take 77 s or more. So each try is
# capped at DIAL_TIMEOUT_SECONDS, and DIAL_ATTEMPTS tries with the pauses
# between them give up after about 100 s (10 x 8 s + ~25 s of pauses), not
# the ~26 minutes of 20 uncapped tries. The tries still span more than the
# 30 s window of a `ufw limit` rule, so a burst that trips it recovers.
# When the budget runs out, README "A deploy cannot reach a host" lists what
# to check.
DIAL_TIMEOUT_SECONDS = 8
DIAL_ATTEMPTS = 10
DIAL_BUDGET_SECONDS = DIAL_ATTEMPTS * DIAL_TIMEOUT_SECONDS + 25
# pulumi-command passes a command's previous output to its next run as the
# environment variables PULUMI_COMMAND_STDOUT/STDERR. Over SSH that needs
# `AcceptEnv` in sshd, which our hardened sshd does not grant, so every update
# warned. Our host scripts take everything through arguments and stdin.
PASS_PREVIOUS_OUTPUT = False


class HostConnection(TypedDict):
    """One SSH-reachable Linux host."""

    name: str
    """Host name: a DNS label, unique among the hosts given to a component.
    Resource names, overlay addresses and certificate names derive from it."""
    host: pulumi.Input[str]
    """Address SSH connects to (public IP, or private IP behind `proxy`)."""
    user: str
    """SSH user. Anyone but root runs the host scripts through `sudo -n`."""
    port: NotRequired[int]
    """SSH port (default 22)."""
    private_key: NotRequired[pulumi.Input[str]]
    """Deploy key (PEM/OpenSSH text), kept secret in state. Absent or None:
    the SSH agent (SSH_AUTH_SOCK), so no key material reaches the state."""
    proxy: NotRequired["HostConnection"]
    """Jump host (the bastion) for hosts without a public address."""
    private_ip: NotRequired[pulumi.Input[str]]
    """Address on the private network (the VPC): the mesh's peer endpoint and
    a SAN of the host certificate. Required by the mesh."""
    role: NotRequired[str]
    """Role name, for reports and labels."""


def _port(conn: HostConnection) -> int:
    port = conn.get("port", DEFAULT_SSH_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"host {conn.get('name')!r}: port must be 1-65535")
    return port


def _secret_key(conn: HostConnection) -> pulumi.Output[str] | None:
    key = conn.get("private_key")
    return None if key is None else pulumi.Output.secret(key)


def connection_args(conn: HostConnection) -> remote.ConnectionArgs:
    """`HostConnection` -> `pulumi_command.remote.ConnectionArgs` (with its proxy)."""
    check_connection(conn)
    proxy = conn.get("proxy")
    proxy_args = None
    if proxy is not None:
        if proxy.get("proxy") is not None:
            # pulumi-command's ProxyConnectionArgs has no proxy of its own.
            raise ValueError(
                f"host {conn['name']!r}: its proxy {proxy['name']!r} has a proxy too; "
                "pulumi-command supports a single jump host"
            )
        proxy_args = remote.ProxyConnectionArgs(
            host=proxy["host"],
            port=_port(proxy),
            user=proxy["user"],
            private_key=_secret_key(proxy),
            dial_error_limit=DIAL_ATTEMPTS,
            per_dial_timeout=DIAL_TIMEOUT_SECONDS,
        )
    return remote.ConnectionArgs(
        host=conn["host"],
        port=_port(conn),
        user=conn["user"],
        private_key=_secret_key(conn),
        proxy=proxy_args,
        dial_error_limit=DIAL_ATTEMPTS,
        per_dial_timeout=DIAL_TIMEOUT_SECONDS,
    )


def check_connection(conn: HostConnection) -> None:
    """Reject a malformed host before any resource is registered."""
    from .overlay import check_host_name

    check_host_name(conn.get("name"))
    user = conn.get("user")
    if not isinstance(user, str) or not user or any(c.isspace() for c in user):
        raise ValueError(f"host {conn.get('name')!r}: user must be a plain user name")
    _port(conn)


def check_hosts(hosts: list[HostConnection], *, component: str) -> None:
    names = [h.get("name") for h in hosts]
    for conn in hosts:
        check_connection(conn)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{component}: host names must be unique; repeated: {', '.join(dupes)}")
