"""The mesh, PKI and audit host logic on three booted guests.

Three Debian 12 guests boot with the hardened user-data the program renders
(eth0 "public", eth1 on a shared segment standing in for the VPC). The test
then does over SSH exactly what the components' remote commands do: the
command lines come from `hostagent.remote_command`, the configs and CSR
requests from the same pure functions, so what passes here is what a deploy
runs. Only the signing step is played by openssl on this machine, standing
in for `tls.LocallySignedCert` (same inputs: the CSR the host printed).

The guests boot once for the module; the tests build on each other in file
order (mesh, then TLS over the VPC, then the audit with wg0 up).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from hardened_do.cloud_init.render import render_user_data
from hardened_do.components import overlay
from hardened_do.components.audit import audit_command_fail_on
from hardened_do.components.stack import parse_stack_config
from hardened_do.components.csr import openssl_config, san_entries
from hardened_do.components.measures import overlay_rules
from hardened_do.components.mesh import overlay_rule_args
from hardened_do.components.hostagent import CA_TRUST_PATH, TLS_DIR, remote_command, source
from tests.conftest import require_tool

pytestmark = pytest.mark.vm

ADMIN = "ops"
VPC = "10.10.0.0/24"
OVERLAY = "10.200.0.0/24"
HOSTS = {"web-1": "10.10.0.11", "web-2": "10.10.0.12", "db-1": "10.10.0.13"}
OUTSIDE = "10.0.2.2"  # this machine, as the guests see it through QEMU's NAT
DB_PORT = 5432  # the db role's declared internal service: UFW admits it from the VPC

TIMINGS: dict[str, float] = {}


def vm_stack(public_key: str):
    raw = {
        "region": "fra1",
        "vpc_cidr": VPC,
        "overlay_cidr": OVERLAY,
        "image": "debian-12-x64",
        "admin_user": ADMIN,
        "admin_ssh_keys": [public_key],
        "ssh_allowed_sources": [f"{OUTSIDE}/32"],
        # The full first-boot upgrade would dominate the run under emulation
        # and tests nothing here.
        "package_upgrade": False,
        "roles": {
            "web": {"services": [{"name": "http", "port": 80, "exposure": "public"}]},
            "db": {"services": [{"name": "postgres", "port": DB_PORT, "exposure": "internal",
                                 "allowed_sources": ["web"]}]},
        },
        "hosts": [{"name": n, "role": n.split("-")[0]} for n in HOSTS],
    }
    return parse_stack_config(raw, name_prefix="vmmesh")


# One multiplexed SSH connection per guest. The hardened UFW rate-limits
# SSH (`ufw limit`: 6 new connections per 30 s per source) and every
# connection from this machine arrives from the same address; a test that
# opened one connection per command would trip it, which says nothing about
# the scripts under test.
# (Set up by the `fleet` fixture; the socket path must stay short.)
_MUX: tuple[str, ...] = ()


def run(guest, command: str, *, input: str | None = None, timeout: float = 300):
    return guest.ssh(command, input=input, timeout=timeout, options=_MUX)


def ok(guest, command: str, **kw) -> str:
    res = run(guest, command, **kw)
    assert res.rc == 0, f"{guest.name}: exit {res.rc}\n{command[-300:]}\nstdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-2000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def fleet(vm_clusters, vm_ssh_key):
    global _MUX
    stack = vm_stack(vm_ssh_key.public)
    mux_dir = tempfile.mkdtemp(prefix="hdmux-", dir="/tmp")
    _MUX = ("-o", "ControlMaster=auto", "-o", f"ControlPath={mux_dir}/%C", "-o", "ControlPersist=120")
    t0 = time.monotonic()
    with vm_clusters(vpc_cidr=VPC, ssh_user=ADMIN, ssh_key=vm_ssh_key) as cluster:
        guests = {
            name: cluster.add(name, render_user_data(stack, name), vpc_ip=f"{ip}/24", public_keys=[vm_ssh_key.public])
            for name, ip in HOSTS.items()
        }
        cluster.start()
        cluster.wait_for_ssh(timeout=900)
        TIMINGS["boot_to_ssh_s"] = time.monotonic() - t0
        statuses = cluster.wait_for_cloud_init(timeout=1800)
        TIMINGS["boot_to_cloud_init_done_s"] = time.monotonic() - t0
        for name, status in statuses.items():
            assert status.ok, f"{name}: cloud-init {status.status}: {status.detail}"
        try:
            yield {"stack": stack, "guests": guests}
        finally:
            for guest in guests.values():
                subprocess.run(guest.ssh_argv(options=(*_MUX, "-O", "exit")), capture_output=True, timeout=30)
            shutil.rmtree(mux_dir, ignore_errors=True)
    print("\nmesh/pki/audit VM timings:", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


# --------------------------------------------------------------- WireGuard


@pytest.fixture(scope="module")
def mesh(fleet):
    guests = fleet["guests"]
    t0 = time.monotonic()
    keys = {}
    for name, guest in guests.items():
        out = ok(guest, remote_command("wg-keygen.sh", "wg0", user=ADMIN))
        keys[name] = overlay.check_public_key(out, who=name)
    addresses = {k: str(v) for k, v in overlay.allocate(OVERLAY, list(HOSTS)).items()}
    members = [overlay.Member(n, addresses[n], HOSTS[n], keys[n]) for n in HOSTS]
    configs = {n: overlay.render_host_config(n, members, overlay_cidr=OVERLAY) for n in HOSTS}
    # The program's own derivation: db-1 admits postgres over wg0 from the web hosts only.
    rules = overlay_rule_args(overlay_rules(fleet["stack"], list(HOSTS)), addresses, list(HOSTS))
    applied = {
        n: ok(guests[n], remote_command("wg-apply.sh", "wg0", "0", *([rules[n]] if n in rules else []), user=ADMIN),
              input=configs[n])
        for n in HOSTS
    }
    TIMINGS["mesh_keys_and_apply_s"] = time.monotonic() - t0
    return {"keys": keys, "addresses": addresses, "members": members, "configs": configs, "applied": applied,
            "rules": rules}


def test_each_host_keeps_its_own_key_and_prints_only_the_public_half(fleet, mesh):
    for name, guest in fleet["guests"].items():
        again = ok(guest, remote_command("wg-keygen.sh", "wg0", user=ADMIN))
        assert again.strip() == mesh["keys"][name]  # idempotent: the existing key is kept
        assert again.count("\n") == 1
        mode = ok(guest, "sudo -n stat -c '%a %U' /etc/wireguard/wg0.key /etc/wireguard/wg0.conf").split("\n")
        assert mode[:2] == ["600 root", "600 root"]
        # The config on disk holds no private key; the running interface has it from the key file.
        assert "PrivateKey" not in ok(guest, "sudo -n cat /etc/wireguard/wg0.conf")
        running = ok(guest, "sudo -n wg show wg0 private-key").strip()
        assert running == ok(guest, "sudo -n cat /etc/wireguard/wg0.key").strip()
    assert len(set(mesh["keys"].values())) == 3


def test_mesh_comes_up_and_every_pair_talks_over_wg0(fleet, mesh):
    guests = fleet["guests"]
    for name in HOSTS:
        assert mesh["applied"][name].strip() == "wg0 started: 2 peers"
        assert ok(guests[name], "systemctl is-enabled wg-quick@wg0").strip() == "enabled"
    t0 = time.monotonic()
    for a in HOSTS:
        for b in HOSTS:
            if a == b:
                continue
            res = run(guests[a], f"ping -c 2 -W 5 -I wg0 {mesh['addresses'][b]}", timeout=60)
            assert res.ok, f"{a} -> {b} over wg0: {res.stdout}{res.stderr}"
    TIMINGS["mesh_ping_all_pairs_s"] = time.monotonic() - t0
    for name in HOSTS:
        handshakes = ok(guests[name], "sudo -n wg show wg0 latest-handshakes").split("\n")
        live = [line for line in handshakes if line.strip() and line.split()[1] != "0"]
        assert len(live) == 2, f"{name}: {handshakes}"
        # The tunnel really rides the VPC: the peers' endpoints are their eth1 addresses.
        endpoints = ok(guests[name], "sudo -n wg show wg0 endpoints")
        assert all(f"{HOSTS[o]}:51820" in endpoints for o in HOSTS if o != name)


def test_peer_changes_are_synced_without_dropping_the_interface(fleet, mesh):
    guest = fleet["guests"]["web-1"]
    ifindex = ok(guest, "cat /sys/class/net/wg0/ifindex").strip()
    # web-2 leaves the mesh: web-1's peer list shrinks, nothing else changes.
    members = [m for m in mesh["members"] if m.name != "web-2"]
    smaller = overlay.render_host_config("web-1", members, overlay_cidr=OVERLAY)
    out = ok(guest, remote_command("wg-apply.sh", "wg0", "0", user=ADMIN), input=smaller)
    assert out.strip() == "wg0 synced: 1 peers"
    assert ok(guest, "cat /sys/class/net/wg0/ifindex").strip() == ifindex
    # syncconf reads a config without PrivateKey as "no key"; the key stays.
    assert ok(guest, "sudo -n wg show wg0 private-key") == ok(guest, "sudo -n cat /etc/wireguard/wg0.key")
    assert mesh["keys"]["web-2"] not in ok(guest, "sudo -n wg show wg0 peers")
    assert run(guest, f"ping -c 2 -W 5 {mesh['addresses']['db-1']}", timeout=60).ok
    # ...and joins again.
    out = ok(guest, remote_command("wg-apply.sh", "wg0", "0", user=ADMIN), input=mesh["configs"]["web-1"])
    assert out.strip() == "wg0 synced: 2 peers"
    assert ok(guest, "cat /sys/class/net/wg0/ifindex").strip() == ifindex
    assert run(guest, f"ping -c 2 -W 5 {mesh['addresses']['web-2']}", timeout=60).ok


@pytest.mark.parametrize(
    "broken, why",
    [
        # refused before anything is touched: not a key `wg` knows
        ("[Interface]\nListenPort = 51820\nBogus = 1\n", "unknown lines"),
        # passes the syntax check, fails when wg-quick applies it: rolled back
        ("[Interface]\nAddress = nonsense\nListenPort = 51820\n", "rolled back"),
    ],
)
def test_a_broken_config_is_refused_and_the_working_one_stays(fleet, mesh, broken, why):
    guest = fleet["guests"]["db-1"]
    res = run(guest, remote_command("wg-apply.sh", "wg0", "0", user=ADMIN), input=broken)
    assert res.rc == 1 and why in res.stderr, res.stderr
    assert ok(guest, "sudo -n cat /etc/wireguard/wg0.conf") == mesh["configs"]["db-1"]
    assert ok(guest, "systemctl is-active wg-quick@wg0").strip() == "active"
    assert run(guest, f"ping -c 2 -W 5 {mesh['addresses']['web-1']}", timeout=60).ok


def test_a_declared_internal_service_over_the_vpc_and_the_overlay(fleet, mesh):
    db, web = fleet["guests"]["db-1"], fleet["guests"]["web-1"]
    ok(db, f"nohup python3 -m http.server {DB_PORT} </dev/null >/tmp/db-http.log 2>&1 & echo $! >/tmp/db-http.pid")
    try:
        ok(db, f"for i in $(seq 30); do ss -Htln | grep -q ':{DB_PORT} ' && exit 0; sleep 1; done; exit 1")
        probe = "timeout 10 bash -c 'exec 3<>/dev/tcp/{}/{}'"
        vpc = run(web, probe.format(HOSTS["db-1"], DB_PORT), timeout=60)
        assert vpc.ok, f"db-1:{DB_PORT} not reachable over the VPC: {vpc.stderr}"
        over_wg0 = run(web, probe.format(mesh["addresses"]["db-1"], DB_PORT), timeout=60)
        assert over_wg0.ok, f"db-1:{DB_PORT} not reachable from web-1 over wg0: {over_wg0.stderr}"
        # Narrow the sources to web-2 (as a deploy would after web-1 left the
        # web role): web-1's rule is deleted, and web-1 is refused over wg0.
        narrowed = f"tcp/{DB_PORT}/{mesh['addresses']['web-2']}"
        ok(db, remote_command("wg-apply.sh", "wg0", "0", narrowed, user=ADMIN), input=mesh["configs"]["db-1"])
        refused = run(web, probe.format(mesh["addresses"]["db-1"], DB_PORT), timeout=60)
        status = ok(db, "sudo -n ufw status")
    finally:
        ok(db, remote_command("wg-apply.sh", "wg0", "0", mesh["rules"]["db-1"], user=ADMIN), input=mesh["configs"]["db-1"])
        run(db, "kill $(cat /tmp/db-http.pid)")
        run(db, f"for i in $(seq 30); do ss -Htln | grep -q ':{DB_PORT} ' || exit 0; sleep 1; done")
    assert not refused.ok, "web-1 still reaches postgres over wg0 after it left the sources"
    assert mesh["addresses"]["web-2"] in status and mesh["addresses"]["web-1"] not in status, status
    assert OVERLAY not in status, status  # never the whole overlay range


# --------------------------------------------------------------- TLS


def _openssl(*args: str, cwd: Path, input: str | None = None) -> str:
    return subprocess.run([require_tool("openssl"), *args], cwd=cwd, input=input, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """Root CA as InternalPki makes it: ECDSA P-384, CA-only key usages."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "ca.key", cwd=d)
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/O=hardened-do/CN=hardened-do internal CA",
             "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", "-out", "ca.pem", cwd=d)
    return d


def sign(ca_dir: Path, csr: str) -> str:
    """What tls.LocallySignedCert does with the CSR: copy its SANs, set the
    allowed uses (digital_signature, server_auth, client_auth), 720 hours."""
    (ca_dir / "host.csr").write_text(csr)
    (ca_dir / "ext.cnf").write_text(
        "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth, clientAuth\n"
    )
    return _openssl("x509", "-req", "-in", "host.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-days", "30", "-copy_extensions", "copy", "-extfile", "ext.cnf", cwd=ca_dir)


@pytest.fixture(scope="module")
def db_cert(fleet, mesh, ca):
    guest = fleet["guests"]["db-1"]
    t0 = time.monotonic()
    sans = san_entries("db-1", private_ip=HOSTS["db-1"], overlay_ip=mesh["addresses"]["db-1"], domain="internal")
    request = openssl_config("db-1", sans, organization="hardened-do")
    csr = ok(guest, remote_command("tls-csr.sh", TLS_DIR, user=ADMIN), input=request)
    cert = sign(ca, csr)
    root = (ca / "ca.pem").read_text()
    installed = ok(guest, remote_command("tls-install.sh", TLS_DIR, cert.strip(), "", root.strip(), CA_TRUST_PATH, "",
                                         user=ADMIN))
    TIMINGS["tls_csr_sign_install_s"] = time.monotonic() - t0
    return {"csr": csr, "cert": cert, "root": root, "installed": installed, "sans": sans}


def test_the_host_prints_only_a_csr_and_keeps_its_key(fleet, db_cert):
    guest = fleet["guests"]["db-1"]
    csr = db_cert["csr"]
    assert csr.startswith("-----BEGIN CERTIFICATE REQUEST-----") and csr.rstrip().endswith("-----END CERTIFICATE REQUEST-----")
    assert "PRIVATE" not in csr
    text = subprocess.run(["openssl", "req", "-noout", "-text", "-verify"], input=csr, capture_output=True, text=True)
    assert "DNS:db-1, DNS:db-1.internal, IP Address:10.10.0.13, IP Address:" + db_cert["sans"].ips[1] in text.stdout
    assert "ASN1 OID: prime256v1" in text.stdout
    assert ok(guest, f"sudo -n stat -c '%a %U' {TLS_DIR}/host.key").strip() == "600 root"
    # A second run reuses the key: same public key in the new CSR.
    again = ok(guest, remote_command("tls-csr.sh", TLS_DIR, user=ADMIN),
               input=openssl_config("db-1", db_cert["sans"], organization="hardened-do"))
    pub = lambda pem: subprocess.run(["openssl", "req", "-noout", "-pubkey"], input=pem, capture_output=True, text=True).stdout
    assert pub(again) == pub(csr)
    assert "db-1" in db_cert["installed"] and "notAfter=" in db_cert["installed"]


def test_ca_is_in_the_trust_store_and_the_cert_verifies_against_it(fleet, db_cert):
    db = fleet["guests"]["db-1"]
    assert ok(db, f"cat {CA_TRUST_PATH}").strip() == db_cert["root"].strip()
    # verified through the system store (/etc/ssl/certs), not the file we gave
    out = ok(db, f"openssl verify -CApath /etc/ssl/certs {TLS_DIR}/host.crt")
    assert out.strip().endswith(": OK")


def test_a_mismatched_certificate_is_refused(fleet, db_cert, ca, tmp_path):
    # A cert for another key (here: web-1's CSR) must not be installed on db-1.
    web = fleet["guests"]["web-1"]
    other_csr = ok(web, remote_command("tls-csr.sh", TLS_DIR, user=ADMIN),
                   input=openssl_config("web-1", san_entries("web-1", private_ip=HOSTS["web-1"])))
    wrong = sign(ca, other_csr)
    res = run(fleet["guests"]["db-1"], remote_command("tls-install.sh", TLS_DIR, wrong.strip(), "",
                                                       db_cert["root"].strip(), CA_TRUST_PATH, "", user=ADMIN))
    assert res.rc != 0 and "does not match" in res.stderr
    assert ok(fleet["guests"]["db-1"], f"cat {TLS_DIR}/host.crt").strip() == db_cert["cert"].strip()


def test_tls_handshake_over_the_vpc_verifies_the_right_name(fleet, db_cert, ca):
    db, web = fleet["guests"]["db-1"], fleet["guests"]["web-1"]
    # web-1 trusts the CA the way every host does: through its own install.
    sign_and_install(fleet["guests"]["web-1"], "web-1", ca, db_cert["root"])
    server = (f"sudo -n sh -c 'nohup openssl s_server -accept {DB_PORT} -cert {TLS_DIR}/fullchain.crt "
              f"-key {TLS_DIR}/host.key -www </dev/null >/tmp/s_server.log 2>&1 & echo $! >/tmp/s_server.pid'")
    ok(db, server)
    try:
        ok(db, f"for i in $(seq 30); do ss -Htln | grep -q ':{DB_PORT} ' && exit 0; sleep 1; done; exit 1")

        def client(extra: str) -> subprocess.CompletedProcess:
            return run(web, f"openssl s_client -connect {HOSTS['db-1']}:{DB_PORT} -verify_return_error "
                            f"-CAfile {CA_TRUST_PATH} {extra} </dev/null 2>&1", timeout=60)

        good = client("-verify_hostname db-1")
        assert good.rc == 0 and "Verify return code: 0 (ok)" in good.stdout, good.stdout[-1500:]
        assert client("-verify_hostname db-1.internal").rc == 0
        assert client(f"-verify_ip {HOSTS['db-1']}").rc == 0
        bad = client("-verify_hostname web-1")
        assert bad.rc != 0 and "hostname mismatch" in bad.stdout
        # through the system trust store too (no -CAfile): what any client on the host uses
        sys_store = run(web, f"openssl s_client -connect {HOSTS['db-1']}:{DB_PORT} -verify_return_error "
                             f"-verify_hostname db-1 </dev/null 2>&1", timeout=60)
        assert sys_store.rc == 0, sys_store.stdout[-1500:]
    finally:
        run(db, "sudo -n sh -c 'kill $(cat /tmp/s_server.pid)'")


def sign_and_install(guest, name: str, ca_dir: Path, root: str) -> str:
    csr = ok(guest, remote_command("tls-csr.sh", TLS_DIR, user=ADMIN),
             input=openssl_config(name, san_entries(name, private_ip=HOSTS[name])))
    cert = sign(ca_dir, csr)
    ok(guest, remote_command("tls-install.sh", TLS_DIR, cert.strip(), "", root.strip(), CA_TRUST_PATH, "", user=ADMIN))
    return cert


# --------------------------------------------------------------- audit


def audit_cmd(name: str, mode: str = "enforce") -> str:
    return remote_command("audit-install.sh", audit_command_fail_on(mode), name, "hourly", "", user=ADMIN)


def test_audit_installs_its_timer_and_passes_a_clean_host(fleet, mesh, tmp_path_factory):
    web = fleet["guests"]["web-1"]
    t0 = time.monotonic()
    res = run(web, audit_cmd("web-1"), input=source("audit.py"))
    TIMINGS["audit_install_and_run_s"] = time.monotonic() - t0
    report = json.loads(res.stdout)
    assert res.rc == 0, res.stderr + json.dumps(report["violations"], indent=1)
    assert report["ok"] is True and report["role"] == "web" and report["host"] == "web-1"
    statuses = {(r["protocol"], r["port"]): r["status"] for r in report["listeners"]}
    assert statuses[("tcp", 22)] in ("declared", "relies-on-firewall")
    assert statuses[("udp", 51820)] == "relies-on-firewall"  # the kernel's WireGuard socket, no process
    assert ok(web, "systemctl is-enabled hardened-do-audit.timer").strip() == "enabled"
    assert ok(web, "systemctl is-active hardened-do-audit.timer").strip() == "active"
    # keep real samples for the unit tests
    keep = tmp_path_factory.mktemp("samples")
    for name, guest in fleet["guests"].items():
        (keep / f"{name}.ss").write_text(ok(guest, "sudo -n ss -H -tulpn"))
        (keep / f"{name}.ip.json").write_text(ok(guest, "ip -j addr"))
    print(f"\nreal ss/ip samples kept in {keep}")


def test_audit_flags_an_undeclared_listener_and_fails_the_deploy(fleet):
    web = fleet["guests"]["web-1"]
    ok(web, "nohup python3 -m http.server 8081 </dev/null >/tmp/http.log 2>&1 & echo $! >/tmp/http.pid")
    try:
        ok(web, "for i in $(seq 30); do ss -Htln | grep -q ':8081 ' && exit 0; sleep 1; done; exit 1")
        res = run(web, audit_cmd("web-1"), input=source("audit.py"))
        assert res.rc == 1
        report = json.loads(res.stdout)
        (v,) = [v for v in report["violations"] if v["port"] == 8081]
        assert v["kind"] == "undeclared" and v["severity"] == "critical" and v["exposure"] == "public"
        assert [p["name"] for p in v["processes"]] == ["python3"]
        # the message that fails `pulumi up` names host, port and process
        assert "web-1: undeclared tcp port 8081 listens on all addresses (public); process: python3 (pid" in res.stderr
        # warn mode reports the same and lets the deploy pass
        warn = run(web, audit_cmd("web-1", "warn"), input=source("audit.py"))
        assert warn.rc == 0 and json.loads(warn.stdout)["ok"] is False
        # the timer's service logs to the journal at warning priority
        run(web, "sudo -n systemctl start hardened-do-audit.service")
        journal = ok(web, "sudo -n journalctl -t hardened-do-audit -p warning --no-pager -o cat")
        assert "undeclared tcp port 8081" in journal
        entry = json.loads(ok(web, "sudo -n journalctl -t hardened-do-audit -p warning --no-pager -o json -n 1"))
        assert entry["SYSLOG_FACILITY"] == "4" and entry["PRIORITY"] == "4"  # auth, warning
        assert "failed" in run(web, "systemctl is-failed hardened-do-audit.service").stdout
    finally:
        run(web, "kill $(cat /tmp/http.pid)")
    ok(web, "for i in $(seq 30); do ss -Htln | grep -q ':8081 ' || exit 0; sleep 1; done; exit 1")
    again = run(web, audit_cmd("web-1"), input=source("audit.py"))
    assert again.rc == 0, again.stderr
