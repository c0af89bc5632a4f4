"""A host's CSR is signed only if it asks for exactly what the host should get.

The requests are made by the real openssl, from the request config the
program sends (the honest case) or from a config a compromised host could
write instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hardened_do.components.csr import CsrError, check_csr, openssl_config, read_csr, san_entries
from tests.conftest import require_tool

ORG = "hardened-do"
WEB1 = san_entries("web-1", private_ip="10.10.0.5", overlay_ip="10.200.0.9", domain="internal")
DB1 = san_entries("db-1", private_ip="10.10.0.7", overlay_ip="10.200.0.21", domain="internal")


def make_csr(tmp_path: Path, config: str, key: tuple[str, ...] = ("ec", "-pkeyopt", "ec_paramgen_curve:P-256")) -> str:
    (tmp_path / "req.cnf").write_text(config)
    return subprocess.run(
        [require_tool("openssl"), "req", "-new", "-newkey", *key, "-nodes", "-keyout", str(tmp_path / "k.pem"),
         "-config", str(tmp_path / "req.cnf")],
        capture_output=True, text=True, check=True,
    ).stdout


def test_the_honest_request_is_read_back_and_accepted(tmp_path):
    pem = make_csr(tmp_path, openssl_config("web-1", WEB1, organization=ORG))
    got = read_csr(pem)
    assert got.dns == ("web-1", "web-1.internal") and got.ips == ("10.10.0.5", "10.200.0.9")
    assert got.key == "ECDSA P-256"
    assert check_csr(pem, "web-1", WEB1, organization=ORG) == pem


@pytest.mark.parametrize(
    ("sans", "cn", "message"),
    [
        # web-1 asks for db-1's name: a certificate that would pass for the database.
        (san_entries("web-1", private_ip="10.10.0.5", overlay_ip="10.200.0.9", domain="internal",
                     dns_names=["db-1"]), "web-1", "DNS names"),
        # ... or for db-1's address.
        (san_entries("web-1", private_ip="10.10.0.5", overlay_ip="10.200.0.9", domain="internal",
                     extra_ips=["10.10.0.7"]), "web-1", "IP addresses"),
        # ... or presents itself as db-1 altogether.
        (DB1, "db-1", "subject is [O=hardened-do, CN=db-1], expected CN=web-1"),
        # ... or drops its own overlay address (harmless, but not what was asked).
        (san_entries("web-1", private_ip="10.10.0.5", domain="internal"), "web-1", "IP addresses"),
    ],
)
def test_a_request_for_another_hosts_name_or_address_is_refused(tmp_path, sans, cn, message):
    pem = make_csr(tmp_path, openssl_config(cn, sans, organization=ORG))
    with pytest.raises(CsrError) as info:
        check_csr(pem, "web-1", WEB1, organization=ORG)
    text = str(info.value)
    assert text.startswith("host web-1: refusing to sign") and message in text


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (("rsa:2048",), "key is unknown"),
        (("ec", "-pkeyopt", "ec_paramgen_curve:P-384"), "key is EC 1.3.132.0.34"),
    ],
)
def test_a_request_with_another_key_type_is_refused(tmp_path, key, message):
    pem = make_csr(tmp_path, openssl_config("web-1", WEB1, organization=ORG), key)
    with pytest.raises(CsrError, match=message):
        check_csr(pem, "web-1", WEB1, organization=ORG)


def test_other_kinds_of_names_are_refused(tmp_path):
    config = openssl_config("web-1", WEB1, organization=ORG).replace("[alt]\n", "[alt]\nURI.1 = spiffe://db-1\n")
    pem = make_csr(tmp_path, config)
    with pytest.raises(CsrError, match="other name"):
        check_csr(pem, "web-1", WEB1, organization=ORG)


@pytest.mark.parametrize("pem", ["", "garbage", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"])
def test_garbage_is_refused_cleanly(pem):
    with pytest.raises(CsrError, match="host web-1: refusing to sign"):
        check_csr(pem, "web-1", WEB1, organization=ORG)
