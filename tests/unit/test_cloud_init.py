"""The rendered cloud-config: valid for the real cloud-init, hardened, small."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from hardened_do.cloud_init import cli
from hardened_do.cloud_init.render import render_user_data
from hardened_do.components.reboots import reboot_time
from hardened_do.components.config import USER_DATA_BUDGET
from hardened_do.components.stack import load_stack_file, parse_stack_config
from hardened_do.components.services import expected_listeners
from tests.conftest import ROOT, dev_config, make_ca_pem, require_tool

DEV = load_stack_file(ROOT / "Pulumi.dev.yaml")
HOSTS = [h.name for h in DEV.hosts]


def cloud_config(host: str, stack=DEV) -> dict:
    text = render_user_data(stack, host)
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def files(cfg: dict) -> dict[str, str]:
    return {f["path"]: f["content"] for f in cfg["write_files"]}


def sshd_dropin(cfg: dict) -> str:
    return files(cfg)["/etc/ssh/sshd_config.d/00-hardened-do.conf"]


def directives(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key.lower(), value.strip())
    return out


# ---- the real cloud-init validator ------------------------------------------


@pytest.fixture(scope="module")
def cloud_init_validator():
    if not Path("/usr/bin/apt-get").exists() or not Path("/usr/bin/dpkg-deb").exists():
        pytest.skip("needs apt-get and dpkg-deb to fetch Debian's cloud-init package")
    script = ROOT / "scripts" / "cloud-init-schema"
    proc = subprocess.run([str(script), "--path"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"could not unpack Debian's cloud-init: {proc.stderr[-2000:]}")
    return script


@pytest.mark.parametrize("host", HOSTS)
def test_user_data_passes_cloud_inits_own_schema_validator(host, tmp_path, cloud_init_validator):
    path = tmp_path / f"{host}.yaml"
    path.write_text(render_user_data(DEV, host))
    proc = subprocess.run([str(cloud_init_validator), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Valid cloud-config" in proc.stdout


def test_validator_rejects_a_broken_cloud_config(tmp_path, cloud_init_validator):
    """The validator is real: it fails on a config that cloud-init would reject."""
    cfg = cloud_config("web-1")
    cfg["ssh_pwauth"] = ["yes"]
    cfg["users"] = 5
    path = tmp_path / "broken.yaml"
    path.write_text("#cloud-config\n" + yaml.safe_dump(cfg))
    proc = subprocess.run([str(cloud_init_validator), str(path)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ssh_pwauth" in proc.stdout + proc.stderr


# ---- hardening content ------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_admin_user_is_key_only_with_sudo(host):
    cfg = cloud_config(host)
    assert cfg["disable_root"] is True and cfg["ssh_pwauth"] is False
    (user,) = cfg["users"]
    assert user["name"] == "ops" and user["name"] != "root"
    assert user["lock_passwd"] is True
    assert set(user["groups"]) == {"sudo", "ssh-users"}
    assert user["ssh_authorized_keys"] == list(DEV.admin_ssh_keys)
    assert ["passwd", "--lock", "root"] in cfg["runcmd"]


def test_sshd_dropin_sorts_before_cloud_init_and_distribution_files():
    path = "/etc/ssh/sshd_config.d/00-hardened-do.conf"
    assert path in files(cloud_config("web-1"))
    assert sorted([Path(path).name, "50-cloud-init.conf", "60-cloudimg-settings.conf"])[0] == Path(path).name


@pytest.mark.parametrize("host", HOSTS)
def test_sshd_dropin_values(host):
    d = directives(sshd_dropin(cloud_config(host)))
    expected = {
        "permitrootlogin": "no",
        "passwordauthentication": "no",
        "kbdinteractiveauthentication": "no",
        "permitemptypasswords": "no",
        "authenticationmethods": "publickey",
        "allowgroups": "ssh-users",
        "maxauthtries": "3",
        "logingracetime": "30",
        "x11forwarding": "no",
        "allowagentforwarding": "no",
        "permittunnel": "no",
        "gatewayports": "no",
    }
    for key, value in expected.items():
        assert d.get(key) == value, f"{host}: {key}={d.get(key)!r}"
    weak = re.compile(r"sha1|cbc|diffie-hellman-group1-|group14-sha1|hmac-md5|ssh-dss|arcfour|3des", re.I)
    for key in ("kexalgorithms", "ciphers", "macs", "hostkeyalgorithms"):
        assert d[key] and not weak.search(d[key]), f"{key}: {d[key]}"
    assert all(m.endswith("-etm@openssh.com") for m in d["macs"].split(","))


def test_only_the_bastion_forwards():
    assert directives(sshd_dropin(cloud_config("bastion-1")))["allowtcpforwarding"] == "local"
    for host in ("web-1", "db-1"):
        assert directives(sshd_dropin(cloud_config(host)))["allowtcpforwarding"] == "no"


def test_sshd_is_validated_before_restart_and_handles_ssh_socket():
    script = files(cloud_config("web-1"))["/usr/local/sbin/hardened-do-sshd"]
    assert script.index("sshd -t") < script.index("systemctl restart")
    assert "ssh.socket" in script
    assert "set -eu" in script  # a failing `sshd -t` stops before the restart


def _ufw(host: str) -> str:
    return files(cloud_config(host))["/usr/local/sbin/hardened-do-firewall"]


def test_ufw_default_deny_and_enabled_last():
    script = _ufw("web-1")
    assert "ufw default deny incoming" in script
    assert "ufw default deny routed" in script
    # UFW is enabled once every rule is in; the boot filter goes only after
    # that (tests/unit/test_boot_hardening.py).
    lines = script.splitlines()
    enable = lines.index("ufw --force enable")
    assert all(i < enable for i, line in enumerate(lines) if line.startswith("ufw ") and i != enable)


def test_ufw_rules_follow_the_service_declaration():
    web, db, bastion = _ufw("web-1"), _ufw("db-1"), _ufw("bastion-1")
    assert "ufw allow proto tcp from any to any port 443" in web
    assert "ufw allow proto tcp from any to any port 80" in web
    # Behind the bastion: SSH from the VPC only (deploy sessions all come
    # from the bastion, so not rate limited; fail2ban watches failures).
    assert "ufw allow proto tcp from 10.10.0.0/20 to any port 22" in web
    assert "from any to any port 22" not in web
    # The bastion: SSH from the admin networks only.
    # Not rate limited from the admin networks: a deploy opens one connection
    # per command through the bastion, and `ufw limit` would drop the seventh.
    assert "ufw allow proto tcp from 203.0.113.0/24 to any port 22" in bastion
    assert "ufw limit" not in bastion
    assert "from any to any port 22" not in bastion
    # The database is never open to the world.
    assert "ufw allow proto tcp from 10.10.0.0/20 to any port 5432" in db
    # ... and not from the whole WireGuard overlay: the mesh admits the source
    # roles' overlay addresses only, with the peer lists (wg-apply).
    assert "from 10.200.0.0/24 to any port 5432" not in db
    assert "from any to any port 5432" not in db
    assert "port 5432" not in web
    # WireGuard only inside the VPC.
    for script in (web, db, bastion):
        assert "ufw allow proto udp from 10.10.0.0/20 to any port 51820" in script


def test_fail2ban_uses_the_journal():
    jail = files(cloud_config("web-1"))["/etc/fail2ban/jail.d/hardened-do.local"]
    assert re.search(r"^\[sshd\]\s*\nenabled = true", jail, re.M)
    assert jail.count("backend = systemd") == 2
    assert "python3-systemd" in cloud_config("web-1")["packages"]


def test_unattended_upgrades_security_only_with_reboot_window(dev_raw):
    cfg = cloud_config("web-1")
    assert {"unattended-upgrades", "fail2ban", "ufw", "wireguard-tools"} <= set(cfg["packages"])
    conf = files(cfg)["/etc/apt/apt.conf.d/52hardened-do-unattended-upgrades"]
    # Each host its own minute of the window starting at 04:30 (components/reboots.py).
    assert 'Automatic-Reboot "true"' in conf and f'Automatic-Reboot-Time "{reboot_time(DEV, "web-1")}"' in conf
    assert "04:30" <= reboot_time(DEV, "web-1") < "05:30"
    assert "#clear Unattended-Upgrade::Origins-Pattern;" in conf
    assert all("security" in line.lower() for line in conf.splitlines() if line.strip().startswith('"origin='))
    periodic = files(cfg)["/etc/apt/apt.conf.d/21hardened-do-auto-upgrades"]
    assert 'APT::Periodic::Unattended-Upgrade "1"' in periodic

    dev_raw["unattended_upgrades"] = {"automatic_reboot": False, "reboot_time": "02:15"}
    other = parse_stack_config(dev_raw, name_prefix="x")
    conf = files(cloud_config("web-1", other))["/etc/apt/apt.conf.d/52hardened-do-unattended-upgrades"]
    assert 'Automatic-Reboot "false"' in conf and f'Automatic-Reboot-Time "{reboot_time(other, "web-1")}"' in conf
    assert "02:15" <= reboot_time(other, "web-1") < "03:15"


def test_sysctl_hardening_set():
    conf = files(cloud_config("web-1"))["/etc/sysctl.d/60-hardened-do.conf"]
    values = dict(
        (k.strip().lstrip("-"), v.strip())
        for k, _, v in (line.partition("=") for line in conf.splitlines() if "=" in line and not line.startswith("#"))
    )
    for key, value in {
        "net.ipv4.conf.all.rp_filter": "1",
        "net.ipv4.conf.all.accept_redirects": "0",
        "net.ipv4.conf.all.send_redirects": "0",
        "net.ipv4.conf.all.accept_source_route": "0",
        "net.ipv6.conf.all.accept_redirects": "0",
        "net.ipv4.tcp_syncookies": "1",
        "kernel.kptr_restrict": "2",
        "kernel.dmesg_restrict": "1",
        "fs.protected_symlinks": "1",
        "net.ipv4.ip_forward": "0",
    }.items():
        assert values.get(key) == value, key


def test_ca_certificate_is_trusted_only_when_given(dev_raw):
    assert "ca_certs" not in cloud_config("web-1")
    pem = make_ca_pem()
    # Pasted with surrounding blank lines and trailing spaces: the canonical
    # PEM re-encoded from the parsed certificate is what reaches the host.
    dev_raw["trusted_ca_pem"] = "\n" + pem.replace("\n", "  \n", 1) + "\n"
    cfg = cloud_config("web-1", parse_stack_config(dev_raw, name_prefix="x"))
    assert cfg["ca_certs"] == {"trusted": [pem]}


def test_services_file_is_the_audit_view_of_the_declaration():
    for host in HOSTS:
        cfg = cloud_config(host)
        written = json.loads(files(cfg)["/etc/hardened-do/services.json"])
        assert written == expected_listeners(DEV, DEV.host(host).role)
    db = json.loads(files(cloud_config("db-1"))["/etc/hardened-do/services.json"])
    assert {(s["name"], s["port"], s["exposure"]) for s in db["services"]} == {
        ("ssh", 22, "internal"), ("wireguard", 51820, "private"), ("postgres", 5432, "internal"),
    }


# ---- what must never be in user_data ----------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_no_secret_or_private_key_and_small(host):
    text = render_user_data(DEV, host)
    assert "PRIVATE KEY" not in text
    assert "PrivateKey" not in text  # no WireGuard key
    assert len(text.encode()) < USER_DATA_BUDGET


def test_user_data_does_not_grow_or_change_with_the_number_of_hosts(dev_raw):
    # 199 web hosts need a window of at least 199 minutes (one minute per host).
    dev_raw["unattended_upgrades"]["reboot_window_minutes"] = 240
    # Mesh addresses are not in user-data; 200 hashed names would need a pin
    # or two (tests/unit/test_stack_overlay.py), which is not what this is about.
    dev_raw["mesh"] = False
    before = render_user_data(parse_stack_config(dev_raw, name_prefix="x"), "web-1")
    dev_raw["hosts"] += [{"name": f"web-{i}", "role": "web"} for i in range(3, 200)]
    after = render_user_data(parse_stack_config(dev_raw, name_prefix="x"), "web-1")
    assert after == before


def test_render_is_deterministic():
    assert render_user_data(DEV, "web-1") == render_user_data(DEV, "web-1")


# ---- the real sshd on the rendered drop-in -----------------------------------


@pytest.fixture(scope="module")
def sshd() -> str:
    return require_tool("sshd")


def _sshd_tree(tmp_path: Path, dropin: str, cloud_init_pwauth: bool) -> tuple[Path, Path]:
    """A copy of Debian's stock sshd_config whose Include points at our files."""
    confd = tmp_path / "sshd_config.d"
    confd.mkdir()
    (confd / "00-hardened-do.conf").write_text(dropin)
    # What cloud-init writes for ssh_pwauth; ours must win over it.
    (confd / "50-cloud-init.conf").write_text(f"PasswordAuthentication {'yes' if cloud_init_pwauth else 'no'}\n")
    stock = Path("/etc/ssh/sshd_config").read_text() if Path("/etc/ssh/sshd_config").exists() else "Include /etc/ssh/sshd_config.d/*.conf\n"
    main = tmp_path / "sshd_config"
    main.write_text(stock.replace("Include /etc/ssh/sshd_config.d/*.conf", f"Include {confd}/*.conf"))
    assert f"Include {confd}" in main.read_text()
    hostkey = tmp_path / "host_ed25519"
    subprocess.run([require_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    return main, hostkey


@pytest.mark.parametrize("host", ["bastion-1", "web-1"])
def test_real_sshd_accepts_the_dropin_and_it_wins(host, tmp_path, sshd):
    main, hostkey = _sshd_tree(tmp_path, sshd_dropin(cloud_config(host)), cloud_init_pwauth=True)
    check = subprocess.run([sshd, "-t", "-f", str(main), "-o", f"HostKey={hostkey}"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    effective = subprocess.run(
        [sshd, "-T", "-f", str(main), "-o", f"HostKey={hostkey}", "-C", "user=ops,host=admin.example,addr=203.0.113.9"],
        capture_output=True, text=True, check=True,
    ).stdout
    d = directives(effective)
    assert d["permitrootlogin"] == "no"
    assert d["passwordauthentication"] == "no"  # despite 50-cloud-init.conf saying yes
    assert d["kbdinteractiveauthentication"] == "no"
    assert d["allowgroups"] == "ssh-users"
    assert d["maxauthtries"] == "3"
    assert d["kexalgorithms"].startswith("sntrup761x25519-sha512@openssh.com")


def test_real_sshd_rejects_a_broken_dropin(tmp_path, sshd):
    """`sshd -t` is a real check: an invalid keyword fails it."""
    main, hostkey = _sshd_tree(tmp_path, sshd_dropin(cloud_config("web-1")) + "PermitRootLogn no\n", True)
    check = subprocess.run([sshd, "-t", "-f", str(main), "-o", f"HostKey={hostkey}"], capture_output=True, text=True)
    assert check.returncode != 0 and "PermitRootLogn" in check.stderr


# ---- the render CLI ------------------------------------------------------------


def test_cli_prints_exactly_what_the_program_sends(capsys):
    assert cli.main(["render", "--stack", "dev", "--host", "db-1"]) == 0
    assert capsys.readouterr().out == render_user_data(DEV, "db-1")


def test_cli_lists_hosts_and_sizes(capsys):
    assert cli.main(["render", "--stack", "dev", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(h in out for h in HOSTS) and "bytes" in out


def test_cli_reports_bad_config_without_traceback(tmp_path, capsys):
    raw = copy.deepcopy(dev_config())
    raw["vpc_cidr"] = "8.8.0.0/16"
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": {f"hardened-do:{k}": v for k, v in raw.items()}}))
    assert cli.main(["render", "--stack-file", str(path), "--host", "web-1"]) == 1
    err = capsys.readouterr().err
    assert "hardened-do:vpc_cidr" in err and "Traceback" not in err


def test_cli_unknown_host(capsys):
    assert cli.main(["render", "--stack", "dev", "--host", "nope"]) == 2
    assert "no host named 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "image, policy",
    [
        ("debian-12-x64", "Hardened Debian 12 (version 2)"),
        ("ubuntu-24-04-x64", "Hardened Ubuntu Server 24.04 LTS (version 1)"),
    ],
)
def test_algorithms_match_ssh_audit_hardened_policy(image, policy, dev_raw):
    """ssh-audit compares the offered lists in order; ours must be the policy's."""
    builtin = pytest.importorskip("ssh_audit.builtin_policies", reason="needs ssh-audit (requirements-dev)")
    expected = builtin.BUILTIN_POLICIES[policy]
    dev_raw["image"] = image
    d = directives(sshd_dropin(cloud_config("web-1", parse_stack_config(dev_raw, name_prefix="x"))))
    pseudo = {"kex-strict-s-v00@openssh.com", "ext-info-s"}  # added by sshd itself
    assert d["kexalgorithms"].split(",") == [k for k in expected["kex"] if k not in pseudo]
    assert d["ciphers"].split(",") == expected["ciphers"]
    assert d["macs"].split(",") == expected["macs"]
    offered = [k for k in d["hostkeyalgorithms"].split(",") if "cert-v01" not in k]
    assert offered == expected["host_keys"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_sshd_with_the_dropin_passes_ssh_audit_debian_12_policy(tmp_path, sshd, dev_raw):
    """The machine's OpenSSH (9.2, as in Debian 12) serving the rendered drop-in
    on loopback passes ssh-audit's built-in hardened policy."""
    import shutil
    import sys
    import time

    audit = shutil.which("ssh-audit") or str(Path(sys.executable).parent / "ssh-audit")
    if not Path(audit).exists():
        pytest.skip("needs ssh-audit (requirements-dev)")
    dev_raw["image"] = "debian-12-x64"
    dropin = sshd_dropin(cloud_config("web-1", parse_stack_config(dev_raw, name_prefix="x")))
    # The drop-in names the system's host key paths; point them at test keys
    # generated the way the host script does (ed25519, RSA 4096).
    keygen = require_tool("ssh-keygen")
    for kind, extra in (("ed25519", []), ("rsa", ["-b", "4096"])):
        subprocess.run([keygen, "-q", "-t", kind, *extra, "-N", "", "-f", str(tmp_path / f"ssh_host_{kind}_key")], check=True)
        dropin = dropin.replace(f"/etc/ssh/ssh_host_{kind}_key", str(tmp_path / f"ssh_host_{kind}_key"))
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "00-hardened-do.conf").write_text(dropin)
    # The same filter the host script applies to /etc/ssh/moduli.
    moduli = [l for l in Path("/etc/ssh/moduli").read_text().splitlines() if l.startswith("#") or int(l.split()[4]) >= 3071]
    (tmp_path / "moduli").write_text("\n".join(moduli) + "\n")
    port = _free_port()
    (tmp_path / "sshd_config").write_text(
        f"Include {tmp_path}/conf.d/*.conf\nPort {port}\nListenAddress 127.0.0.1\n"
        f"ModuliFile {tmp_path}/moduli\nPidFile {tmp_path}/sshd.pid\nUsePAM no\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen([sshd, "-D", "-e", "-f", str(tmp_path / "sshd_config")], stderr=subprocess.PIPE)
    try:
        for _ in range(50):
            if server.poll() is not None:
                pytest.fail(f"sshd exited: {server.stderr.read().decode()}")
            try:
                import socket

                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        res = subprocess.run(
            [audit, "--skip-rate-test", "-P", "Hardened Debian 12 (version 2)", "-p", str(port), "127.0.0.1"],
            capture_output=True, text=True, timeout=120,
        )
        assert res.returncode == 0 and "Passed" in res.stdout, res.stdout + res.stderr
        # And a stock config fails the same policy, so the check has teeth.
        (tmp_path / "conf.d" / "00-hardened-do.conf").write_text(
            f"HostKey {tmp_path}/ssh_host_ed25519_key\nHostKey {tmp_path}/ssh_host_rsa_key\n"
        )
    finally:
        server.terminate()
        server.wait(10)
    stock = subprocess.Popen([sshd, "-D", "-e", "-f", str(tmp_path / "sshd_config")], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        res = subprocess.run(
            [audit, "--skip-rate-test", "-P", "Hardened Debian 12 (version 2)", "-p", str(port), "127.0.0.1"],
            capture_output=True, text=True, timeout=120,
        )
        assert res.returncode != 0 and "Failed" in res.stdout
    finally:
        stock.terminate()
        stock.wait(10)
