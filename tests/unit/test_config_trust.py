"""Config is a trust boundary: no value reaches a host unchecked.

Two halves. Named hostile inputs, one per class of hole (trailing newlines,
zone ids, the internet in pieces, names that collide with the images,
multi-line and mismatched keys, silently ignored config, ranges and blobs
that are not what they claim, echoed secrets). Then generated configs, valid
and hostile: for every one the parser accepts, the rendered user-data is
checked by the real tools (cloud-init's schema validator, `bash -n`, `sshd -t`,
`apt-config`) and a strict firewall-line grammar, and no secret from the
input appears in any output or error.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import struct
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardened_do.cloud_init import render
from hardened_do.cloud_init.render import build_cloud_config, render_user_data
from hardened_do.components.config import ConfigError, read_pulumi_config, read_stack_file
from hardened_do.components.names import SYSTEM_ACCOUNTS, do_name
from hardened_do.components.stack import load_stack_file, parse_stack_config
from tests.conftest import ROOT, dev_config, make_ca_pem, require_tool


def parse(raw: dict):
    return parse_stack_config(raw, name_prefix="hd-test")


def reject(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    return str(info.value)


def _ssh_string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _ed25519_line(comment: str = "a@example.invalid") -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}".rstrip()


# A private key the tests paste in many places. Its secret scalar, and every
# 16-character run of its encodings, must never be printed.
_EC_PRIVATE = ec.generate_private_key(ec.SECP256R1())
EC_PEM = _EC_PRIVATE.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
).decode()
EC_BODY = "".join(l for l in EC_PEM.splitlines() if "-----" not in l)  # pasted without armour
EC_SCALAR_HEX = format(_EC_PRIVATE.private_numbers().private_value, "064x")
SECRETS = (EC_PEM, EC_BODY, EC_SCALAR_HEX)


def _secret_fragments() -> set[str]:
    frags = {EC_SCALAR_HEX[i : i + 16] for i in range(0, 48, 8)}
    frags |= {EC_BODY[i : i + 16] for i in range(16, len(EC_BODY) - 16, 8)}
    return frags


SECRET_FRAGMENTS = _secret_fragments()


def assert_no_secret(text: str) -> None:
    leaked = [f for f in SECRET_FRAGMENTS if f in text]
    assert not leaked, f"secret material echoed: {len(leaked)} fragments"


# ---- named classes of hostile input --------------------------------------------

HOSTILE = {
    # trailing newlines and other control characters, in every kind of field
    "admin_user newline": (lambda c: c.update(admin_user="ops\n"), "admin_user", "control character"),
    "region newline": (lambda c: c.update(region="fra1\n"), "region", "control character"),
    "reboot time newline": (
        lambda c: c["unattended_upgrades"].update(reboot_time="04:30\n"), "reboot_time", "control character"
    ),
    "host name newline": (lambda c: c["hosts"][1].update(name="web-1\n"), "hosts[1].name", "control character"),
    "service name tab": (lambda c: c["roles"]["web"]["services"][0].update(name="ht\ttp"), "services[0].name", "control"),
    "c1 control in size": (lambda c: c.update(default_size="s-1vcpu-1gb\x85"), "default_size", "control"),
    "control char in a key": (lambda c: c.update({"region\x00": "fra1"}), "(top level)", "control"),
    "key comment newline": (
        lambda c: c.update(admin_ssh_keys=[_ed25519_line("me\nssh-dss AAAAB3NzaC1kc3M= evil")]),
        "admin_ssh_keys",
        "control character",
    ),
    "pem with carriage returns": (
        lambda c: c.update(trusted_ca_pem=make_ca_pem().replace("\n", "\r\n")), "trusted_ca_pem", "carriage"
    ),
    # addresses
    "zone id in ssh source": (
        lambda c: c.update(ssh_allowed_sources=["fe80::1%$(reboot)/128"]), "ssh_allowed_sources", "zone ids"
    ),
    "zone id in service source": (
        lambda c: c["roles"]["web"]["services"][0].update(allowed_sources=["fe80::%eth0/128"]),
        "roles.web.services[0].allowed_sources",
        "zone ids",
    ),
    "internet in two halves v4": (
        lambda c: c.update(ssh_allowed_sources=["0.0.0.0/1", "128.0.0.0/1"]), "ssh_allowed_sources", "allow_ssh_from_anywhere"
    ),
    "internet in two halves v6": (
        lambda c: c.update(ssh_allowed_sources=["::/1", "8000::/1"]), "ssh_allowed_sources", "allow_ssh_from_anywhere"
    ),
    "a /7 of public v4": (lambda c: c.update(ssh_allowed_sources=["44.0.0.0/7"]), "ssh_allowed_sources", "IPv4 internet"),
    "two /9s and a /10": (
        lambda c: c.update(ssh_allowed_sources=["44.0.0.0/9", "44.128.0.0/9", "45.0.0.0/10"]),
        "ssh_allowed_sources",
        "allow_ssh_from_anywhere",
    ),
    "a /31 of v6": (lambda c: c.update(ssh_allowed_sources=["2001:db8::/31"]), "ssh_allowed_sources", "IPv6"),
    "port as bool": (lambda c: c["roles"]["web"]["services"][0].update(port=True), "port", "whole number"),
    # names that collide with the images
    **{
        f"admin_user {name}": (lambda c, n=name: c.update(admin_user=n), "admin_user", "already exists")
        for name in ("www-data", "nobody", "ssh-users", "systemd-network", "messagebus", "syslog", "sshd", "ubuntu")
    },
    "admin_user _apt": (lambda c: c.update(admin_user="_apt"), "admin_user", "Unix user name"),
    # ranges and blobs
    "overlay loopback": (lambda c: c.update(overlay_cidr="127.0.0.0/24"), "overlay_cidr", "loopback"),
    "overlay link-local": (lambda c: c.update(overlay_cidr="169.254.169.0/24"), "overlay_cidr", "metadata"),
    "overlay unspecified": (lambda c: c.update(overlay_cidr="0.0.0.0/24"), "overlay_cidr", "overlay_cidr"),
    "ca body not base64 der": (
        lambda c: c.update(trusted_ca_pem="-----BEGIN CERTIFICATE-----\nnot!base64\n-----END CERTIFICATE-----"),
        "trusted_ca_pem",
        "not base64 DER",
    ),
    "ca not a ca": (lambda c: c.update(trusted_ca_pem=make_ca_pem(ca=False)), "trusted_ca_pem", "not a CA"),
    "ca expired": (lambda c: c.update(trusted_ca_pem=make_ca_pem(days=-1)), "trusted_ca_pem", "expired"),
    "two certificates": (
        lambda c: c.update(trusted_ca_pem=make_ca_pem() + make_ca_pem()), "trusted_ca_pem", "one PEM certificate"
    ),
    "region that does not exist": (lambda c: c.update(region="xyz9"), "region", "allow_unlisted_slugs"),
    "size that does not exist": (
        lambda c: c["roles"]["db"].update(size="s-99vcpu-1gb"), "roles.db.size", "allow_unlisted_slugs"
    ),
    # keys
    "ecdsa curve mismatch": (
        lambda c: c.update(admin_ssh_keys=[_mismatched_ecdsa()]), "admin_ssh_keys", "curve"
    ),
    "ed25519 blob under rsa type": (
        lambda c: c.update(admin_ssh_keys=["ssh-rsa " + _ed25519_line().split()[1]]), "admin_ssh_keys", "admin_ssh_keys"
    ),
    "trailing data in key blob": (
        lambda c: c.update(admin_ssh_keys=[_trailing_data_key()]), "admin_ssh_keys", "not a valid OpenSSH"
    ),
}


def _mismatched_ecdsa() -> str:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    blob = _ssh_string(b"ecdsa-sha2-nistp384") + _ssh_string(b"nistp256") + _ssh_string(point)
    return f"ecdsa-sha2-nistp384 {base64.b64encode(blob).decode()} x@example.invalid"


def _trailing_data_key() -> str:
    blob = base64.b64decode(_ed25519_line().split()[1]) + b"\x00\x00\x00\x01X"
    return f"ssh-ed25519 {base64.b64encode(blob).decode()}"


@pytest.mark.parametrize("case", sorted(HOSTILE), ids=sorted(HOSTILE))
def test_hostile_input_is_rejected(case):
    mutate, key, words = HOSTILE[case]
    raw = copy.deepcopy(dev_config())
    mutate(raw)
    message = reject(raw)
    assert key in message, message
    assert words in message, message


def test_system_accounts_are_one_list_and_cover_the_images():
    for name in ("www-data", "nobody", "_apt", "messagebus", "syslog", "ssh-users", "systemd-timesync", "sshd"):
        assert name in SYSTEM_ACCOUNTS or name.startswith(("systemd-", "_"))


@pytest.mark.parametrize(
    "sources",
    [
        ["44.0.0.0/8"],  # exactly a /8: at the threshold, not over it
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"],  # not routable
        ["2001:db8::/32"],
        ["fc00::/7"],  # unique local, not global
    ],
)
def test_ssh_sources_up_to_the_threshold_need_no_opt_in(sources, dev_raw):
    dev_raw["ssh_allowed_sources"] = sources
    assert parse(dev_raw).ssh_allowed_sources == tuple(sources)


def test_opt_in_allows_the_internet_in_pieces(dev_raw):
    dev_raw["ssh_allowed_sources"] = ["0.0.0.0/1", "128.0.0.0/1"]
    dev_raw["allow_ssh_from_anywhere"] = True
    assert parse(dev_raw).allow_ssh_from_anywhere


def test_addresses_are_kept_in_canonical_form(dev_raw):
    dev_raw["ssh_allowed_sources"] = ["2001:DB8:0:0::/64"]
    dev_raw["roles"]["web"]["services"][0]["allowed_sources"] = ["2001:0db8::/48"]
    stack = parse(dev_raw)
    assert stack.ssh_allowed_sources == ("2001:db8::/64",)
    assert stack.roles["web"].services[0].allowed_sources == ("2001:db8::/48",)


def test_unlisted_slugs_pass_with_the_escape_hatch_but_keep_their_shape(dev_raw):
    dev_raw.update(region="xyz9", default_size="s-64vcpu-512gb", allow_unlisted_slugs=True)
    stack = parse(dev_raw)
    assert (stack.region, stack.default_size) == ("xyz9", "s-64vcpu-512gb")
    dev_raw["region"] = "x$(id)"
    assert "region slug" in reject(dev_raw)


def test_the_string_null_is_a_value_not_a_missing_key(dev_raw):
    dev_raw["region"] = "null"
    assert "hardened-do:region: must be a region slug" in reject(dev_raw)


def test_keys_are_kept_canonical_and_comments_printable(dev_raw):
    line = _ed25519_line("ops@laptop")
    dev_raw["admin_ssh_keys"] = ["  " + line.replace(" ", "   ", 1)]
    assert parse(dev_raw).admin_ssh_keys == (line,)


def test_real_dsa_key_is_refused(dev_raw, tmp_path):
    keygen = require_tool("ssh-keygen")
    proc = subprocess.run([keygen, "-q", "-t", "dsa", "-N", "", "-f", str(tmp_path / "k")], capture_output=True)
    if proc.returncode != 0:
        pytest.skip("this ssh-keygen no longer generates DSA keys")
    dev_raw["admin_ssh_keys"] = [(tmp_path / "k.pub").read_text().strip()]
    assert "DSA keys are refused" in reject(dev_raw)


@pytest.mark.parametrize("secret", SECRETS, ids=["pem", "unarmoured body", "scalar"])
@pytest.mark.parametrize("where", ["admin_ssh_keys", "key type", "trusted_ca_pem", "admin_user", "service name"])
def test_private_key_material_is_never_echoed(secret, where, dev_raw):
    if where == "admin_ssh_keys":
        dev_raw["admin_ssh_keys"] = [secret]
    elif where == "key type":
        dev_raw["admin_ssh_keys"] = [f"{secret.replace(chr(10), '')} AAAA comment"]
    elif where == "trusted_ca_pem":
        dev_raw["trusted_ca_pem"] = secret
    elif where == "admin_user":
        dev_raw["admin_user"] = secret
    else:
        dev_raw["roles"]["web"]["services"][0]["name"] = secret
    message = reject(dev_raw)
    assert_no_secret(message)
    if secret is not EC_SCALAR_HEX:
        assert "PRIVATE key" in message, message


# ---- the escaping helpers -------------------------------------------------------


@pytest.mark.parametrize("value", ["a\nb", "x\x00", "\u2028"])
@pytest.mark.parametrize(
    "helper",
    [render.shell_quote, render.sshd_value, render.apt_string, render.ufw_comment, render.yaml_comment, render.fail2ban_address,
     render.config_token],
)
def test_escaping_helpers_refuse_control_characters(helper, value):
    with pytest.raises(render.UnsafeValue):
        helper(value)


def test_escaping_helpers_quote_for_their_target(tmp_path):
    assert render.shell_quote("fe80::1%$(reboot)/128") == "'fe80::1%$(reboot)/128'"
    out = subprocess.run(["sh", "-c", f"printf %s {render.shell_quote(chr(39) + '; touch x')}"], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout == "'; touch x" and not (tmp_path / "x").exists()
    for bad in ("ssh users", 'a"b', "#x"):
        with pytest.raises(render.UnsafeValue):
            render.sshd_value(bad)
    assert render.apt_string("04:30") == '"04:30"'
    with pytest.raises(render.UnsafeValue):
        render.apt_string('04:30"; APT::x "1')
    assert do_name("hd", "me$(id) laptop\u00e9") == "hd-me-id-laptop"
    assert render.fail2ban_address("203.0.113.0/24") == "203.0.113.0/24"
    for bad in ("203.0.113.0/24 0.0.0.0/0", "1.2.3.4#x", ""):
        with pytest.raises(render.UnsafeValue):
            render.fail2ban_address(bad)


def test_every_template_value_goes_through_a_filter():
    for path in render.TEMPLATES.glob("*.j2"):
        for expr in re.findall(r"{{(.*?)}}", path.read_text()):
            assert re.search(r"\|\s*(shell|sshd|apt_string|ufw_comment|fail2ban_address|config_token)\s*$", expr), f"{path.name}: {{{{{expr}}}}}"


# ---- the over-budget message names the cause ----------------------------------


def test_over_budget_names_the_ssh_sources_when_they_dominate(dev_raw):
    dev_raw["ssh_allowed_sources"] = [f"198.51.{i // 64}.{(i % 64) * 4}/30" for i in range(220)]
    message = reject(dev_raw)
    # 220 SSH rules, and as many WireGuard rules for admin peers (mesh on).
    assert "budget" in message and "most of it is ssh_allowed_sources (440 UFW rules)" in message


def test_over_budget_names_the_keys_when_they_dominate(dev_raw):
    dev_raw["admin_ssh_keys"] = [_ed25519_line(f"admin{i}@example.invalid") for i in range(160)]
    message = reject(dev_raw)
    assert "most of it is admin_ssh_keys (160 keys)" in message


# ---- reading config with Pulumi's semantics -------------------------------------


def _stack_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(text)
    return path


def _dev_text() -> str:
    return (ROOT / "Pulumi.dev.yaml").read_text()


def test_a_key_without_namespace_is_the_projects(tmp_path):
    text = _dev_text().replace("  hardened-do:region: fra1", "  region: ams3")
    raw, _ = read_stack_file(_stack_file(tmp_path, text))
    assert raw["region"] == "ams3"


def test_a_misspelt_namespace_is_an_error_naming_it(tmp_path):
    text = _dev_text() + "  hardend-do:region: ams3\n"
    with pytest.raises(ConfigError) as info:
        read_stack_file(_stack_file(tmp_path, text))
    assert "unknown config namespace 'hardend-do'" in str(info.value)


def test_other_providers_namespaces_are_left_to_them(tmp_path):
    text = _dev_text() + "  digitalocean:token:\n    secure: AAABAxyz\n  pulumi:tags:\n    team: ops\n"
    raw, _ = read_stack_file(_stack_file(tmp_path, text))
    assert "token" not in raw and "tags" not in raw


@pytest.mark.parametrize(
    "extra, words",
    [
        ("  region: ams3\n", "set twice"),  # hardened-do:region is set too
        ("  hardened-do:region: ams3\n", "duplicate key 'hardened-do:region'"),
        ("  hardened-do:trusted_ca_pem: null\n", "is null"),
    ],
)
def test_keys_set_twice_or_null_are_errors(tmp_path, extra, words):
    with pytest.raises(ConfigError) as info:
        read_stack_file(_stack_file(tmp_path, _dev_text() + extra))
    assert words in str(info.value)


def test_a_duplicate_key_deep_inside_is_an_error(tmp_path):
    text = _dev_text().replace("    web:\n      services:", "    web:\n      public_networking: true\n      public_networking: false\n      services:")
    assert text != _dev_text()
    with pytest.raises(ConfigError) as info:
        read_stack_file(_stack_file(tmp_path, text))
    assert "duplicate key 'public_networking'" in str(info.value)


def test_the_pulumi_program_reads_config_with_the_same_rules():
    import json

    from pulumi.runtime import config as runtime_config

    def read(config: dict) -> dict:
        runtime_config.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}, [])
        try:
            return read_pulumi_config()[0]
        finally:
            runtime_config.set_all_config({}, [])

    base = {"hardened-do:name_prefix": "hd", "hardened-do:admin_user": "null", "hardened-do:roles": {"web": {}}}
    raw = read(base | {"digitalocean:token": "x"})
    assert raw == {"admin_user": "null", "roles": {"web": {}}}  # "null" stays a string
    with pytest.raises(ConfigError) as info:
        read(base | {"hardend-do:region": "ams3"})
    assert "unknown config namespace 'hardend-do'" in str(info.value)


# ---- generated configs, checked by the real tools --------------------------------

_CONTROL_CHARS = st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028"])
_UNICODE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_SHELLISH = st.sampled_from(["$(reboot)", "`id`", "'; rm -rf / #", '"', "\\", "#", " ", "%eth0", "${IFS}"])


def _hostile(valid: list) -> st.SearchStrategy:
    """A valid value, or a valid value spoiled (suffix, prefix, unicode, huge, a secret)."""
    base = st.sampled_from(valid)
    return st.one_of(
        base,
        base,
        st.tuples(base, _CONTROL_CHARS).map("".join),
        st.tuples(base, _SHELLISH).map("".join),
        st.tuples(_SHELLISH, base).map("".join),
        _UNICODE,
        st.integers(1, 20000).map(lambda n: "a" * n),
        st.sampled_from(SECRETS),
    )


_GOOD_SOURCES = ["198.51.100.0/24", "203.0.113.7/32", "44.0.0.0/8", "2001:db8::/48", "2001:DB8:0::/64"]
_WIDE_SOURCES = ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1", "0.0.0.0/0"]
_FIELDS = ("admin_user", "region", "ssh", "overlay", "comment", "ca", "reboot", "name", "port", "sources", "host")


@st.composite
def generated_configs(draw) -> dict:
    """The dev stack with up to two fields spoiled (and wide sources now and then)."""
    spoil = draw(st.sets(st.sampled_from(_FIELDS), max_size=2))

    def pick(field: str, good: list):
        return draw(_hostile(good) if field in spoil else st.sampled_from(good))

    raw = copy.deepcopy(dev_config())
    raw["admin_user"] = pick("admin_user", ["ops", "deploy", "admin2", "www-data", "ssh-users"][:3])
    raw["region"] = pick("region", ["fra1", "ams3", "nyc3", "sgp1"])
    raw["ssh_allowed_sources"] = [pick("ssh", _GOOD_SOURCES) for _ in range(draw(st.integers(1, 3)))]
    if draw(st.integers(0, 4)) == 0:
        raw["ssh_allowed_sources"] += draw(st.lists(st.sampled_from(_WIDE_SOURCES), min_size=1, max_size=2))
    raw["allow_ssh_from_anywhere"] = draw(st.booleans())
    raw["overlay_cidr"] = pick("overlay", ["10.200.0.0/24", "192.168.50.0/24"])
    comment = pick("comment", ["ops@laptop", "", "a b c"])
    raw["admin_ssh_keys"] = [_KEY_LINE + (" " + comment if comment else "")]
    if draw(st.booleans()):
        raw["trusted_ca_pem"] = pick("ca", [_CA_PEM])
    raw["unattended_upgrades"]["reboot_time"] = pick("reboot", ["04:30", "23:59", "00:00"])
    web = raw["roles"]["web"]["services"]
    web[0]["name"] = pick("name", ["http", "www", "h2"])
    web[0]["port"] = draw(
        st.one_of(st.integers(1, 65535), st.booleans(), st.sampled_from(["80", 80.0]))
        if "port" in spoil else st.integers(1, 65535).filter(lambda p: p not in (22, 443, 51820))
    )
    web[1]["allowed_sources"] = [pick("sources", _GOOD_SOURCES) for _ in range(draw(st.integers(0, 3)))]
    raw["hosts"][1]["name"] = pick("host", ["web-1", "w1", "a" * 63])
    return raw


_KEY_LINE = _ed25519_line("")
_CA_PEM = make_ca_pem()
# A strict grammar for every rule line of the firewall script.
_SHELL_WORD = r"(?:[A-Za-z0-9@%+=:,./_-]+|'[^'\n]*')"
_UFW_LINE = re.compile(
    r"ufw (allow|limit) proto (tcp|udp) from (any|[0-9a-f.:]+/[0-9]{1,3}) to any port [0-9]{1,5} "
    r"comment '?hardened-do [a-z0-9-]+'?"
)
_FIXED_LINES = {
    "ufw --force reset >/dev/null", "ufw default deny incoming", "ufw default allow outgoing",
    "ufw default deny routed", "ufw logging low", "ufw --force enable", "set -eu",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Generated configs: (accepted user-data by digest, count accepted, count rejected)."""
    accepted: dict[str, str] = {}
    counts = {"accepted": 0, "rejected": 0}

    @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(generated_configs())
    def run(raw):
        try:
            stack = parse(raw)
        except ConfigError as exc:
            counts["rejected"] += 1
            assert_no_secret(str(exc))
            for secret in SECRETS:
                assert secret not in str(exc)
            return
        counts["accepted"] += 1
        for role in stack.roles:
            host = next(h.name for h in stack.hosts if h.role == role)
            text = render_user_data(stack, host)
            assert_no_secret(text)
            accepted.setdefault(hashlib.sha256(text.encode()).hexdigest(), text)

    run()
    assert counts["accepted"] >= 5 and counts["rejected"] >= 5, counts
    return accepted, counts


def _files(text: str) -> dict[str, str]:
    return {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}


def test_generated_configs_render_safe_firewall_scripts(generated, tmp_path):
    bash = require_tool("bash")
    accepted, _ = generated
    dev_files = _files(render_user_data(load_stack_file(ROOT / "Pulumi.dev.yaml"), "web-1"))
    fixed_hand_over = dev_files["/usr/local/sbin/hardened-do-firewall"].partition("ufw --force enable\n")[2]
    scripts = []
    for digest, text in accepted.items():
        for path, content in _files(text).items():
            if path.startswith("/usr/local/sbin/"):
                scripts.append(tmp_path / f"{digest[:12]}-{Path(path).name}")
                scripts[-1].write_text(content)
            if path == "/usr/local/sbin/hardened-do-firewall":
                # The rules up to `ufw --force enable` depend on the config and
                # follow the grammar; the hand-over after it is the same text
                # whatever the config.
                rules, enable, hand_over = content.partition("ufw --force enable\n")
                assert enable and hand_over == fixed_hand_over
                for line in rules.splitlines():
                    if line and not line.startswith("#") and line not in _FIXED_LINES:
                        assert _UFW_LINE.fullmatch(line), line
    for script in scripts:
        proc = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script.name}: {proc.stderr}"


def test_generated_configs_pass_cloud_inits_schema(generated, tmp_path):
    accepted, _ = generated
    validator = ROOT / "scripts" / "cloud-init-schema"
    if not Path("/usr/bin/apt-get").exists():
        pytest.skip("needs apt-get to fetch Debian's cloud-init package")
    pydir = subprocess.run([str(validator), "--path"], capture_output=True, text=True, check=True).stdout.strip()
    paths = []
    for digest, text in accepted.items():
        paths.append(tmp_path / f"{digest[:12]}.yaml")
        paths[-1].write_text(text)
    # A broken file among them proves the validator can fail.
    broken = tmp_path / "broken.yaml"
    broken.write_text("#cloud-config\nssh_pwauth: [yes]\nusers: 5\n")
    paths.append(broken)
    # cloud-init's own file validator, once per file, in one process.
    program = (
        "import sys\n"
        "from cloudinit.config.schema import SchemaValidationError, get_schema, validate_cloudconfig_file\n"
        "schema = get_schema()\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        validate_cloudconfig_file(p, schema)\n"
        "    except SchemaValidationError as exc:\n"
        "        print('invalid', p, str(exc)[:500])\n"
    )
    import os
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", program, *map(str, paths)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": pydir},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    invalid = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("invalid ")]
    assert invalid == [str(broken)], proc.stdout[-3000:]


def test_generated_configs_sshd_dropins_pass_sshd_t(generated, tmp_path):
    sshd = require_tool("sshd")
    accepted, _ = generated
    dropins = {_files(t)[render.SSHD_DROPIN] for t in accepted.values()}
    hostkey = tmp_path / "hostkey"
    subprocess.run([require_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    for i, dropin in enumerate(sorted(dropins)):
        main = tmp_path / f"sshd_config{i}"
        main.write_text(dropin + "UsePAM no\n")
        proc = subprocess.run([sshd, "-t", "-f", str(main), "-o", f"HostKey={hostkey}"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_generated_configs_apt_files_parse_with_apt_config(generated, tmp_path):
    apt_config = require_tool("apt-config")
    accepted, _ = generated
    apt_files = {c for t in accepted.values() for p, c in _files(t).items() if p.startswith("/etc/apt/apt.conf.d/")}
    for i, content in enumerate(sorted(apt_files)):
        path = tmp_path / f"apt{i}.conf"
        path.write_text(content)
        proc = subprocess.run([apt_config, "-c", str(path), "dump"], capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
        if "Automatic-Reboot-Time" in content:
            assert re.search(r'Unattended-Upgrade::Automatic-Reboot-Time "\d\d:\d\d";', proc.stdout)


def test_the_tools_are_real(tmp_path):
    """The checks above can fail: each tool refuses a broken file."""
    bad = tmp_path / "bad.sh"
    bad.write_text("ufw allow from $(\n")
    assert subprocess.run([require_tool("bash"), "-n", str(bad)], capture_output=True).returncode != 0
    apt = tmp_path / "bad.conf"
    apt.write_text('Unattended-Upgrade::Automatic-Reboot-Time "04:30\n";\n')
    proc = subprocess.run([require_tool("apt-config"), "-c", str(apt), "dump"], capture_output=True, text=True)
    assert proc.returncode != 0 or proc.stderr.strip()
    assert not _UFW_LINE.fullmatch("ufw allow proto tcp from fe80::1%$(reboot)/128 to any port 22 comment 'hardened-do ssh'")


def test_no_pattern_in_the_product_can_pass_a_trailing_newline():
    """`$` matches before a final newline and `re.match` only anchors the
    start: product code uses `fullmatch` (or `\\Z`) for every check."""
    offenders = []
    for top in ("components", "cloud_init"):
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text()
            if "re.match(" in text:
                offenders.append(f"{path.name}: re.match(")
            for literal in re.findall(r"re\.compile\(\s*r?\"((?:[^\"\\]|\\.)*)\"", text):
                if literal.endswith("$") or "$)" in literal:
                    offenders.append(f"{path.name}: pattern ending in $")
    assert not offenders, offenders
