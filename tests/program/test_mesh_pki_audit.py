"""WireGuardMesh, InternalPki and ServiceAudit under Pulumi mocks.

The mocks stand in for the providers with real material where it matters:
the remote key command "prints" a real X25519 public key, the CSR command a
real CSR that openssl made from the component's request config, the audit
command a real report of components/hostagent/audit.py on a literal `ss` sample. The
monitor applies the engine's secret rules (additional_secret_outputs, and
outputs of secret inputs stay secret), so the secrecy assertions mean what
they would mean against the engine.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

from hardened_do.components import overlay
from hardened_do.components.audit import ServiceAudit
from hardened_do.components.mesh import WireGuardMesh
from hardened_do.components.pki import InternalPki
from hardened_do.components.remote import HostConnection, connection_args
from hardened_do.components.hostagent import audit as host_audit
from tests.conftest import require_tool

CMD = "command:remote:Command"
KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"

# --------------------------------------------------------------- real material


def _openssl(*args: str, input: str | None = None) -> str:
    return subprocess.run([require_tool("openssl"), *args], input=input, capture_output=True, text=True, check=True).stdout


_wg_keys: dict[str, str] = {}


def wg_public_key(host: str) -> str:
    """A real X25519 public key in WireGuard's encoding, stable per host."""
    if host not in _wg_keys:
        with tempfile.TemporaryDirectory() as d:
            key = Path(d, "k.pem")
            _openssl("genpkey", "-algorithm", "X25519", "-out", str(key))
            der = subprocess.run([require_tool("openssl"), "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                                 capture_output=True, check=True).stdout
        _wg_keys[host] = base64.b64encode(der[-32:]).decode()
    return _wg_keys[host]


def real_csr(config: str) -> str:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "req.cnf").write_text(config)
        return _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(Path(d, "k.pem")), "-config", str(Path(d, "req.cnf")))


def real_private_key(curve: str) -> str:
    name = {"P384": "secp384r1", "P256": "prime256v1"}[curve]
    return _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{name}")


CLEAN_SS = """\
tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=512,fd=3))
udp UNCONN 0 0 0.0.0.0:51820 0.0.0.0:*
"""
ROGUE_SS = CLEAN_SS + 'tcp LISTEN 0 5 0.0.0.0:8081 0.0.0.0:* users:(("python3",pid=4242,fd=3))\n'
DECLARED = {
    "version": 1, "role": "web", "vpc_cidr": "10.10.0.0/20", "overlay_cidr": "10.200.0.0/24",
    "services": [
        {"name": "ssh", "port": 22, "protocol": "tcp", "exposure": "public", "managed": True},
        {"name": "wireguard", "port": 51820, "protocol": "udp", "exposure": "private", "managed": True},
    ],
}
HOST_IPS = {"lo": ["127.0.0.1/8"], "eth0": ["203.0.113.10/20"], "eth1": ["10.10.0.5/20"]}


# --------------------------------------------------------------- mocks + engine rules


def _plain(value: Any) -> Any:
    """Deserialized inputs with secret wrappers removed (what a provider sees)."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _secret_paths(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return [prefix or "<root>"]
        out = []
        for k, v in value.items():
            out += _secret_paths(v, f"{prefix}.{k}" if prefix else k)
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out += _secret_paths(v, f"{prefix}[{i}]")
        return out
    return []


@dataclass
class Registered:
    type: str
    name: str
    parent: str
    inputs: dict
    outputs: dict
    secret_inputs: list[str]
    secret_outputs: list[str]
    additional_secret_outputs: list[str]
    dependencies: list[str] = field(default_factory=list)
    urn: str = ""


class FakeProviders(pulumi.runtime.Mocks):
    def __init__(self, audit_ss: dict[str, str] | None = None, command_output: bool = True):
        self.audit_ss = audit_ss or {}
        self.command_output = command_output

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = _plain(args.inputs)
        out = dict(inputs)
        if args.typ == CMD and self.command_output:
            out["stdout"] = self._command_stdout(args.name, inputs)
            out["stderr"] = ""
        elif args.typ == KEY:
            out["privateKeyPem"] = real_private_key(inputs.get("ecdsaCurve", "P256"))
            out["publicKeyPem"] = "-----BEGIN PUBLIC KEY-----\nMOCK\n-----END PUBLIC KEY-----\n"
        elif args.typ in (SELF_SIGNED, SIGNED):
            out["certPem"] = f"-----BEGIN CERTIFICATE-----\nMOCK-{args.name}\n-----END CERTIFICATE-----\n"
            out["validityEndTime"] = "2030-01-01T00:00:00Z"
            out["readyForRenewal"] = False
        elif args.typ == CERT_REQUEST:
            out["certRequestPem"] = f"-----BEGIN CERTIFICATE REQUEST-----\nMOCK-{args.name}\n-----END CERTIFICATE REQUEST-----\n"
        return f"{args.name}-id", out

    def _command_stdout(self, name: str, inputs: dict) -> str:
        create = inputs.get("create", "")
        host = name.rsplit("-", 2)[-1] if "-key-" not in name else name.split("-key-", 1)[1]
        if "usage: wg-keygen" in create:
            return wg_public_key(host) + "\n"
        if "usage: wg-apply" in create:
            return f"wg0 started: {inputs['stdin'].count('[Peer]')} peers\n"
        if "usage: tls-csr" in create:
            return real_csr(inputs["stdin"])
        if "usage: tls-install" in create:
            return "subject=O = hardened-do, CN = host\n"
        if "usage: audit-install" in create:
            audited = name.split("-audit-", 1)[1]
            report = host_audit.audit(host_audit.parse_ss(self.audit_ss.get(audited, CLEAN_SS)), DECLARED, HOST_IPS, audited)
            return json.dumps(report)
        raise AssertionError(f"unexpected remote command {name}")

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise AssertionError(f"unexpected provider function call: {args.token}")


class EngineLikeMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor plus the engine's secret rules, recording everything."""

    def __init__(self, mocks: FakeProviders):
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        raw = json_format.MessageToDict(request.object)
        inputs = rpc.deserialize_properties(request.object)
        resource_id, state = self.mocks.new_resource(
            pulumi.runtime.MockResourceArgs(typ=request.type, name=request.name, inputs=inputs,
                                            provider=request.provider, resource_id=request.importId,
                                            custom=request.custom or False)
        )
        secret_inputs = _secret_paths(raw)
        top_secret = {p.split(".")[0].split("[")[0] for p in secret_inputs}
        secret_outs = set(request.additionalSecretOutputs) | top_secret
        wrapped = {k: (rpc.wrap_rpc_secret(v) if k in secret_outs else v) for k, v in state.items()}
        obj = _sync_await(rpc.serialize_properties(wrapped, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        self.registered.append(
            Registered(
                type=request.type, name=request.name, parent=request.parent, urn=urn,
                inputs=_plain(inputs), outputs=state, secret_inputs=secret_inputs,
                secret_outputs=sorted(k for k in state if k in secret_outs),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                dependencies=list(request.dependencies),
            )
        )
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj)


@dataclass
class Run:
    resources: list[Registered]
    values: dict
    secret: dict

    def of(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> Registered:
        return next(r for r in self.resources if r.name == name)


def run(build, *, preview: bool = False, **mock_args) -> Run:
    """Evaluate `build()` (which returns {label: Output}) under the mocks."""
    mocks = FakeProviders(**mock_args)
    monitor = EngineLikeMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="hardened-do", stack="test", preview=preview, monitor=monitor)
    values: dict = {}
    secret: dict = {}

    @pulumi.runtime.test
    def evaluate():
        outputs = build()
        collected = []
        for label, value in outputs.items():
            out = pulumi.Output.from_input(value)

            async def record(out=out, label=label):
                secret[label] = await out.is_secret()

            collected.append(out.apply(lambda v, label=label: values.__setitem__(label, v)))
            collected.append(pulumi.Output.from_input(None).apply(lambda _, r=record: r()))
        return pulumi.Output.all(*collected)

    evaluate()
    return Run(resources=monitor.registered, values=values, secret=secret)


def refused(create) -> tuple[Run, str]:
    """Run `create` expecting ValueError; the plan shows what got registered anyway."""
    errors: list[str] = []

    def build():
        try:
            create()
        except ValueError as exc:
            errors.append(str(exc))
        return {}

    r = run(build)
    assert errors, "the component accepted arguments it should refuse"
    return r, errors[0]


# --------------------------------------------------------------- fixtures


def hosts(names=("bastion-1", "web-1", "db-1"), *, with_key=False) -> list[HostConnection]:
    out: list[HostConnection] = []
    bastion: HostConnection = {"name": "bastion-1", "host": "198.51.100.1", "user": "ops", "private_ip": "10.10.0.2",
                               "role": "bastion"}
    if with_key:
        bastion["private_key"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nDEPLOYKEY\n-----END OPENSSH PRIVATE KEY-----\n"
    for i, n in enumerate(names):
        if n == "bastion-1":
            out.append(bastion)
        else:
            h: HostConnection = {"name": n, "host": f"10.10.0.{10 + i}", "user": "ops",
                                 "private_ip": f"10.10.0.{10 + i}", "proxy": bastion, "role": n.split("-")[0]}
            if with_key:
                h["private_key"] = bastion["private_key"]
            out.append(h)
    return out


def mesh(names=("bastion-1", "web-1", "db-1"), **extra):
    def build():
        m = WireGuardMesh("mesh", {"hosts": hosts(names), "overlay_cidr": "10.200.0.0/24", **extra})
        return {"overlay_ips": m.overlay_ips, "public_keys": m.public_keys, "admin_configs": m.admin_configs}

    return build


# --------------------------------------------------------------- mesh


def test_mesh_reads_back_public_keys_and_gives_every_host_every_other_peer():
    r = run(mesh())
    keys = r.of(CMD)
    assert sorted(c.name for c in keys) == sorted(
        [f"mesh-key-{h}" for h in ("bastion-1", "web-1", "db-1")] + [f"mesh-peers-{h}" for h in ("bastion-1", "web-1", "db-1")])
    ips = r.values["overlay_ips"]
    assert r.values["public_keys"] == {h: wg_public_key(h) for h in ("bastion-1", "web-1", "db-1")}
    private = {h["name"]: h["private_ip"] for h in hosts()}
    for me in ("bastion-1", "web-1", "db-1"):
        cmd = r.named(f"mesh-peers-{me}")
        iface, peers = overlay.parse_config(cmd.inputs["stdin"])
        assert iface["Address"] == [f"{ips[me]}/24"]
        assert "PrivateKey" not in iface
        others = sorted(h for h in ips if h != me)
        assert [p["PublicKey"][0] for p in peers] == [wg_public_key(h) for h in others]
        assert [p["AllowedIPs"][0] for p in peers] == [f"{ips[h]}/32" for h in others]
        assert [p["Endpoint"][0] for p in peers] == [f"{private[h]}:51820" for h in others]
        # wg-apply runs after this host's own key exists
        assert r.named(f"mesh-key-{me}").urn in cmd.dependencies
        assert "wg syncconf" in cmd.inputs["create"] and "systemctl start \"wg-quick@$iface\"" in cmd.inputs["create"]
        assert cmd.parent.endswith("::mesh")


def test_key_command_prints_only_a_public_key_and_keeps_an_existing_one():
    r = run(mesh())
    create = r.named("mesh-key-web-1").inputs["create"]
    assert create.startswith("sudo -n sh -c ")
    assert 'if [ ! -s "$key" ]' in create and "umask 077" in create
    assert create.rstrip().endswith("wg-keygen wg0")
    assert "wg pubkey" in create and "cat " not in create.split("wg pubkey")[1]


def test_adding_a_host_changes_only_peer_lists_and_renumbers_nobody():
    before = run(mesh(("bastion-1", "web-1", "db-1")))
    after = run(mesh(("bastion-1", "web-1", "db-1", "web-2")))
    for h in ("bastion-1", "web-1", "db-1"):
        assert after.values["overlay_ips"][h] == before.values["overlay_ips"][h]
        assert after.named(f"mesh-key-{h}").inputs == before.named(f"mesh-key-{h}").inputs
        old, new = (x.named(f"mesh-peers-{h}").inputs for x in (before, after))
        assert old["create"] == new["create"] and old["stdin"] != new["stdin"]
        assert wg_public_key("web-2") in new["stdin"]
    removed = run(mesh(("bastion-1", "db-1")))
    assert {h: removed.values["overlay_ips"][h] for h in ("bastion-1", "db-1")} == {
        h: before.values["overlay_ips"][h] for h in ("bastion-1", "db-1")}
    assert wg_public_key("web-1") not in removed.named("mesh-peers-db-1").inputs["stdin"]


def test_connections_use_the_bastion_as_proxy_and_keep_deploy_keys_secret():
    def build():
        m = WireGuardMesh("mesh", {"hosts": hosts(with_key=True), "overlay_cidr": "10.200.0.0/24"})
        return {"k": m.public_keys}

    r = run(build)
    web = r.named("mesh-key-web-1")
    conn = web.inputs["connection"]
    assert conn["host"] == "10.10.0.11" and conn["user"] == "ops" and conn["port"] == 22
    assert conn["proxy"]["host"] == "198.51.100.1"
    # A bounded dial budget: 10 tries of at most 8 s each, bastion included.
    for c in (conn, conn["proxy"]):
        assert c["dialErrorLimit"] * c["perDialTimeout"] <= 120
        # ... whose tries still outlast the 30 s window of a `ufw limit` rule.
        assert c["dialErrorLimit"] * c["perDialTimeout"] > 30
    # The SDK marks the whole connection secret once any part of it is.
    assert _under("connection.privateKey", web.secret_inputs)
    assert _under("connection.proxy.privateKey", web.secret_inputs)


def test_agent_is_the_default_no_key_in_state():
    r = run(mesh())
    for c in r.of(CMD):
        assert "privateKey" not in c.inputs["connection"]


def test_admin_peers_get_a_secret_client_config_through_the_gateway():
    admin_key = wg_public_key("alice-laptop")
    r = run(mesh(admin_peers=[{"name": "alice", "public_key": admin_key}], admin_gateway="bastion-1",
                 admin_endpoint="198.51.100.1"))
    assert r.secret["admin_configs"] is True
    client = r.values["admin_configs"]["alice"]
    iface, peers = overlay.parse_config(client)
    assert iface["PrivateKey"] == ["<your key>"]
    assert iface["Address"] == [f"{r.values['overlay_ips']['admin:alice']}/32"]
    assert peers == [{"PublicKey": [wg_public_key("bastion-1")], "AllowedIPs": ["10.200.0.0/24"],
                      "Endpoint": ["198.51.100.1:51820"], "PersistentKeepalive": ["25"]}]
    gateway = r.named("mesh-peers-bastion-1")
    assert gateway.inputs["create"].endswith("wg-apply wg0 1")
    assert admin_key in gateway.inputs["stdin"]
    assert r.named("mesh-peers-web-1").inputs["create"].endswith("wg-apply wg0 0")
    assert admin_key not in r.named("mesh-peers-web-1").inputs["stdin"]


def test_without_admins_the_configs_output_is_an_empty_secret():
    r = run(mesh())
    assert r.values["admin_configs"] == {} and r.secret["admin_configs"] is True


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"admin_peers": [{"name": "alice", "public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="}]}, "admin_gateway"),
        ({"admin_peers": [{"name": "alice", "public_key": "not a key"}], "admin_gateway": "bastion-1",
          "admin_endpoint": "198.51.100.1"}, "admin peer alice"),
        ({"overlay_pins": {"web-1": "10.9.9.9"}}, "not a host address"),
        ({"listen_port": 0}, "listen_port"),
    ],
)
def test_bad_mesh_args_fail_before_anything_is_registered(extra, message):
    r, error = refused(lambda: WireGuardMesh("mesh", {"hosts": hosts(), "overlay_cidr": "10.200.0.0/24", **extra}))
    assert message in error
    assert r.resources == []


def test_mesh_without_private_ip_fails_before_anything_is_registered():
    bad = hosts()
    del bad[1]["private_ip"]
    r, error = refused(lambda: WireGuardMesh("mesh", {"hosts": bad, "overlay_cidr": "10.200.0.0/24"}))
    assert r.resources == [] and "without private_ip" in error and "web-1" in error


def test_mocks_without_command_output_still_evaluate():
    """offline/mock_engine.py echoes inputs and has no stdout for commands."""

    def build():
        hs = hosts()
        m = WireGuardMesh("mesh", {"hosts": hs, "overlay_cidr": "10.200.0.0/24"})
        p = InternalPki("pki", {"hosts": hs, "overlay_ips": m.overlay_ips})
        a = ServiceAudit("audit", {"hosts": hs})
        return {"keys": m.public_keys, "reports": a.reports, "certs": p.host_cert_pems}

    r = run(build, command_output=False)
    assert r.values["keys"] == {h: None for h in ("bastion-1", "web-1", "db-1")}
    assert r.values["reports"]["web-1"] == {"host": "web-1", "ok": None}
    assert len(r.of(CMD)) == 15  # 3 hosts x (2 mesh + 2 PKI + 1 audit)


def test_preview_works_before_any_host_answers():
    r = run(mesh(), preview=True)
    assert len(r.of(CMD)) == 6
    assert r.values["overlay_ips"]["web-1"] == "10.200.0.44"


# --------------------------------------------------------------- PKI


def pki(**extra):
    def build():
        p = InternalPki("pki", {"hosts": hosts(), "overlay_ips": {"web-1": "10.200.0.44"},
                                "dns_names": {"web-1": ["www.internal"]}, "domain": "internal", **extra})
        return {"ca": p.ca_cert_pem, "certs": p.host_cert_pems, "expiry": p.host_cert_expiry}

    return build


def csr_text(pem: str) -> str:
    return _openssl("req", "-noout", "-text", input=pem)


def test_root_ca_is_ecdsa_p384_ca_only_with_long_validity_and_a_secret_key():
    r = run(pki())
    (key,) = [k for k in r.of(KEY) if k.name == "pki-ca-key"]
    assert key.inputs["algorithm"] == "ECDSA" and key.inputs["ecdsaCurve"] == "P384"
    assert "privateKeyPem" in key.additional_secret_outputs and "privateKeyPem" in key.secret_outputs
    (ca,) = r.of(SELF_SIGNED)
    assert ca.inputs["isCaCertificate"] is True
    assert sorted(ca.inputs["allowedUses"]) == ["cert_signing", "crl_signing", "digital_signature"]
    assert ca.inputs["validityPeriodHours"] == 87600
    assert "privateKeyPem" in ca.secret_inputs


def test_each_host_csr_is_made_on_the_host_and_signed_short_lived():
    r = run(pki())
    for h in ("bastion-1", "web-1", "db-1"):
        csr_cmd = r.named(f"pki-csr-{h}")
        assert "openssl genpkey" in csr_cmd.inputs["create"] and 'if [ ! -s "$key" ]' in csr_cmd.inputs["create"]
        signed = r.named(f"pki-cert-{h}")
        assert signed.inputs["certRequestPem"] == csr_cmd.outputs["stdout"]
        assert signed.inputs["validityPeriodHours"] == 720 and signed.inputs["earlyRenewalHours"] == 240
        assert sorted(signed.inputs["allowedUses"]) == ["client_auth", "digital_signature", "server_auth"]
        assert "caPrivateKeyPem" in signed.secret_inputs
        assert "caPrivateKeyPem" in signed.additional_secret_outputs
        install = r.named(f"pki-install-{h}")
        assert signed.outputs["certPem"].strip() in install.inputs["create"]
        assert r.named("pki-ca-cert").outputs["certPem"].strip() in install.inputs["create"]
        assert "/usr/local/share/ca-certificates/hardened-do-ca.crt" in install.inputs["create"]
        assert "update-ca-certificates" in install.inputs["create"]
    text = csr_text(r.named("pki-csr-web-1").outputs["stdout"])
    assert "DNS:web-1, DNS:web-1.internal, DNS:www.internal, IP Address:10.10.0.11, IP Address:10.200.0.44" in text
    text = csr_text(r.named("pki-csr-bastion-1").outputs["stdout"])
    assert "DNS:bastion-1, DNS:bastion-1.internal, IP Address:10.10.0.2" in text
    assert r.values["expiry"]["web-1"] == "2030-01-01T00:00:00Z"


def test_an_intermediate_signs_the_hosts_when_asked():
    r = run(pki(intermediate=True))
    root = r.named("pki-ca-cert")
    inter = r.named("pki-intermediate-cert")
    assert root.inputs["maxPathLength"] == 1
    assert inter.inputs["isCaCertificate"] is True and inter.inputs["caCertPem"] == root.outputs["certPem"]
    assert inter.inputs["caPrivateKeyPem"] == r.named("pki-ca-key").outputs["privateKeyPem"]
    signed = r.named("pki-cert-web-1")
    assert signed.inputs["caCertPem"] == inter.outputs["certPem"]
    assert signed.inputs["caPrivateKeyPem"] == r.named("pki-intermediate-key").outputs["privateKeyPem"]
    install = r.named("pki-install-web-1").inputs["create"]
    assert inter.outputs["certPem"].strip() in install and root.outputs["certPem"].strip() in install


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"dns_names": {"web-1": ["bad name"]}}, "web-1"),
        ({"dns_names": {"web-9": ["x.internal"]}}, "unknown hosts"),
        ({"early_renewal_hours": 720}, "shorter than"),
    ],
)
def test_bad_pki_args_fail_before_anything_is_registered(extra, message):
    r, error = refused(lambda: InternalPki("pki", {"hosts": hosts(), **extra}))
    assert message in error
    assert r.resources == []


# --------------------------------------------------------------- audit


def audit_build(**extra):
    def build():
        a = ServiceAudit("audit", {"hosts": hosts(), **extra})
        return {"reports": a.reports}

    return build


def test_audit_ships_the_module_and_reports_per_host():
    r = run(audit_build())
    source = (Path(host_audit.__file__)).read_text()
    for h in ("bastion-1", "web-1", "db-1"):
        cmd = r.named(f"audit-audit-{h}")
        assert cmd.inputs["stdin"] == source
        assert "hardened-do-audit.timer" in cmd.inputs["create"] and "cloud-init status --wait" in cmd.inputs["create"]
        assert re.search(r"audit-install critical " + re.escape(h) + " hourly ''$", cmd.inputs["create"])
    assert r.values["reports"]["web-1"]["ok"] is True
    assert r.values["reports"]["web-1"]["host"] == "web-1"


def test_audit_warn_mode_and_declarations_for_foreign_hosts():
    r = run(audit_build(mode="warn", declarations={"web-1": DECLARED}, schedule="*:0/30"),
            audit_ss={"web-1": ROGUE_SS})
    cmd = r.named("audit-audit-web-1").inputs["create"]
    assert "audit-install never web-1 '*:0/30' " in cmd and '"wireguard"' in cmd
    report = r.values["reports"]["web-1"]
    assert report["ok"] is False
    assert report["violations"][0]["message"].startswith("web-1: undeclared tcp port 8081")


def test_audit_rerun_token_and_module_digest_are_triggers():
    a = run(audit_build(rerun_token="2024-06-01"))
    b = run(audit_build(rerun_token="2024-06-02"))
    ta, tb = a.named("audit-audit-web-1").inputs["triggers"], b.named("audit-audit-web-1").inputs["triggers"]
    assert ta[0] == tb[0] and len(ta[0]) == 64 and ta[1] != tb[1]


@pytest.mark.parametrize("extra", [{"mode": "strict"}, {"schedule": "hourly\nExecStart=/bin/evil"},
                                   {"declarations": {"nope": {}}}])
def test_bad_audit_args_fail_before_anything_is_registered(extra):
    r, error = refused(lambda: ServiceAudit("audit", {"hosts": hosts(), **extra}))
    assert error.startswith("ServiceAudit:")
    assert r.resources == []


# --------------------------------------------------------------- secrecy across all three


PRIVATE_MARKERS = ("PRIVATE KEY", "DEPLOYKEY")


def _strings(value: Any, path: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def _under(path: str, secret_paths: list[str]) -> bool:
    return any(path == s or path.startswith(s + ".") or path.startswith(s + "[") for s in secret_paths)


def test_no_private_key_in_any_non_secret_input_or_output():
    admin_key = wg_public_key("alice-laptop")

    def build():
        hs = hosts(with_key=True)
        m = WireGuardMesh("mesh", {"hosts": hs, "overlay_cidr": "10.200.0.0/24",
                                   "admin_peers": [{"name": "alice", "public_key": admin_key}],
                                   "admin_gateway": "bastion-1", "admin_endpoint": "198.51.100.1"})
        p = InternalPki("pki", {"hosts": hs, "overlay_ips": m.overlay_ips, "intermediate": True})
        a = ServiceAudit("audit", {"hosts": hs})
        return {"configs": m.admin_configs, "ca": p.ca_cert_pem, "reports": a.reports, "keys": m.public_keys}

    r = run(build)
    assert len(r.resources) > 20
    leaks = []
    for res in r.resources:
        for path, text in _strings(res.inputs):
            if any(m in text for m in PRIVATE_MARKERS) and not _under(path, res.secret_inputs):
                leaks.append(f"{res.name} input {path}")
        for path, text in _strings(res.outputs):
            if any(m in text for m in PRIVATE_MARKERS) and not _under(path, res.secret_outputs):
                leaks.append(f"{res.name} output {path}")
    assert leaks == []
    # Apart from the deploy key (secret, and only when not using the agent),
    # the only private keys in state are the CA's (root and intermediate).
    holders = {res.name for res in r.resources for p, t in _strings(res.outputs)
               if "PRIVATE KEY" in t and not p.startswith("connection")}
    assert holders == {"pki-ca-key", "pki-intermediate-key", "pki-ca-cert", "pki-intermediate-csr",
                       "pki-intermediate-cert"} | {f"pki-cert-{h}" for h in ("bastion-1", "web-1", "db-1")}
    # ...and WireGuard private keys are never anywhere: only "<your key>".
    for res in r.resources:
        for _, text in _strings(res.inputs):
            for line in text.splitlines():
                if line.strip().startswith("PrivateKey"):
                    raise AssertionError(f"{res.name} carries a PrivateKey line")
    assert r.secret["configs"] is True and r.secret["ca"] is False and r.secret["keys"] is False


def test_connection_args_helper():
    args = connection_args({"name": "a", "host": "192.0.2.1", "user": "root", "port": 2222})
    assert args.host == "192.0.2.1" and args.port == 2222 and args.user == "root" and args.proxy is None
    with pytest.raises(ValueError, match="single jump host"):
        jump = {"name": "j", "host": "192.0.2.2", "user": "ops", "proxy": {"name": "k", "host": "x", "user": "ops"}}
        connection_args({"name": "a", "host": "10.0.0.1", "user": "ops", "proxy": jump})
    with pytest.raises(ValueError, match="port"):
        connection_args({"name": "a", "host": "x", "user": "ops", "port": 70000})
    with pytest.raises(ValueError):
        connection_args({"name": "A B", "host": "x", "user": "ops"})
