"""Build (once) and cache a Debian 12 guest image that boots like a `debian-12-x64` droplet.

The image is a debootstrapped bookworm root file system turned into a raw ext4
disk with `mkfs.ext4 -d` (no loop mount needed), plus the kernel and initrd
taken out of it so QEMU can boot with -kernel/-initrd (no boot loader, no
partition table). Every guest then runs on its own qcow2 overlay of it.

It carries what a DigitalOcean Debian 12 image has preinstalled, and nothing
that the hardening cloud-config installs itself (ufw, fail2ban,
unattended-upgrades, wireguard-tools): those must come from the Debian mirror
at boot, exactly as on a droplet, or the test would prove nothing.

Cache: ${HARDENED_DO_CACHE:-${XDG_CACHE_HOME:-~/.cache}/hardened-do}/vm-images/<key>/
where <key> hashes everything that goes into the build; a build happens in a
temporary directory that is renamed into place when complete, under a lock, so
an interrupted or concurrent build never leaves a half image behind.

    python -m tests.testbed.image build [--force]   # build if needed, print the directory
    python -m tests.testbed.image path              # print the directory if cached (exit 1 if not)
    python -m tests.testbed.image info              # the manifest of the cached image
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import host

# Bump when the build procedure changes in a way the hashed inputs below do not show.
BUILD_VERSION = "1"

SUITE = "bookworm"
ARCH = "amd64"
DISK_SIZE = "4G"  # sparse; a 1 GiB droplet has 25 GB, the tests need well under 2

# What a DigitalOcean debian-12-x64 droplet has before cloud-init runs, and why
# each is here. Order does not matter (the key sorts them).
PACKAGES: tuple[str, ...] = (
    # boot: kernel (+ initramfs-tools, kmod), systemd as init, udev for devices
    "linux-image-amd64",
    "systemd-sysv",
    "udev",
    "dbus",  # hostnamectl/timedatectl and logind talk over it
    # cloud-init; python3-cffi-backend satisfies a virtual dependency that
    # debootstrap's resolver cannot pick by itself
    "cloud-init",
    "python3-cffi-backend",
    "cloud-guest-utils",  # growpart; cloud-init recommends it and DO ships it
    "locales",  # DO images have it; cloud-init's locale module needs it
    # network: cloud-init 22.4 on bookworm renders network-config v2 to
    # /etc/network/interfaces.d (the "eni" renderer) when ifupdown is present,
    # as on Debian's own cloud images; DHCP on the public NIC needs dhclient
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "iputils-ping",
    "netbase",
    # remote access and the usual admin tools of a droplet
    "openssh-server",
    "sudo",
    "curl",
    "wget",
    "ca-certificates",
    "less",
    "nano",
    "vim-tiny",
    # Debian "important" packages a full install has and minbase lacks:
    # apt-utils (debconf configures packages installed at boot up front
    # instead of warning), cron and logrotate (what packages installed at
    # boot expect to find for their periodic jobs and logs)
    "apt-utils",
    "cron",
    "logrotate",
    # nftables ("important" too): DO's debian-12-x64 has `nft`, and the
    # hardened user-data filters with it from its first boot stage
    "nftables",
)

# Run inside the new root (chroot) after debootstrap. Part of the cache key.
CUSTOMIZE = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# Same archive layout as a droplet: main suite, updates and security.
cat > /etc/apt/sources.list <<EOF
deb @MIRROR@ bookworm main
deb @MIRROR@ bookworm-updates main
deb @SECURITY@ bookworm-security main
EOF
if [ -n "@GUEST_PROXY@" ]; then
    echo 'Acquire::http::Proxy "@GUEST_PROXY@";' > /etc/apt/apt.conf.d/01proxy
fi

# Root is the whole virtio disk (no partition table); the kernel mounts it rw.
echo '/dev/vda / ext4 rw,discard,errors=remount-ro 0 1' > /etc/fstab

# A Debian system has its default UTF-8 locale generated; without it
# cloud-init's locale module fails (Debian's locale-gen only builds what
# /etc/locale.gen lists).
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' /etc/locale.gen
locale-gen >/dev/null
update-locale LANG=C.UTF-8

# The guest's cloud seed is a NoCloud ISO, standing in for DO's metadata
# service; listing only it keeps ds-identify from probing other clouds.
cat > /etc/cloud/cloud.cfg.d/90_testbed_datasource.cfg <<EOF
datasource_list: [ NoCloud, None ]
EOF

# Per-instance identity is created on first boot, never baked in: ssh host
# keys (cloud-init generates them), machine-id (systemd), hostname (cloud-init).
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
echo localhost > /etc/hostname
cat > /etc/hosts <<EOF
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
# debootstrap copied the build host's resolver; the guest gets its own by DHCP
rm -f /etc/resolv.conf

apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/*
"""


def cache_root() -> Path:
    base = os.environ.get("HARDENED_DO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hardened-do"
    )
    return Path(base) / "vm-images"


@dataclass(frozen=True)
class Image:
    """A built, cached guest image (read-only; guests boot from overlays)."""

    directory: Path
    key: str

    @property
    def disk(self) -> Path:
        return self.directory / "disk.img"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def manifest(self) -> dict:
        return json.loads((self.directory / "manifest.json").read_text())


# ---------------------------------------------------------------- apt sources


def _host_source_uris() -> list[tuple[str, list[str]]]:
    """(uri, suites) of every deb source on this host, one-line and deb822 formats."""
    out: list[tuple[str, list[str]]] = []
    files = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]
    for name in files:
        try:
            text = Path(name).read_text()
        except OSError:
            continue
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    out.append((uri, fields.get("suites", "").split()))
        elif name.endswith(".list"):
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb":
                    out.append((parts[1], [parts[2]]))
    return out


def apt_mirrors() -> tuple[str, str]:
    """The Debian and Debian-security mirrors this host uses (overridable by env)."""
    main = os.environ.get("HARDENED_DO_DEBIAN_MIRROR")
    security = os.environ.get("HARDENED_DO_DEBIAN_SECURITY_MIRROR")
    for uri, suites in _host_source_uris():
        uri = uri.rstrip("/")
        if not any(s.startswith(SUITE) for s in suites):
            continue
        if main is None and uri.endswith("/debian"):
            main = uri
        if security is None and uri.endswith("/debian-security"):
            security = uri
    return main or "http://deb.debian.org/debian", security or "http://deb.debian.org/debian-security"


def apt_proxy() -> str | None:
    """The HTTP proxy the host's apt uses, if any (env http_proxy wins)."""
    env = os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY")
    if env:
        return env
    try:
        out = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return None
    m = re.search(r'^Acquire::http::Proxy "([^"]+)";', out, re.MULTILINE)
    if m and m.group(1).upper() not in ("DIRECT", "FALSE", ""):
        return m.group(1)
    return None


def guest_proxy(proxy: str | None) -> str:
    """The host's proxy as seen from a guest on QEMU user networking (host = 10.0.2.2)."""
    if not proxy:
        return ""
    return re.sub(r"//(localhost|127\.[0-9.]+|\[::1\])(?=[:/]|$)", "//10.0.2.2", proxy)


# ---------------------------------------------------------------- build


def _inputs(packages: tuple[str, ...]) -> dict:
    mirror, security = apt_mirrors()
    return {
        "build_version": BUILD_VERSION,
        "suite": SUITE,
        "arch": ARCH,
        "disk_size": DISK_SIZE,
        "packages": sorted(set(packages)),
        "mirror": mirror,
        "security": security,
        "guest_proxy": guest_proxy(apt_proxy()),
        "customize": CUSTOMIZE,
    }


def image_key(packages: tuple[str, ...] = PACKAGES) -> str:
    blob = json.dumps(_inputs(packages), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cached_image(packages: tuple[str, ...] = PACKAGES) -> Image | None:
    key = image_key(packages)
    d = cache_root() / key
    if (d / "manifest.json").is_file():
        return Image(d, key)
    return None


def _log(msg: str) -> None:
    print(f"testbed: {msg}", file=sys.stderr, flush=True)


def _run(argv: list[str], logfile: Path, env: dict | None = None) -> None:
    with logfile.open("a") as fh:
        fh.write(f"\n$ {' '.join(argv)}\n")
        fh.flush()
        res = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        tail = logfile.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{argv[0]} failed (exit {res.returncode}); log {logfile}:\n{tail}")


def build_image(
    packages: tuple[str, ...] = PACKAGES, *, force: bool = False, log=_log
) -> Image:
    """Return the cached image for `packages`, building it first if needed."""
    inputs = _inputs(packages)
    key = image_key(packages)
    root = cache_root()
    final = root / key
    if not force and (final / "manifest.json").is_file():
        return Image(final, key)

    host.require_tools(build=True, log=log)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent builder finishes first; we reuse its result
        if not force and (final / "manifest.json").is_file():
            return Image(final, key)
        tmp = root / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _build_into(tmp, inputs, log)
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log(f"image ready: {final}")
    return Image(final, key)


def _build_into(tmp: Path, inputs: dict, log) -> None:
    t0 = time.monotonic()
    rootfs = tmp / "rootfs"
    buildlog = tmp / "build.log"
    debs = cache_root() / "debs"  # kept across builds: a changed package list downloads only the difference
    debs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LC_ALL="C", DEBIAN_FRONTEND="noninteractive")
    env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    proxy = apt_proxy()
    if proxy:
        env["http_proxy"] = proxy

    log(f"debootstrap {inputs['suite']} ({len(inputs['packages'])} extra packages) from {inputs['mirror']}; log {buildlog}")
    _run(
        [
            host.which("debootstrap") or "debootstrap",
            "--variant=minbase",
            f"--arch={inputs['arch']}",
            f"--cache-dir={debs}",
            "--include=" + ",".join(inputs["packages"]),
            inputs["suite"],
            str(rootfs),
            inputs["mirror"],
        ],
        buildlog,
        env,
    )
    t_debootstrap = time.monotonic() - t0

    log("customizing")
    script = (
        inputs["customize"]
        .replace("@MIRROR@", inputs["mirror"])
        .replace("@SECURITY@", inputs["security"])
        .replace("@GUEST_PROXY@", inputs["guest_proxy"])
    )
    _run(["chroot", str(rootfs), "/bin/sh", "-c", script], buildlog, env)

    versions = subprocess.run(
        ["chroot", str(rootfs), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout

    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise RuntimeError(f"no kernel/initrd in {rootfs / 'boot'}")
    shutil.copy2(kernels[-1], tmp / "vmlinuz")
    shutil.copy2(initrds[-1], tmp / "initrd.img")

    log(f"mkfs.ext4 -d ({inputs['disk_size']} sparse)")
    # Inode tables are zeroed now (sparsely, in the file) rather than lazily by
    # the guest kernel, which would cost every TCG guest CPU time at boot.
    _run(
        [
            host.which("mkfs.ext4") or "mkfs.ext4",
            "-q", "-F", "-L", "root",
            "-E", "lazy_itable_init=0,lazy_journal_init=0",
            "-d", str(rootfs),
            str(tmp / "disk.img"),
            inputs["disk_size"],
        ],
        buildlog,
        env,
    )
    shutil.rmtree(rootfs)
    # mkfs writes the zeroed inode tables and journal out; holes keep the
    # cached image (and any copy of it) at the size of its contents
    if shutil.which("fallocate"):
        subprocess.run(["fallocate", "--dig-holes", str(tmp / "disk.img")], check=False)
    for f in ("disk.img", "vmlinuz", "initrd.img"):
        os.chmod(tmp / f, 0o444)  # guests write to overlays only

    manifest = {
        **{k: v for k, v in inputs.items() if k != "customize"},
        "kernel": kernels[-1].name,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": {"debootstrap": round(t_debootstrap, 1), "total": round(time.monotonic() - t0, 1)},
        "installed": dict(line.split("\t", 1) for line in versions.splitlines() if "\t" in line),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log(f"built in {manifest['seconds']['total']} s (debootstrap {manifest['seconds']['debootstrap']} s)")


def ensure_image(log=_log) -> Image:
    """The default image, built on first use."""
    return build_image(log=log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.testbed.image", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the image if it is not cached; print its directory")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("path", help="print the cached image's directory (exit 1 if not built)")
    sub.add_parser("info", help="print the cached image's manifest")
    sub.add_parser("key", help="print the cache key of the current package list and build script")
    sub.add_parser("prune", help="remove cached images other than the current one")
    args = ap.parse_args(argv)

    if args.cmd == "build":
        t0 = time.monotonic()
        img = build_image(force=args.force)
        _log(f"{time.monotonic() - t0:.1f} s")
        print(img.directory)
        return 0
    if args.cmd == "key":
        print(image_key())
        return 0
    if args.cmd == "prune":
        keep = image_key()
        for d in cache_root().iterdir() if cache_root().is_dir() else ():
            if d.is_dir() and (d / "manifest.json").is_file() and d.name != keep:
                shutil.rmtree(d)
                _log(f"removed {d}")
        return 0
    img = cached_image()
    if img is None:
        print(f"no cached image for key {image_key()} under {cache_root()}", file=sys.stderr)
        return 1
    if args.cmd == "path":
        print(img.directory)
    else:
        m = img.manifest
        summary = {k: v for k, v in m.items() if k != "installed"}
        summary["installed_count"] = len(m.get("installed", {}))
        summary["disk_bytes_used"] = os.stat(img.disk).st_blocks * 512
        print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
