"""The host scripts and the command lines that carry them (components/hostagent/).

What can run here without touching this machine's /etc runs for real (the
CSR script into a temporary directory); the rest is linted with shellcheck
and exercised on booted guests in tests/vm/test_mesh_pki_audit.py.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from hardened_do.components import hostagent
from hardened_do.components.csr import openssl_config, san_entries
from tests.conftest import require_tool

SCRIPTS = ["wg-keygen.sh", "wg-apply.sh", "tls-csr.sh", "tls-install.sh", "audit-install.sh", "fail2ban-ignore.sh"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_pass_shellcheck_as_posix_sh(name, tmp_path):
    shellcheck = require_tool("shellcheck")
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + hostagent.script(name))
    res = subprocess.run([shellcheck, "-s", "sh", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_waits_for_cloud_init_and_runs_strict(name):
    text = hostagent.script(name)
    assert text.index("set -eu") < text.index("cloud-init status --wait")
    assert f"usage: {name.removesuffix('.sh')}" in text


def test_command_line_shape():
    cmd = hostagent.remote_command("wg-keygen.sh", "wg0", user="ops")
    argv = shlex.split(cmd)
    assert argv[:4] == ["sudo", "-n", "sh", "-c"]
    assert argv[4] == hostagent.script("wg-keygen.sh")
    assert argv[5:] == ["wg-keygen", "wg0"]
    assert shlex.split(hostagent.remote_command("wg-keygen.sh", "wg0", user="root"))[:2] == ["sh", "-c"]


def test_csr_script_for_real_keeps_its_key_and_prints_only_the_csr(tmp_path):
    require_tool("openssl")
    d = tmp_path / "tls"
    request = openssl_config("web-1", san_entries("web-1", private_ip="10.10.0.5", overlay_ip="10.200.0.44"))
    cmd = hostagent.remote_command("tls-csr.sh", str(d), user="root")

    def run() -> str:
        res = subprocess.run(["sh", "-c", cmd], input=request, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res.stdout

    first = run()
    assert first.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert first.rstrip().endswith("-----END CERTIFICATE REQUEST-----") and "PRIVATE" not in first
    assert oct((d / "host.key").stat().st_mode & 0o777) == "0o600"
    text = subprocess.run(["openssl", "req", "-noout", "-text", "-verify"], input=first, capture_output=True, text=True)
    assert "DNS:web-1, IP Address:10.10.0.5, IP Address:10.200.0.44" in text.stdout
    key_before = (d / "host.key").read_bytes()
    second = run()
    assert (d / "host.key").read_bytes() == key_before

    def pub(csr):
        return subprocess.run(["openssl", "req", "-noout", "-pubkey"], input=csr, capture_output=True, text=True).stdout

    assert pub(first) == pub(second)


def test_arguments_are_data_never_shell(tmp_path):
    """A hostile 'certificate' cannot run anything: arguments are quoted end to end."""
    require_tool("openssl")
    require_tool("update-ca-certificates")
    d = tmp_path / "tls"
    csr_cmd = hostagent.remote_command("tls-csr.sh", str(d), user="root")
    subprocess.run(["sh", "-c", csr_cmd], input=openssl_config("a", san_entries("a")), check=True, capture_output=True, text=True)
    marker = tmp_path / "pwned"
    evil = f"$(touch {marker})`touch {marker}`'; touch {marker}; '\n-----BEGIN CERTIFICATE-----"
    cmd = hostagent.remote_command(
        "tls-install.sh", str(d), evil, "", evil, str(tmp_path / "trust" / "ca.crt"), "", user="root"
    )
    res = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    assert res.returncode != 0
    assert not marker.exists()
    assert not (d / "host.crt").exists() and not (tmp_path / "trust").exists()


def test_install_refuses_a_certificate_for_another_key(tmp_path):
    openssl = require_tool("openssl")
    require_tool("update-ca-certificates")
    d = tmp_path / "tls"
    subprocess.run(["sh", "-c", hostagent.remote_command("tls-csr.sh", str(d), user="root")],
                   input=openssl_config("a", san_entries("a")), check=True, capture_output=True, text=True)
    # A self-signed certificate for a different key.
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(other / "k"), "-subj", "/CN=a", "-days", "1", "-out", str(other / "c")],
                   check=True, capture_output=True)
    pem = (other / "c").read_text().strip()
    res = subprocess.run(["sh", "-c", hostagent.remote_command(
        "tls-install.sh", str(d), pem, "", pem, str(tmp_path / "trust.crt"), "", user="root")],
        capture_output=True, text=True)
    assert res.returncode == 1 and "does not match" in res.stderr
    assert not (d / "host.crt").exists() and not (tmp_path / "trust.crt").exists()


def test_audit_source_is_shipped_verbatim():
    assert hostagent.source("audit.py") == (Path(hostagent.__file__).parent / "audit.py").read_text()
