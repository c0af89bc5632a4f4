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
