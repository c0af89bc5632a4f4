"""Boot Debian 12 guests under QEMU (TCG) the way DigitalOcean boots a droplet.

Each guest gets:

* a fresh qcow2 overlay on the cached image (testbed.image), so every boot is
  a first boot: cloud-init runs all its per-instance modules, and network
  config is applied (cloud-init applies it only on a new instance);
* a NoCloud seed ISO standing in for DO's metadata service: the caller's
  user-data verbatim, meta-data (instance-id, local-hostname, public-keys =
  the droplet's `ssh_keys`), DO-like vendor-data, and a network-config v2
  that matches the NICs by MAC;
* NIC 1 "public" (eth0): QEMU user networking, DHCP 10.0.2.15, the host seen
  as 10.0.2.2 (which is also the source address of every forwarded
  connection), guest port 22 forwarded from 127.0.0.1:<free port>, plus any
  extra forwarded ports; outbound traffic goes through the host, so apt in
  the guest reaches the same Debian mirror as the host;
* NIC 2 "VPC" (eth1), when in a Cluster: a vde_switch segment shared by the
  cluster's guests, with a static private address.

Guests are always torn down (qemu and vde_switch killed, temp files removed):
by the context managers, by an atexit hook, and, should this process die
without running either, by the kernel (the children get PR_SET_PDEATHSIG and
vde_switch exits when its stdin pipe closes).
"""

from __future__ import annotations

import atexit
import ctypes
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from . import host
from .image import Image, ensure_image

# DigitalOcean's metadata service hands every droplet a vendor-data
# cloud-config that lets the droplet's SSH keys (meta-data public-keys) log in
# as root and manages /etc/hosts. The caller's user-data overrides it, as on DO.
DO_VENDOR_DATA = """#cloud-config
disable_root: false
manage_etc_hosts: true
"""

GUEST_PUBLIC_IP = "10.0.2.15"  # QEMU user networking's DHCP address for the guest
HOST_IP_FROM_GUEST = "10.0.2.2"  # the host (and the source of forwarded connections)
_USER_NET = ipaddress.ip_network("10.0.2.0/24")

_FINISHED_RE = re.compile(r"Cloud-init v\. \S+ finished at .*?Up ([0-9.]+) seconds")
_MODULE_FAILED_RE = re.compile(r"\[WARNING\]: Running module (\S+) .* failed")
_HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class GuestError(RuntimeError):
    """A guest did not boot, answer or finish in time; the message ends with its console."""


# ------------------------------------------------------------------ cleanup

_live: set = set()
_live_lock = threading.Lock()


def _register(obj) -> None:
    with _live_lock:
        _live.add(obj)


def _unregister(obj) -> None:
    with _live_lock:
        _live.discard(obj)


@atexit.register
def _shutdown_everything() -> None:
    with _live_lock:
        objs = list(_live)
    # guests before switches, so no qemu is left writing to a dead socket
    for obj in sorted(objs, key=lambda o: isinstance(o, VpcSwitch)):
        try:
            obj.shutdown()
        except Exception:
            pass


_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. The signal fires when the
    # *thread* that forked exits, which is why it is only used when spawning
    # from the main thread (see _preexec).
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _preexec() -> Callable[[], None] | None:
    return _die_with_parent if threading.current_thread() is threading.main_thread() else None


def _stop_process(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_ports_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def free_port(proto: str = "tcp") -> int:
    """A port on 127.0.0.1 that is free now and not handed out before by this process."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with _ports_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("no free port on 127.0.0.1")


_WORKDIR_PREFIX = "hardened-do-vm"


def _make_workdir(label: str) -> Path:
    """A fresh temp directory that records its owner, so a later run can sweep it
    up if this process is killed before it can remove it."""
    _sweep_stale_workdirs()
    d = Path(tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}-{label}-"))
    (d / "owner.pid").write_text(str(os.getpid()))
    return d


def _sweep_stale_workdirs() -> None:
    for d in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}-*"):
        try:
            pid = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def _random_mac(prefix: str = "52:54:00") -> str:
    return prefix + "".join(f":{b:02x}" for b in secrets.token_bytes(3))


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class SshKey:
    """An SSH key pair on disk: `path` is the private key, `path`.pub the public one."""

    path: Path

    @property
    def public(self) -> str:
        return Path(f"{self.path}.pub").read_text().strip()

    def __fspath__(self) -> str:
        return str(self.path)


def make_ssh_key(directory: str | os.PathLike, name: str = "id_ed25519", comment: str = "hardened-do-testbed") -> SshKey:
    """Generate a passphrase-less ed25519 key pair in `directory`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, stdin=subprocess.DEVNULL, capture_output=True,
    )
    return SshKey(path)


@dataclass(frozen=True)
class SshResult:
    rc: int  # ssh's exit code: the command's, 255 for an SSH failure, 124 on our timeout
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self) -> "SshResult":
        if self.rc != 0:
            raise GuestError(f"ssh command failed with exit {self.rc}: {self.stderr.strip()[-2000:]}")
        return self


@dataclass(frozen=True)
class CloudInitStatus:
    status: str  # "done", "error", "degraded done", ... as `cloud-init status` says
    detail: str  # the rest of `cloud-init status --long`, or failed modules from the console
    source: str  # "ssh" or "console"

    @property
    def ok(self) -> bool:
        return self.status == "done"


def _parse_status(text: str) -> CloudInitStatus | None:
    m = re.search(r"^status:\s*(.+)$", text, re.MULTILINE)
    if not m:
        return None
    return CloudInitStatus(m.group(1).strip(), text.strip(), "ssh")


# ------------------------------------------------------------------ VPC segment


class VpcSwitch:
    """A private L2 segment (a vde_switch) that guests join on their second NIC."""

    def __init__(self, directory: str | os.PathLike, cidr: str = "10.10.0.0/24"):
        self.network = ipaddress.ip_network(cidr)
        if self.network.overlaps(_USER_NET):
            raise ValueError(f"VPC {cidr} overlaps QEMU user networking {_USER_NET}")
        self.directory = Path(directory)
        self.sock = self.directory / "sw"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "VpcSwitch":
        if self.proc is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "vde_switch.log", "wb")
        _register(self)
        # stdin stays an open pipe: vde_switch exits on EOF there, so it cannot
        # outlive this process even if we are killed without cleanup.
        self.proc = subprocess.Popen(
            [host.which("vde_switch") or "vde_switch", "--sock", str(self.sock), "--mode", "600", "--dirmode", "700"],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_preexec(),
        )
        log.close()
        deadline = time.monotonic() + 10
        while not (self.sock / "ctl").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = (self.directory / "vde_switch.log").read_text(errors="replace")
                self.shutdown()
                raise GuestError(f"vde_switch did not start: {out}")
            time.sleep(0.05)
        return self

    def shutdown(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
            except OSError:
                pass
            _stop_process(proc)
        _unregister(self)

    def __enter__(self) -> "VpcSwitch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()


# ------------------------------------------------------------------ guest


class Guest:
    """One QEMU guest booted from the cached image with the given user-data.

    user_data      the cloud-init user-data, verbatim (any format cloud-init takes)
    ssh_user/key   the default login for ssh()/wait_for_ssh(); a user the
                   user-data creates, or "root" with a key from public_keys
    public_keys    the droplet's `ssh_keys`: served as meta-data public-keys,
                   which DO's vendor-data lets log in as root
    vpc, vpc_ip    the segment to join on eth1 and the static address there
                   ("10.10.0.11/24"); Cluster fills both in
    forward_ports  extra guest ports to reach from the host: 443 or ("udp", 51820);
                   host_port() tells where each one landed
    """

    def __init__(
        self,
        name: str,
        user_data: str | bytes,
        *,
        image: Image | None = None,
        vpc: VpcSwitch | None = None,
        vpc_ip: str | None = None,
        ssh_user: str = "root",
        ssh_key: SshKey | str | os.PathLike | None = None,
        public_keys: Sequence[str] = (),
        forward_ports: Iterable[int | tuple[str, int]] = (),
        memory_mb: int = 1024,
        cpus: int = 1,
        vendor_data: str | None = DO_VENDOR_DATA,
        network_config: str | None = None,
        instance_id: str | None = None,
        kernel_args: str = "",
        workdir: str | os.PathLike | None = None,
    ):
        if not _HOSTNAME_RE.match(name):
            raise ValueError(f"guest name {name!r} must be a lowercase hostname label")
        if (vpc is None) != (vpc_ip is None):
            raise ValueError("vpc and vpc_ip go together")
        if vpc_ip is not None:
            iface = ipaddress.ip_interface(vpc_ip)
            if "/" not in vpc_ip:
                raise ValueError(f"vpc_ip {vpc_ip!r} needs a prefix length, e.g. 10.10.0.11/24")
            if iface.ip not in vpc.network:
                raise ValueError(f"vpc_ip {vpc_ip} is outside the VPC {vpc.network}")
        self.name = name
        self.user_data = user_data
        self.image = image
        self.vpc = vpc
        self.vpc_ip = vpc_ip
        self.ssh_user = ssh_user
        self.ssh_key = Path(ssh_key) if ssh_key is not None else None
        self.public_keys = list(public_keys)
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.vendor_data = vendor_data
        self.network_config = network_config
        self.instance_id = instance_id or f"i-{name}-{secrets.token_hex(4)}"
        self.kernel_args = kernel_args
        self.public_mac = _random_mac()
        self.vpc_mac = _random_mac()
        self._forwards: list[tuple[str, int]] = [("tcp", 22)]
        for fwd in forward_ports:
            proto, port = ("tcp", fwd) if isinstance(fwd, int) else fwd
            if (proto, port) not in self._forwards:
                self._forwards.append((proto, int(port)))
        self._host_ports: dict[tuple[str, int], int] = {}
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else _make_workdir(name)
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None  # time.monotonic() when qemu was started
        self.timings: dict[str, float] = {}  # event -> seconds after started_at
        self._lock = threading.Lock()
        # set by shutdown() and by an interrupted Cluster wait: waiting loops
        # in other threads give up at once instead of polling a dead guest
        self._cancel = threading.Event()

    # -------------------------------------------------------------- addresses

    @property
    def vpc_address(self) -> str | None:
        """The VPC address without prefix length ("10.10.0.11")."""
        return str(ipaddress.ip_interface(self.vpc_ip).ip) if self.vpc_ip else None

    @property
    def ssh_port(self) -> int:
        return self.host_port(22)

    def host_port(self, guest_port: int, proto: str = "tcp") -> int:
        """The 127.0.0.1 port on the host that forwards to `guest_port` in the guest."""
        try:
            return self._host_ports[(proto, guest_port)]
        except KeyError:
            raise KeyError(f"{proto} port {guest_port} is not forwarded; pass it in forward_ports") from None

    # -------------------------------------------------------------- files

    @property
    def console_path(self) -> Path:
        return self.workdir / "console.log"

    def console_log(self) -> str:
        """Everything the guest wrote to its serial console (kernel, systemd, cloud-init)."""
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def console_tail(self, lines: int = 40) -> str:
        return "\n".join(self.console_log().splitlines()[-lines:])

    def _meta_data(self) -> str:
        meta = {"instance-id": self.instance_id, "local-hostname": self.name}
        if self.public_keys:
            meta["public-keys"] = self.public_keys
        return json.dumps(meta, indent=2) + "\n"  # JSON is YAML

    def _default_network_config(self) -> str:
        # Names as on a droplet: eth0 public, eth1 VPC. Matching by MAC does
        # not depend on PCI enumeration order.
        eths: dict[str, dict] = {
            "eth0": {"match": {"macaddress": self.public_mac}, "set-name": "eth0", "dhcp4": True},
        }
        if self.vpc_ip:
            eths["eth1"] = {
                "match": {"macaddress": self.vpc_mac},
                "set-name": "eth1",
                "dhcp4": False,
                "addresses": [self.vpc_ip],
            }
        return json.dumps({"version": 2, "ethernets": eths}, indent=2) + "\n"

    def _write_seed(self) -> Path:
        seed = self.workdir / "seed"
        seed.mkdir(exist_ok=True)
        ud = self.user_data.encode() if isinstance(self.user_data, str) else self.user_data
        (seed / "user-data").write_bytes(ud)
        (seed / "meta-data").write_text(self._meta_data())
        (seed / "network-config").write_text(self.network_config or self._default_network_config())
        files = ["user-data", "meta-data", "network-config"]
        if self.vendor_data is not None:
            (seed / "vendor-data").write_text(self.vendor_data)
            files.append("vendor-data")
        iso = self.workdir / "seed.iso"
        subprocess.run(
            [host.which("genisoimage") or "genisoimage", "-quiet", "-output", str(iso),
             "-volid", "cidata", "-joliet", "-rock", *files],
            cwd=seed, check=True, capture_output=True,
        )
        return iso

    def _qemu_argv(self, overlay: Path, seed: Path) -> list[str]:
        assert self.image is not None
        fwds = "".join(
            f",hostfwd={proto}:127.0.0.1:{hport}-:{gport}" for (proto, gport), hport in self._host_ports.items()
        )
        cmdline = f"root=/dev/vda rw console=ttyS0,115200n8 net.ifnames=0 {self.kernel_args}".strip()
        argv = [
            host.which("qemu-system-x86_64") or "qemu-system-x86_64",
            "-name", self.name,
            # KVM is not usable here; TCG with every CPU feature it emulates
            "-accel", "tcg", "-cpu", "max",
            "-m", str(self.memory_mb), "-smp", str(self.cpus),
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd), "-append", cmdline,
            # the overlay is thrown away, so host-side write caching is safe and fast
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
            "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
            "-netdev", f"user,id=pub{fwds}",
            "-device", f"virtio-net-pci,netdev=pub,mac={self.public_mac}",
        ]
        if self.vpc is not None:
            argv += [
                "-netdev", f"vde,id=vpc,sock={self.vpc.sock}",
                "-device", f"virtio-net-pci,netdev=vpc,mac={self.vpc_mac}",
            ]
        # entropy for sshd key generation and Python at boot without waiting
        argv += ["-device", "virtio-rng-pci", "-serial", f"file:{self.console_path}"]
        return argv

    # -------------------------------------------------------------- lifecycle

    def start(self) -> "Guest":
        """Start qemu and return at once; the guest boots in the background."""
        with self._lock:
            if self.proc is not None:
                return self
            self._cancel.clear()
            if self.image is None:
                self.image = ensure_image()
            problems = host.ensure_tools(build=False)
            if problems:
                raise GuestError("cannot boot a guest, missing: " + ", ".join(problems))
            self.workdir.mkdir(parents=True, exist_ok=True)
            _register(self)
            overlay = self.workdir / "disk.qcow2"
            subprocess.run(
                [host.which("qemu-img") or "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                 "-b", str(self.image.disk.resolve()), str(overlay)],
                check=True, capture_output=True,
            )
            seed = self._write_seed()
            # A forwarded port can be taken between choosing and qemu binding
            # it; qemu then exits at once, and we try other ports.
            for attempt in range(5):
                self._host_ports = {fwd: free_port(fwd[0]) for fwd in self._forwards}
                qlog = open(self.workdir / "qemu.log", "wb")
                self.started_at = time.monotonic()
                self.proc = subprocess.Popen(
                    self._qemu_argv(overlay, seed),
                    stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_preexec(),
                )
                qlog.close()
                try:
                    self.proc.wait(0.5)
                except subprocess.TimeoutExpired:
                    return self  # running
                err = self._qemu_log()
                self.proc = None
                if "host forwarding" not in err:
                    raise GuestError(f"qemu for {self.name} exited at once:\n{err}")
            raise GuestError(f"qemu for {self.name} could not bind forwarded ports:\n{err}")

    def _qemu_log(self) -> str:
        try:
            return (self.workdir / "qemu.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _elapsed(self) -> float:
        return time.monotonic() - (self.started_at or time.monotonic())

    def _fail(self, what: str) -> GuestError:
        return GuestError(
            f"{self.name}: {what} ({self._elapsed():.0f} s after start)\n"
            f"--- qemu ---\n{self._qemu_log().strip()}\n--- console (last lines) ---\n{self.console_tail()}"
        )

    def _check_alive(self) -> None:
        if self._cancel.is_set():
            raise GuestError(f"{self.name}: wait cancelled (guest shut down or run interrupted)")
        if self.proc is None:
            raise GuestError(f"{self.name} is not started")
        if self.proc.poll() is not None:
            raise self._fail(f"qemu exited with {self.proc.returncode}")

    def shutdown(self) -> None:
        """Kill qemu and remove the guest's files. Safe to call more than once."""
        self._cancel.set()
        with self._lock:
            proc, self.proc = self.proc, None
            _stop_process(proc)
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            _unregister(self)

    def __enter__(self) -> "Guest":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()

    # -------------------------------------------------------------- ssh

    def ssh_argv(
        self, *, user: str | None = None, key: str | os.PathLike | bool | None = None, options: Sequence[str] = ()
    ) -> list[str]:
        """The ssh command line (without the remote command) that logs in to this guest.

        key=None uses the guest's ssh_key; key=False offers no key at all.
        """
        key = self.ssh_key if key is None else key
        if key is False:
            key = None
        argv = [
            "ssh", "-F", "/dev/null",  # the user's ssh config and agent play no part
            "-p", str(self.ssh_port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=8",
        ]
        argv += ["-i", os.fspath(key)] if key is not None else ["-o", "IdentityFile=none"]
        argv += list(options)
        argv.append(f"{user or self.ssh_user}@127.0.0.1")
        return argv

    def login_command(self, *, user: str | None = None, key: str | os.PathLike | None = None) -> str:
        """A short ssh command line for a person to paste into a shell."""
        key = self.ssh_key if key is None else key
        argv = ["ssh", "-p", str(self.ssh_port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        if key is not None:
            argv += ["-o", "IdentitiesOnly=yes", "-i", os.fspath(key)]
        return shlex.join([*argv, f"{user or self.ssh_user}@127.0.0.1"])

    def ssh(
        self,
        command: str | Sequence[str],
        *,
        user: str | None = None,
        key: str | os.PathLike | bool | None = None,
        timeout: float = 300,
        input: str | bytes | None = None,
        check: bool = False,
        options: Sequence[str] = (),
    ) -> SshResult:
        """Run `command` in the guest (a string goes to the remote shell as is).

        rc is the command's exit code, 255 if SSH itself failed (refused,
        authentication, connection lost) and 124 if `timeout` ran out.
        key=None uses the guest's ssh_key, key=False offers none.
        """
        if not isinstance(command, str):
            command = shlex.join(command)
        argv = self.ssh_argv(user=user, key=key, options=options) + [command]
        data = input.encode() if isinstance(input, str) else input
        try:
            res = subprocess.run(
                argv, input=data, capture_output=True, timeout=timeout,
                stdin=subprocess.DEVNULL if data is None else None,
            )
            result = SshResult(res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace"))
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            err = (e.stderr or b"").decode(errors="replace")
            result = SshResult(124, out, err + f"\n(ssh timed out after {timeout} s)")
        return result.check() if check else result

    def ssh_banner(self, guest_port: int = 22, timeout: float = 5.0) -> str | None:
        """The SSH server's identification line, or None if nothing answers yet.

        A TCP connect alone proves nothing: QEMU accepts on the forwarded port
        whether or not the guest listens.
        """
        try:
            with socket.create_connection(("127.0.0.1", self.host_port(guest_port)), timeout=timeout) as s:
                s.settimeout(timeout)
                data = s.recv(256)
        except OSError:
            return None
        if data.startswith(b"SSH-"):
            return data.split(b"\r\n", 1)[0].decode(errors="replace")
        return None

    def wait_for_ssh(self, timeout: float = 600, *, login: bool | None = None) -> float:
        """Wait until sshd answers (and, with a key, a login works); return seconds since start.

        login defaults to "yes if this guest has an ssh_key".
        """
        login = self.ssh_key is not None if login is None else login
        deadline = time.monotonic() + timeout
        while "ssh_banner" not in self.timings:
            self._check_alive()
            if self.ssh_banner(timeout=3) is not None:
                self.timings["ssh_banner"] = self._elapsed()
                break
            if time.monotonic() > deadline:
                raise self._fail(f"sshd did not answer within {timeout:.0f} s")
            self._cancel.wait(1)
        if not login:
            return self.timings["ssh_banner"]
        last = None
        while "ssh_login" not in self.timings:
            self._check_alive()
            last = self.ssh("true", timeout=60)
            if last.ok:
                self.timings["ssh_login"] = self._elapsed()
                break
            if time.monotonic() > deadline:
                raise self._fail(
                    f"no SSH login as {self.ssh_user} within {timeout:.0f} s: {last.stderr.strip()}"
                )
            self._cancel.wait(2)
        return self.timings["ssh_login"]

    # -------------------------------------------------------------- cloud-init

    def wait_for_cloud_init(
        self, timeout: float = 1200, *, user: str | None = None, key: str | os.PathLike | bool | None = None,
        poll_every: float = 30,
    ) -> CloudInitStatus:
        """Wait until cloud-init has finished its final stage and return its status.

        The console is watched for cloud-init's "finished" line, so no SSH
        session is held open while the user-data restarts sshd, turns on a
        firewall or locks users out. With a login (ssh_key or `key`) the result
        comes from `cloud-init status --long`, which is also polled every
        `poll_every` seconds in case the console line was customized away;
        without one, from the modules the console reports as failed.
        """
        key = self.ssh_key if key is None else key
        if key is False:
            key = None
        deadline = time.monotonic() + timeout
        last_poll = time.monotonic()
        while True:
            self._check_alive()
            m = _FINISHED_RE.search(self.console_log())
            if m and "cloud_init_done" not in self.timings:
                self.timings["cloud_init_done"] = self._elapsed()
                self.timings["cloud_init_done_guest_uptime"] = float(m.group(1))
            if key is not None and (m or time.monotonic() - last_poll >= poll_every):
                last_poll = time.monotonic()
                cmd = "cloud-init status --wait --long" if m else "cloud-init status --long"
                # a poll must not hang on a firewall that now drops us; the
                # final --wait only waits for cloud-init to write its result
                res = self.ssh(cmd, user=user, key=key, timeout=120 if m else 60)
                st = _parse_status(res.stdout)
                if st is not None and st.status not in ("running", "not run", "not started"):
                    self.timings.setdefault("cloud_init_done", self._elapsed())
                    m = m or _FINISHED_RE.search(self.console_log())
                    if m:
                        self.timings.setdefault("cloud_init_done_guest_uptime", float(m.group(1)))
                    return st
                if m and st is None:
                    # finished, but we cannot log in (the user-data may have
                    # changed access): report what the console says
                    return self._status_from_console()
            elif m:
                return self._status_from_console()
            if time.monotonic() > deadline:
                raise self._fail(f"cloud-init did not finish within {timeout:.0f} s")
            self._cancel.wait(1)

    def _status_from_console(self) -> CloudInitStatus:
        failed = [m.group(1) for m in _MODULE_FAILED_RE.finditer(self.console_log())]
        if failed:
            return CloudInitStatus("error", "modules failed: " + ", ".join(failed), "console")
        return CloudInitStatus("done", "", "console")


# ------------------------------------------------------------------ cluster


class Cluster:
    """Several guests on one VPC segment, booted and awaited in parallel.

        with Cluster(vpc_cidr="10.10.0.0/24") as c:
            a = c.add("a", user_data, ssh_user="admin", ssh_key=key)  # 10.10.0.11
            b = c.add("b", user_data, ssh_user="admin", ssh_key=key)  # 10.10.0.12
            c.start().wait_for_ssh()

    Keyword arguments given to Cluster are defaults for every add().
    """

    def __init__(self, *, image: Image | None = None, vpc_cidr: str = "10.10.0.0/24", **guest_defaults):
        self.image = image
        self.workdir = _make_workdir("cluster")
        self.vpc = VpcSwitch(self.workdir / "vpc", vpc_cidr)
        self.guest_defaults = guest_defaults
        self._guests: dict[str, Guest] = {}
        self._next_host = 11
        self._started = False

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return self.vpc.network

    def add(self, name: str, user_data: str | bytes, *, vpc_ip: str | None = None, **kwargs) -> Guest:
        """Declare a guest; vpc_ip defaults to the next address from .11 on."""
        if name in self._guests:
            raise ValueError(f"guest {name!r} already in the cluster")
        taken = {g.vpc_address for g in self._guests.values()}
        if vpc_ip is None:
            while True:
                addr = str(self.network[self._next_host])
                self._next_host += 1
                if addr not in taken:
                    break
            vpc_ip = f"{addr}/{self.network.prefixlen}"
        elif str(ipaddress.ip_interface(vpc_ip).ip) in taken:
            raise ValueError(f"{vpc_ip} is already used in the cluster")
        opts = {**self.guest_defaults, **kwargs}
        opts.setdefault("image", self.image)
        guest = Guest(name, user_data, vpc=self.vpc, vpc_ip=vpc_ip, workdir=self.workdir / name, **opts)
        macs = {m for g in self._guests.values() for m in (g.public_mac, g.vpc_mac)}
        while guest.vpc_mac in macs or guest.public_mac in macs:
            guest.public_mac, guest.vpc_mac = _random_mac(), _random_mac()
        self._guests[name] = guest
        if self._started:
            guest.start()
        return guest

    @property
    def guests(self) -> list[Guest]:
        return list(self._guests.values())

    def __getitem__(self, name: str) -> Guest:
        return self._guests[name]

    def __iter__(self) -> Iterator[Guest]:
        return iter(self.guests)

    def __len__(self) -> int:
        return len(self._guests)

    def start(self) -> "Cluster":
        """Start the segment and every guest (each boots in the background)."""
        _register(self)
        if self.image is None and any(g.image is None for g in self._guests.values()):
            self.image = ensure_image()
        self.vpc.start()
        for g in self._guests.values():
            if g.image is None:
                g.image = self.image
            g.start()  # from this thread: see _preexec
        self._started = True
        return self

    def _parallel(self, fn: Callable[[Guest], object]) -> dict[str, object]:
        guests = self.guests
        if not guests:
            return {}
        pool = ThreadPoolExecutor(max_workers=len(guests), thread_name_prefix="testbed-wait")
        results, errors = {}, []
        try:
            futures = {g.name: pool.submit(fn, g) for g in guests}
            for name, fut in futures.items():
                try:
                    results[name] = fut.result()
                except Exception as e:  # noqa: BLE001 - re-raised below with all failures
                    errors.append(e)
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM): stop the other waits now so the
            # caller's cleanup runs at once instead of after their timeouts
            for g in guests:
                g._cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise GuestError("\n\n".join(str(e) for e in errors))
        return results

    def wait_for_ssh(self, timeout: float = 600, **kwargs) -> dict[str, float]:
        return self._parallel(lambda g: g.wait_for_ssh(timeout, **kwargs))  # type: ignore[return-value]

    def wait_for_cloud_init(self, timeout: float = 1200, **kwargs) -> dict[str, CloudInitStatus]:
        return self._parallel(lambda g: g.wait_for_cloud_init(timeout, **kwargs))  # type: ignore[return-value]

    def shutdown(self) -> None:
        for g in self._guests.values():
            g.shutdown()
        self.vpc.shutdown()
        shutil.rmtree(self.workdir, ignore_errors=True)
        _unregister(self)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
