"""What the host needs to build and boot test guests, and installing it.

The test bed drives ordinary Debian tools (debootstrap, qemu, vde_switch,
genisoimage, mkfs.ext4, ssh). On a Debian host where we are root they are
installed on demand with apt, so CI on a fresh machine builds and boots
instead of skipping; elsewhere the caller gets the list of what is missing
and can skip with a message that names it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# executable -> Debian package that ships it
TOOLS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "vde_switch": "vde2",
    "genisoimage": "genisoimage",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}

# Only needed to build the image, not to boot a cached one.
BUILD_TOOLS: dict[str, str] = {
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "chroot": "coreutils",
}

# Extra directories to search: debootstrap, mkfs and chroot live in sbin,
# which is not on PATH for every user.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class HostError(RuntimeError):
    """The host lacks something the test bed needs and it could not be installed."""


def which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    for d in _SBIN:
        p = Path(d, tool)
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def missing_tools(tools: dict[str, str]) -> dict[str, str]:
    return {t: pkg for t, pkg in tools.items() if which(t) is None}


def is_root() -> bool:
    return os.geteuid() == 0


def can_install() -> bool:
    return is_root() and which("apt-get") is not None


def _apt_lists_present() -> bool:
    lists = Path("/var/lib/apt/lists")
    return any(lists.glob("*_Packages")) or any(lists.glob("*_Packages.*"))


def apt_install(packages: list[str], *, log=None) -> None:
    """Install Debian packages, refreshing the package lists first if needed.

    A failed install is retried once after `apt-get update`: stale lists are
    the usual reason on a machine that was imaged a while ago.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    base = ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300"]
    install = base + ["install", "--no-install-recommends", *packages]

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    if not _apt_lists_present():
        log("testbed: apt-get update")
        run(base + ["update"])
    log(f"testbed: apt-get install {' '.join(packages)}")
    res = run(install)
    if res.returncode != 0:
        log("testbed: install failed, refreshing package lists and retrying")
        run(base + ["update"])
        res = run(install)
    if res.returncode != 0:
        raise HostError(f"apt-get install {' '.join(packages)} failed:\n{res.stdout[-3000:]}")


def ensure_tools(*, build: bool = True, install: bool | None = None, log=None) -> list[str]:
    """Make sure the host tools exist; return a description of what is still missing.

    install=None means "install when we are root with apt", which is the case
    for CI on this project's machines. An empty list means everything is there.
    """
    tools = dict(TOOLS)
    if build:
        tools.update(BUILD_TOOLS)
    missing = missing_tools(tools)
    if missing and (can_install() if install is None else install):
        apt_install(sorted(set(missing.values())), log=log)
        missing = missing_tools(tools)
    problems = [f"{tool} (Debian package {pkg})" for tool, pkg in sorted(missing.items())]
    if build and not is_root():
        problems.append("root (debootstrap and chroot need it to build the guest image)")
    return problems


def require_tools(*, build: bool = True, log=None) -> None:
    problems = ensure_tools(build=build, log=log)
    if problems:
        raise HostError("the VM test bed needs: " + ", ".join(problems))
