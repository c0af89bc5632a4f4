"""Host CSR contents (components/csr.py), checked with the real openssl CLI."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardened_do.components.csr import CsrError, Sans, openssl_config, san_entries
from tests.conftest import require_tool


def test_sans_host_name_first_then_domain_aliases_and_addresses():
    sans = san_entries(
        "web-1", private_ip="10.10.0.5", overlay_ip="10.200.0.44",
        dns_names=["www.example.internal", "WEB-1.internal."], domain="internal",
    )
    assert sans.dns == ("web-1", "web-1.internal", "www.example.internal")
    assert sans.ips == ("10.10.0.5", "10.200.0.44")


def test_sans_without_optional_parts():
    assert san_entries("db-1") == Sans(("db-1",), ())


def test_ipv6_addresses_are_normalised():
    assert san_entries("a", private_ip="fd00:0::5").ips == ("fd00::5",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dns_names": ["bad name"]},
        {"dns_names": ["x\n[alt]\nDNS.9 = evil.example"]},
        {"dns_names": ["a,b"]},
        {"dns_names": ["$ENV::HOME"]},
        {"private_ip": "10.10.0.300"},
        {"overlay_ip": "not-an-ip"},
        {"domain": "in ternal"},
    ],
)
def test_bad_sans_are_refused_naming_the_host(kwargs):
    with pytest.raises(CsrError) as exc:
        san_entries("web-1", **kwargs)
    assert "web-1" in str(exc.value)


def test_organization_cannot_inject_config():
    with pytest.raises(CsrError):
        openssl_config("web-1", Sans(("web-1",), ()), organization="x\nCN = evil")


def _csr_text(config: str, tmp_path) -> str:
    openssl = require_tool("openssl")
    cnf = tmp_path / "req.cnf"
    cnf.write_text(config)
    csr = subprocess.run(
        [openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(tmp_path / "key.pem"), "-config", str(cnf)],
        check=True, capture_output=True, text=True,
    ).stdout
    return subprocess.run([openssl, "req", "-noout", "-text"], input=csr, check=True, capture_output=True, text=True).stdout


def test_openssl_makes_a_csr_with_exactly_these_sans(tmp_path):
    sans = san_entries("web-1", private_ip="10.10.0.5", overlay_ip="10.200.0.44", domain="internal")
    text = _csr_text(openssl_config("web-1", sans, organization="hardened-do"), tmp_path)
    assert "Subject: O = hardened-do, CN = web-1" in text
    assert "DNS:web-1, DNS:web-1.internal, IP Address:10.10.0.5, IP Address:10.200.0.44" in text
    assert "CA:FALSE" in text and "TLS Web Server Authentication" in text


@settings(max_examples=25, deadline=None)
@given(
    labels=st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), min_size=1, max_size=4),
    octet=st.integers(1, 254),
)
def test_any_valid_name_set_yields_a_csr_openssl_accepts(labels, octet, tmp_path_factory):
    host = labels[0]
    sans = san_entries(host, private_ip=f"10.10.0.{octet}", dns_names=[".".join(labels)])
    text = _csr_text(openssl_config(host, sans), tmp_path_factory.mktemp("csr"))
    for name in sans.dns:
        assert f"DNS:{name}" in text
    assert f"IP Address:10.10.0.{octet}" in text
