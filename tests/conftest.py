"""Shared fixtures: test keys, base configs. (pytest.ini puts the checkout on the path.)"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# Turning an Output into a string must fail loudly in every test.
os.environ.setdefault("PULUMI_ERROR_OUTPUT_STRING", "true")


def dev_config() -> dict:
    """The dev stack's config values, without the project namespace."""
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in doc["config"].items() if k.startswith("hardened-do:")}


@pytest.fixture
def dev_raw() -> dict:
    return copy.deepcopy(dev_config())


def require_tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        pytest.skip(f"needs `{name}` (run scripts/setup-host)")
    return path


class KeyFactory:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.n = 0

    def make(self, key_type: str = "ed25519", bits: int | None = None) -> tuple[str, str]:
        """Returns (public key line, private key text)."""
        keygen = require_tool("ssh-keygen")
        self.n += 1
        path = self.tmp / f"key{self.n}"
        cmd = [keygen, "-q", "-t", key_type, "-N", "", "-C", f"test{self.n}@example.invalid", "-f", str(path)]
        if bits:
            cmd += ["-b", str(bits)]
        subprocess.run(cmd, check=True)
        return path.with_suffix(".pub").read_text().strip(), path.read_text()


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> KeyFactory:
    return KeyFactory(tmp_path_factory.mktemp("keys"))


def make_ca_pem(*, ca: bool = True, days: int = 365, name: str = "hardened-do test CA") -> str:
    """A self-signed certificate (a CA unless ca=False; expired if days < 0)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=days))
    if days < 0:
        start, end = now + datetime.timedelta(days=days * 2), now + datetime.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
