"""Config keys of the mesh, the CA and the audit: secure defaults, clear refusals."""

from __future__ import annotations

import pytest

from hardened_do.components.config import ConfigError
from hardened_do.components.stack import parse_stack_config
from tests.conftest import dev_config

KEY = "sXkB8vcfK3iHm5MKrOEx8mNE5SOq9TUtlhIYDYeuBgE="
# A WireGuard private key is the same shape as a public one; what matters is
# that nothing typed into the key's place is ever echoed.
SECRETISH = "cPrivateKeyMaterialThatMustNeverBeEchoed000"


def parse(**changes):
    return parse_stack_config({**dev_config(), **changes}, name_prefix="hd-test")


def reject(**changes) -> str:
    with pytest.raises(ConfigError) as info:
        parse(**changes)
    return str(info.value)


def test_defaults_are_the_secure_ones():
    stack = parse()
    assert stack.mesh is True and stack.pki is True and stack.audit_mode == "enforce"
    assert stack.pki_validity_hours == 720 and stack.pki_early_renewal_hours == 240
    assert stack.pki_domain == "internal" and stack.mesh_admin_peers == ()


def test_admin_peers_parse_from_name_colon_key():
    stack = parse(mesh_admin_peers=[f"alice-laptop:{KEY}"])
    (peer,) = stack.mesh_admin_peers
    assert (peer.name, peer.public_key) == ("alice-laptop", KEY)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mesh_admin_peers": ["alice"]}, "mesh_admin_peers"),
        ({"mesh_admin_peers": [f"Alice_Laptop:{KEY}"]}, "DNS label"),
        ({"mesh_admin_peers": [f"alice:{SECRETISH}"]}, "wg pubkey"),
        ({"mesh_admin_peers": [f"a:{KEY}", f"a:{KEY}"]}, "listed twice"),
        ({"mesh_admin_peers": [f"a:{KEY}"], "mesh": False}, "mesh is false"),
        ({"pki_early_renewal_hours": 720}, "pki_early_renewal_hours: 720 h is not shorter"),
        ({"pki_validity_hours": 20000}, "1 to 8760 hours"),
        ({"pki_ca_early_renewal_hours": 90000}, "pki_ca_early_renewal_hours"),
        ({"pki_validity_hours": 8000, "pki_ca_validity_hours": 7000, "pki_ca_early_renewal_hours": 100},
         "expire before the CA"),
        ({"pki_domain": "bad domain!"}, "pki_domain"),
        ({"audit_mode": "off"}, "audit_mode"),
        ({"pki_validity_hours": True}, "whole number"),
    ],
)
def test_bad_measures_config_is_refused_with_the_key_named(changes, message):
    text = reject(**changes)
    assert message in text
    assert SECRETISH not in text


def test_admin_peers_need_a_bastion():
    raw = dev_config()
    raw["roles"] = {"web": raw["roles"]["web"]}
    raw["hosts"] = [{"name": "web-1", "role": "web"}]
    with pytest.raises(ConfigError, match="bastion: true"):
        parse_stack_config({**raw, "mesh_admin_peers": [f"a:{KEY}"]}, name_prefix="hd-test")
