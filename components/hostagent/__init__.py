"""Host-side logic shipped to hosts over SSH, and the command lines that ship it.

The shell scripts next to this module run on the host as root (through
`sudo -n` when the SSH user is not root). They are sent inline, as
`sh -c '<script>' <name> <args...>`, so a host needs nothing from us
beforehand and the exact command is visible in `pulumi preview`. Data that
grows with the fleet (a mesh's peer list) goes through stdin instead: one
shell argument is capped at 128 KiB by Linux.

The same functions build the commands for the Pulumi components and for the
VM tests, so what is tested on booted guests is what a deploy runs.
"""

from __future__ import annotations

import re
import shlex
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Where the host-side pieces live on a host.
AUDIT_PATH = "/usr/local/lib/hardened-do/audit.py"
SERVICES_PATH = "/etc/hardened-do/services.json"
TLS_DIR = "/etc/hardened-do/tls"
CA_TRUST_PATH = "/usr/local/share/ca-certificates/hardened-do-ca.crt"
WG_DIR = "/etc/wireguard"

# The same paths as shell variables, for the scripts that use them: each
# script gets exactly the assignments it references, so the paths are
# written once, here.
_SHELL_PATHS = {
    "HD_AUDIT_PATH": AUDIT_PATH,
    "HD_SERVICES_PATH": SERVICES_PATH,
    "HD_TLS_DIR": TLS_DIR,
    "HD_CA_TRUST_PATH": CA_TRUST_PATH,
}


@lru_cache(maxsize=None)
def source(name: str) -> str:
    """The text of a file of this package (a script, or audit.py)."""
    return (HERE / name).read_text()


def _path_assignments(text: str) -> str:
    used = set(re.findall(r"\$\{?(HD_[A-Z_]+)", text))
    unknown = used - set(_SHELL_PATHS)
    if unknown:
        raise KeyError(f"host script uses undefined path variables: {', '.join(sorted(unknown))}")
    return "".join(f"{var}={shlex.quote(_SHELL_PATHS[var])}\n" for var in sorted(used))


def script(name: str) -> str:
    """A host script with the common prelude (strict mode, cloud-init wait)."""
    body = source(name)
    return source("common.sh") + "\n" + _path_assignments(body) + source(name)


def remote_command(name: str, *args: str, user: str = "root") -> str:
    """The command line that runs script `name` with `args` on a host.

    `user` is the SSH user: anyone but root goes through `sudo -n`, which
    fails at once instead of waiting for a password nobody will type.
    """
    become = "" if user == "root" else "sudo -n "
    label = name.removesuffix(".sh")
    return f"{become}sh -c {shlex.quote(script(name))} {shlex.quote(label)}" + "".join(
        " " + shlex.quote(a) for a in args
    )
