"""The dev stack's topology on booted guests, reached the way `pulumi up` reaches it.

A bastion, a web host and a private database host boot with the program's
user-data. This machine then reaches the bastion on its "public" port and the
other two only through it (an SSH jump over the VPC): UFW and the boot filter
on web-1 and db-1 admit SSH from the VPC only, so a direct connection is
refused, as it is for a droplet behind the bastion. Over those connections the
test runs the commands the program runs, in the program's order: the fail2ban
exemption of the bastion, the mesh (keys, then peer lists with the overlay
rules for internal services), the certificates (CSR on the host, checked as
InternalPki checks it, signed by a CA that stands in for pulumi-tls, installed
with the CA), and the audit. The checks: WireGuard traffic between every pair,
a TLS handshake verified against the CA with the right names, the audit's
verdict, postgres reachable from web over the overlay and not from the
bastion, and the bastion not banned after a burst of failed logins from it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from hardened_do.cloud_init.render import render_user_data
from hardened_do.components import overlay
from hardened_do.components.audit import audit_command_fail_on
from hardened_do.components.csr import check_csr, openssl_config, san_entries
from hardened_do.components.hostagent import CA_TRUST_PATH, TLS_DIR, remote_command, source
from hardened_do.components.measures import overlay_rules
from hardened_do.components.mesh import overlay_rule_args
from hardened_do.components.stack import parse_stack_config
from tests.conftest import require_tool

pytestmark = pytest.mark.vm

ADMIN = "ops"
VPC = "10.10.0.0/24"
OVERLAY = "10.200.0.0/16"
HOSTS = {"bastion-1": "10.10.0.10", "web-1": "10.10.0.11", "db-1": "10.10.0.12"}
BEHIND = ("web-1", "db-1")
OUTSIDE = "10.0.2.2"  # this machine, as the guests see it through QEMU's NAT
DB_PORT = 5432
DOMAIN = "internal"
TIMINGS: dict[str, float] = {}


def dev_like_stack(public_key: str):
    raw = {
        "region": "fra1",
        "vpc_cidr": VPC,
        "image": "debian-12-x64",
        "admin_user": ADMIN,
        "admin_ssh_keys": [public_key],
        "ssh_allowed_sources": [f"{OUTSIDE}/32"],
        "package_upgrade": False,  # the full first-boot upgrade tests nothing here
        "pki_domain": DOMAIN,
        "roles": {
            "bastion": {"bastion": True},
            "web": {"services": [{"name": "http", "port": 80, "exposure": "public"}]},
            "db": {
                "public_networking": False,
                "services": [{"name": "postgres", "port": DB_PORT, "exposure": "internal", "allowed_sources": ["web"]}],
            },
        },
        "hosts": [{"name": n, "role": n.split("-")[0]} for n in HOSTS],
    }
    return parse_stack_config(raw, name_prefix="vmdev")


class Fleet:
    """SSH to the bastion directly, to the others through it; one multiplexed
    connection per host (each deploy command would otherwise open its own)."""

    def __init__(self, guests: dict, key_path: str, mux_dir: Path):
        self.guests = guests
        self.key = key_path
        self.mux = mux_dir

    def _common(self, *, mux: bool = True) -> list[str]:
        argv = ["-F", "/dev/null", "-i", self.key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=30"]
        if mux:
            argv += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.mux}/%C", "-o", "ControlPersist=300"]
        return argv

    def argv(self, name: str) -> list[str]:
        bastion = self.guests["bastion-1"]
        if name == "bastion-1":
            return ["ssh", *self._common(), "-p", str(bastion.ssh_port), f"{ADMIN}@127.0.0.1"]
        # The jump is its own connection (what `ssh -J` and pulumi-command's proxy open).
        jump = shlex.join(["ssh", *self._common(mux=False), "-p", str(bastion.ssh_port), "-W", "%h:%p",
                           f"{ADMIN}@127.0.0.1"])
        return ["ssh", *self._common(), "-o", f"ProxyCommand={jump}", f"{ADMIN}@{HOSTS[name]}"]

    def run(self, name: str, command: str, *, input: str | None = None, timeout: float = 300):
        try:
            res = subprocess.run([*self.argv(name), command], input=input, capture_output=True, text=True,
                                 timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, exc.stdout or "", (exc.stderr or "") + " (timed out)")
        return res

    def ok(self, name: str, command: str, **kw) -> str:
        res = self.run(name, command, **kw)
        assert res.returncode == 0, f"{name}: exit {res.returncode}\n{command[-300:]}\n{res.stdout[-1500:]}\n{res.stderr[-1500:]}"
        return res.stdout

    def close(self) -> None:
        for name in HOSTS:
            subprocess.run([*self.argv(name)[:-1], "-O", "exit", self.argv(name)[-1]], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def fleet(vm_clusters, vm_ssh_key, tmp_path_factory):
    stack = dev_like_stack(vm_ssh_key.public)
    mux = Path(tempfile_dir())
    t0 = time.monotonic()
    with vm_clusters(vpc_cidr=VPC, ssh_user=ADMIN, ssh_key=vm_ssh_key) as cluster:
        guests = {
            name: cluster.add(name, render_user_data(stack, name), vpc_ip=f"{ip}/24", public_keys=[vm_ssh_key.public])
            for name, ip in HOSTS.items()
        }
        cluster.start()
        guests["bastion-1"].wait_for_ssh(timeout=900)
        # The hosts behind the bastion refuse this machine: their cloud-init
        # result comes from the console (and, once done, through the bastion).
        statuses = {name: g.wait_for_cloud_init(timeout=1800, key=False if name in BEHIND else None)
                    for name, g in guests.items()}
        TIMINGS["boot_to_cloud_init_done_s"] = time.monotonic() - t0
        for name, status in statuses.items():
            assert status.ok, f"{name}: cloud-init {status.status}: {status.detail}"
        f = Fleet(guests, str(vm_ssh_key.path), mux)
        try:
            yield {"stack": stack, "fleet": f, "guests": guests}
        finally:
            f.close()
    print("\ndev-stack VM timings:", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="hddev-", dir="/tmp")  # a short path: it holds the mux sockets


def test_hosts_behind_the_bastion_refuse_ssh_from_outside_the_vpc(fleet):
    for name in BEHIND:
        direct = fleet["guests"][name].ssh("true", timeout=60, options=["-o", "ConnectTimeout=10"])
        assert not direct.ok, f"{name} took SSH from outside the VPC"
        assert fleet["fleet"].ok(name, "hostname").strip() == name  # through the bastion


@pytest.fixture(scope="module")
def deployed(fleet, tmp_path_factory):
    """The program's remote commands, in the program's order."""
    stack, f = fleet["stack"], fleet["fleet"]
    t0 = time.monotonic()
    # 1. BastionExemption: before anything else arrives from the bastion.
    for name in BEHIND:
        out = f.ok(name, remote_command("fail2ban-ignore.sh", HOSTS["bastion-1"], user=ADMIN))
        assert out.strip() == f"fail2ban ignores {HOSTS['bastion-1']}"
    # 2. WireGuardMesh: keys on the hosts, then every host's peer list and overlay rules.
    keys = {n: overlay.check_public_key(f.ok(n, remote_command("wg-keygen.sh", "wg0", user=ADMIN)), who=n) for n in HOSTS}
    addresses = {k: str(v) for k, v in overlay.allocate(OVERLAY, list(HOSTS)).items()}
    members = [overlay.Member(n, addresses[n], HOSTS[n], keys[n]) for n in HOSTS]
    rules = overlay_rule_args(overlay_rules(stack, list(HOSTS)), addresses, list(HOSTS))
    for n in HOSTS:
        config = overlay.render_host_config(n, members, overlay_cidr=OVERLAY)
        f.ok(n, remote_command("wg-apply.sh", "wg0", "0", *([rules[n]] if n in rules else []), user=ADMIN), input=config)
    TIMINGS["mesh_s"] = time.monotonic() - t0
    # 3. InternalPki: CSR on the host, checked as the program checks it, signed, installed.
    ca = tmp_path_factory.mktemp("ca")
    openssl = require_tool("openssl")

    def ossl(*args: str) -> str:
        return subprocess.run([openssl, *args], cwd=ca, check=True, capture_output=True, text=True).stdout

    ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "ca.key")
    ossl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/O=hardened-do/CN=vmdev internal CA", "-days", "30",
         "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-out", "ca.pem")
    (ca / "ext.cnf").write_text("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
                                "extendedKeyUsage = serverAuth, clientAuth\n")
    root = (ca / "ca.pem").read_text()
    for n in HOSTS:
        sans = san_entries(n, private_ip=HOSTS[n], overlay_ip=addresses[n], domain=DOMAIN)
        # InternalPki's request and check (organization "hardened-do").
        csr = f.ok(n, remote_command("tls-csr.sh", TLS_DIR, user=ADMIN),
                   input=openssl_config(n, sans, organization="hardened-do"))
        check_csr(csr, n, sans, organization="hardened-do")
        (ca / f"{n}.csr").write_text(csr)
        cert = ossl("x509", "-req", "-in", f"{n}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-days", "30", "-copy_extensions", "copy", "-extfile", "ext.cnf")
        f.ok(n, remote_command("tls-install.sh", TLS_DIR, cert.strip(), "", root.strip(), CA_TRUST_PATH, "", user=ADMIN))
    TIMINGS["pki_s"] = time.monotonic() - t0
    # 4. ServiceAudit, enforce mode: after the mesh and the certificates.
    reports = {}
    for n in HOSTS:
        res = f.run(n, remote_command("audit-install.sh", audit_command_fail_on(stack.audit_mode), n, "hourly", "",
                                      user=ADMIN), input=source("audit.py"))
        reports[n] = (res.returncode, res.stdout, res.stderr)
    TIMINGS["audit_s"] = time.monotonic() - t0
    return {"addresses": addresses, "keys": keys, "root": root, "reports": reports}


def test_mesh_carries_traffic_between_every_pair(fleet, deployed):
    f = fleet["fleet"]
    for a in HOSTS:
        for b in HOSTS:
            if a != b:
                res = f.run(a, f"ping -c 2 -W 5 -I wg0 {deployed['addresses'][b]}", timeout=60)
                assert res.returncode == 0, f"{a} -> {b} over wg0: {res.stdout}{res.stderr}"


def test_audit_passes_every_host(fleet, deployed):
    for name, (rc, out, err) in deployed["reports"].items():
        report = json.loads(out)
        assert rc == 0 and report["ok"] is True, f"{name}: {err}\n{json.dumps(report.get('violations'), indent=1)}"


def test_tls_handshake_over_the_overlay_verifies_the_right_names(fleet, deployed):
    f = fleet["fleet"]
    db_overlay = deployed["addresses"]["db-1"]
    f.ok("db-1", f"sudo -n sh -c 'nohup openssl s_server -accept 8443 -cert {TLS_DIR}/fullchain.crt "
                 f"-key {TLS_DIR}/host.key -www </dev/null >/tmp/s_server.log 2>&1 & echo $! >/tmp/s_server.pid'")
    try:
        f.ok("db-1", "for i in $(seq 30); do ss -Htln | grep -q ':8443 ' && exit 0; sleep 1; done; exit 1")
        # 8443 is not declared: only the host itself reaches it (loopback is
        # exempt from UFW), so the handshake runs on db-1 against its overlay
        # address through the system trust store, as any client there would.
        def client(extra: str):
            return f.run("db-1", f"openssl s_client -connect {db_overlay}:8443 -verify_return_error {extra} </dev/null 2>&1",
                         timeout=60)
        good = client(f"-verify_hostname db-1.{DOMAIN}")
        assert good.returncode == 0 and "Verify return code: 0 (ok)" in good.stdout, good.stdout[-1500:]
        assert client(f"-verify_ip {db_overlay}").returncode == 0
        bad = client("-verify_hostname web-1")
        assert bad.returncode != 0 and "hostname mismatch" in bad.stdout
    finally:
        f.run("db-1", "sudo -n sh -c 'kill $(cat /tmp/s_server.pid)'")


def test_postgres_answers_web_over_the_overlay_and_not_the_bastion(fleet, deployed):
    f = fleet["fleet"]
    db_overlay = deployed["addresses"]["db-1"]
    f.ok("db-1", f"nohup python3 -m http.server {DB_PORT} </dev/null >/tmp/db.log 2>&1 & echo $! >/tmp/db.pid")
    try:
        f.ok("db-1", f"for i in $(seq 30); do ss -Htln | grep -q ':{DB_PORT} ' && exit 0; sleep 1; done; exit 1")
        probe = f"timeout 10 bash -c 'exec 3<>/dev/tcp/{db_overlay}/{DB_PORT}'"
        from_web = f.run("web-1", probe, timeout=60)
        from_bastion = f.run("bastion-1", probe, timeout=60)
    finally:
        f.run("db-1", "kill $(cat /tmp/db.pid)")
    assert from_web.returncode == 0, f"web-1 cannot reach postgres over wg0: {from_web.stderr}"
    assert from_bastion.returncode != 0, "the bastion reached postgres over the overlay"


def test_the_bastion_is_not_banned_after_a_burst_of_failed_logins(fleet, deployed):
    f = fleet["fleet"]
    f.ok("bastion-1", "rm -f /tmp/intruder; ssh-keygen -q -t ed25519 -N '' -f /tmp/intruder")
    attempt = ("ssh -i /tmp/intruder -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no "
               f"-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 intruder@{HOSTS['db-1']} true")
    for _ in range(8):
        f.run("bastion-1", attempt, timeout=30)
    time.sleep(5)
    status = f.ok("db-1", "sudo -n fail2ban-client status sshd")
    assert HOSTS["bastion-1"] not in status, status
    seen = f.ok("db-1", f"sudo -n journalctl --since=-10min | grep -c 'Invalid user intruder from {HOSTS['bastion-1']}' || true")
    assert int(seen.strip() or 0) >= 5, seen  # the failures happened and were let be
    # A new session through the bastion still gets in.
    subprocess.run([*f.argv("db-1")[:-1], "-O", "exit", f.argv("db-1")[-1]], capture_output=True, timeout=30)
    assert f.ok("db-1", "hostname").strip() == "db-1"
