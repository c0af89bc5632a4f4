"""The dev stack's program with the mesh, the CA and the audit, under mocks.

The remote commands "run" with real material (a real WireGuard public key,
a real CSR made by openssl from the request config the program sends, a real
audit report), from the providers of tests/program/test_mesh_pki_audit.py.
Outputs are memoised by inputs, as the engine keeps a resource's outputs
while its inputs do not change, so two evaluations can be compared input by
input: that is how "nothing changed changes nothing" and "adding a host
touches only peer lists and the new host's own resources" are checked.
"""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from offline.mock_engine import Plan, _fake_outputs, config_from_stack_file, run_program
from tests.conftest import ROOT
from tests.program.test_mesh_pki_audit import FakeProviders, _plain

DEV_CONFIG = config_from_stack_file(ROOT / "Pulumi.dev.yaml")
CMD = "command:remote:Command"
DROPLET = "digitalocean:index/droplet:Droplet"
TLS_KEY = "tls:index/privateKey:PrivateKey"
ADMIN_KEY = "sXkB8vcfK3iHm5MKrOEx8mNE5SOq9TUtlhIYDYeuBgE="

_memo: dict = {}


class DevProviders(FakeProviders):
    """Real command output; droplet addresses that depend on the host alone."""

    def _command_stdout(self, name, inputs):
        if "usage: fail2ban-ignore" in inputs.get("create", ""):
            return "fail2ban ignores the bastion\n"
        return super()._command_stdout(name, inputs)

    def new_resource(self, args):
        if args.typ.startswith("digitalocean:"):
            n = int(hashlib.sha256(args.name.encode()).hexdigest(), 16) % 200
            return f"{args.name}-id", _fake_outputs(args.typ, args.name, _plain(args.inputs), n)
        key = (args.typ, args.name, json.dumps(_plain(args.inputs), sort_keys=True, default=str))
        if key not in _memo:
            _memo[key] = super().new_resource(args)
        return _memo[key]


def evaluate(config=DEV_CONFIG, *, preview=False) -> Plan:
    return run_program(config, preview=preview, mocks=DevProviders())


def with_hosts(*extra) -> dict:
    config = copy.deepcopy(DEV_CONFIG)
    config["hardened-do:hosts"] = config["hardened-do:hosts"] + list(extra)
    return config


@pytest.fixture(scope="module")
def plan() -> Plan:
    return evaluate()


def commands(plan: Plan) -> dict[str, object]:
    return {r.name: r for r in plan.of_type(CMD)}


def droplet_urn(plan: Plan, host: str) -> str:
    return next(d.urn for d in plan.of_type(DROPLET) if d.inputs["name"] == host)


HOSTS = ("bastion-1", "web-1", "web-2", "db-1")


def test_every_host_gets_mesh_certificate_and_audit_commands_under_their_component(plan):
    cmds = commands(plan)
    parents = {r.urn: r.type for r in plan.resources}
    expected = {
        "mesh-key-": "hardened-do:index:WireGuardMesh",
        "mesh-peers-": "hardened-do:index:WireGuardMesh",
        "pki-csr-": "hardened-do:index:InternalPki",
        "pki-install-": "hardened-do:index:InternalPki",
        "audit-audit-": "hardened-do:index:ServiceAudit",
    }
    for host in HOSTS:
        for prefix, component in expected.items():
            cmd = cmds[prefix + host]
            assert parents[cmd.parent] == component, cmd.name
    assert len(plan.of_type("tls:index/locallySignedCert:LocallySignedCert")) == len(HOSTS)
    # fail2ban on every host behind the bastion is told never to ban it.
    exempt = {n for n in cmds if n.startswith("fail2ban-ignore-bastion-")}
    assert exempt == {f"fail2ban-ignore-bastion-{h}" for h in HOSTS if h != "bastion-1"}
    assert len(cmds) == 5 * len(HOSTS) + len(exempt)


def test_commands_reach_hosts_through_the_bastion_as_the_admin_with_the_agent(plan):
    by_name = {d.inputs["name"]: d.outputs for d in plan.of_type(DROPLET)}
    bastion_ip = by_name["bastion-1"]["ipv4Address"]
    for cmd in plan.of_type(CMD):
        host = next(h for h in HOSTS if cmd.name.endswith("-" + h))
        assert cmd.inputs["connection"] == "[secret]", cmd.name  # the SDK keeps it secret
        conn = cmd.outputs["connection"]  # what the provider sees
        assert conn["user"] == "ops" and "privateKey" not in conn, cmd.name
        if host == "bastion-1":
            assert conn["host"] == bastion_ip and "proxy" not in conn, cmd.name
        else:
            assert conn["host"] == by_name[host]["ipv4AddressPrivate"], cmd.name
            assert conn["proxy"]["host"] == bastion_ip and conn["proxy"]["user"] == "ops", cmd.name
            assert "privateKey" not in conn["proxy"], cmd.name


def test_commands_run_only_after_their_droplet_and_the_bastion_exist(plan):
    bastion = droplet_urn(plan, "bastion-1")
    for cmd in plan.of_type(CMD):
        host = next(h for h in HOSTS if cmd.name.endswith("-" + h))
        deps = set(cmd.property_dependencies.get("connection", []))
        assert droplet_urn(plan, host) in deps, cmd.name
        assert bastion in deps, cmd.name


def test_the_audit_runs_after_the_mesh_and_the_certificates(plan):
    # The audit component registers once every mesh and certificate command
    # is done, and its commands only once their parent is registered.
    (audit,) = [r for r in plan.resources if r.type == "hardened-do:index:ServiceAudit"]
    waited_for = {urn.rsplit("::", 1)[1] for urn in audit.dependencies}
    for host in HOSTS:
        assert {f"mesh-peers-{host}", f"pki-install-{host}"} <= waited_for, host
        assert commands(plan)[f"audit-audit-{host}"].parent == audit.urn


def test_outputs_overlay_addresses_expiry_ca_and_audit(plan):
    cmds = commands(plan)
    hosts = plan.exports["hosts"]
    for host in HOSTS:
        # The address a host announces in its own mesh config is the output.
        assert f"Address = {hosts[host]['overlay_ip']}/" in cmds[f"mesh-peers-{host}"].inputs["stdin"]
        assert hosts[host]["cert_expiry"] == "2030-01-01T00:00:00Z"
        assert plan.exports["audit"][host]["ok"] is True, host
    assert plan.exports["ca_cert_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert plan.secret_exports == ["wireguard_admin_configs"]


def test_no_private_key_in_state_or_outputs_but_the_ca_key_as_a_secret(plan):
    (ca_key,) = plan.of_type(TLS_KEY)
    assert ca_key.name == "pki-ca-key" and "privateKeyPem" in ca_key.additional_secret_outputs
    ca_pem = ca_key.outputs["privateKeyPem"]
    for res in plan.resources:
        secret = set(res.additional_secret_outputs) | {p.split(".")[0] for p in res.secret_inputs}
        for key, value in res.outputs.items():
            text = json.dumps(value)
            if "PRIVATE KEY" in text:
                # Only the CA key, and only where the engine keeps it secret
                # (the certificates it signs take it as a secret input).
                assert text == json.dumps(ca_pem), (res.name, key)
                assert key in secret, (res.name, key)
        assert "PRIVATE KEY" not in json.dumps(res.inputs), res.name
    assert "PRIVATE KEY" not in json.dumps(plan.exports)


def test_a_second_evaluation_with_nothing_changed_plans_identical_inputs(plan):
    again = evaluate()
    # Outputs too: under the mocks they hold the inputs unmasked (secret
    # inputs such as `connection` show as "[secret]" among the inputs).
    before = {r.urn: (r.inputs, r.outputs) for r in plan.resources}
    after = {r.urn: (r.inputs, r.outputs) for r in again.resources}
    assert before.keys() == after.keys()
    changed = [urn for urn in before if before[urn] != after[urn]]
    assert changed == []


def test_adding_a_host_changes_only_peer_lists_and_its_own_resources(plan):
    bigger = evaluate(with_hosts({"name": "web-3", "role": "web"}))
    def planned_inputs(r):
        computed = ("stdout", "stderr")  # what the commands print, not what they are given
        return {**{k: v for k, v in r.outputs.items() if k not in computed}, **r.inputs,
                "connection": r.outputs.get("connection")}

    before = {r.urn: planned_inputs(r) for r in plan.resources}
    after = {r.urn: planned_inputs(r) for r in bigger.resources}
    assert set(before) <= set(after)
    new = {urn.rsplit("::", 1)[1] for urn in set(after) - set(before)}
    assert new == {"web-3", "web-3-droplet", "fail2ban-ignore-bastion-web-3", "mesh-key-web-3", "mesh-peers-web-3", "pki-csr-web-3",
                   "pki-cert-web-3", "pki-install-web-3", "audit-audit-web-3"}
    changed = sorted(urn.rsplit("::", 1)[1] for urn in before if before[urn] != after[urn])
    assert changed == sorted(f"mesh-peers-{h}" for h in HOSTS)
    web3_overlay = bigger.exports["hosts"]["web-3"]["overlay_ip"]
    for host in HOSTS:
        (urn,) = {k for k in before if before[k] != after[k] and k.endswith(f"mesh-peers-{host}")}
        fields = {k for k in after[urn] if after[urn][k] != before[urn].get(k)}
        if host == "db-1":
            # postgres is internal to web: web-3 joins its overlay sources.
            assert fields == {"stdin", "create"}
            assert after[urn]["create"].endswith(f" tcp/5432/{','.join(sorted_ips(plan, web3_overlay))}")
        else:
            assert fields == {"stdin"}, host


def test_the_ca_and_host_certificates_never_touch_user_data(plan):
    for droplet in plan.of_type(DROPLET):
        assert "BEGIN CERTIFICATE" not in droplet.inputs["userData"], droplet.name
        assert "[Peer]" not in droplet.inputs["userData"], droplet.name


def test_switching_the_measures_off_removes_them_and_keeps_the_audit():
    config = copy.deepcopy(DEV_CONFIG)
    config["hardened-do:mesh"] = False
    config["hardened-do:pki"] = False
    config["hardened-do:audit_mode"] = "warn"
    off = evaluate(config)
    types = {r.type for r in off.resources}
    assert "hardened-do:index:WireGuardMesh" not in types and "hardened-do:index:InternalPki" not in types
    assert {"ca_cert_pem", "wireguard_admin_configs"}.isdisjoint(off.exports)
    audit = next(r for r in off.of_type(CMD) if r.name == "audit-audit-web-1")
    assert " never " in audit.inputs["create"].rsplit("audit-install", 1)[1]
    assert set(off.exports["hosts"]["web-1"]) == {"role", "private_ip", "public_ip", "ssh"}


def test_admin_peers_connect_through_the_bastion_with_a_secret_config():
    config = copy.deepcopy(DEV_CONFIG)
    config["hardened-do:mesh_admin_peers"] = [f"alice-laptop:{ADMIN_KEY}"]
    with_admin = evaluate(config)
    assert "wireguard_admin_configs" in with_admin.secret_exports
    cmds = commands(with_admin)
    assert ADMIN_KEY in cmds["mesh-peers-bastion-1"].inputs["stdin"]
    assert ADMIN_KEY not in cmds["mesh-peers-web-1"].inputs["stdin"]


def test_preview_opens_no_connection_and_plans_every_measure():
    preview = run_program(DEV_CONFIG, preview=True)
    names = {r.name for r in preview.resources}
    assert {"pki-ca-key", "pki-ca-cert", "mesh-peers-db-1", "pki-install-db-1", "audit-audit-db-1"} <= names


def test_no_command_asks_sshd_to_accept_environment_variables(plan):
    # The hardened sshd has no AcceptEnv: passing the previous output as
    # PULUMI_COMMAND_STDOUT warned on every update.
    for cmd in plan.of_type(CMD):
        assert cmd.inputs.get("addPreviousOutputInEnv") is False, cmd.name
        assert not cmd.inputs.get("environment"), cmd.name


class CompromisedWeb1(DevProviders):
    """web-1's CSR command returns a request for db-1's name and address."""

    def _command_stdout(self, name, inputs):
        if name == "pki-csr-web-1":
            from hardened_do.components.csr import openssl_config, san_entries
            from tests.program.test_mesh_pki_audit import real_csr

            sans = san_entries("web-1", private_ip="10.10.0.99", dns_names=["db-1", "db-1.internal"])
            return real_csr(openssl_config("web-1", sans, organization="hardened-do"))
        return super()._command_stdout(name, inputs)


def test_a_csr_asking_for_another_hosts_name_fails_the_update():
    _memo.clear()
    with pytest.raises(Exception) as info:
        run_program(DEV_CONFIG, preview=False, mocks=CompromisedWeb1())
    text = str(info.value)
    assert "host web-1: refusing to sign its certificate request" in text
    assert "db-1" in text and "10.10.0.99" in text
    _memo.clear()


def test_hosts_behind_the_bastion_exempt_its_vpc_address_before_anything_else(plan):
    bastion_private = next(d.outputs["ipv4AddressPrivate"] for d in plan.of_type(DROPLET)
                           if d.inputs["name"] == "bastion-1")
    cmds = commands(plan)
    for host in HOSTS[1:]:
        create = cmds[f"fail2ban-ignore-bastion-{host}"].inputs["create"]
        assert create.endswith(f"fail2ban-ignore {bastion_private}"), host
    components = {r.name: r for r in plan.resources if not r.custom}
    exempt = {c.urn for n, c in cmds.items() if n.startswith("fail2ban-ignore-bastion-")}
    for name in ("mesh", "pki", "audit"):
        assert exempt <= set(components[name].dependencies), name


def sorted_ips(plan, *extra):
    import ipaddress

    ips = [plan.exports["hosts"][h]["overlay_ip"] for h in ("web-1", "web-2")] + list(extra)
    return sorted(ips, key=ipaddress.IPv4Address)


def test_internal_services_over_the_overlay_admit_the_source_roles_addresses_only(plan):
    cmds = commands(plan)
    db = cmds["mesh-peers-db-1"].inputs["create"]
    # postgres (internal, from web): the web hosts' overlay addresses, no one else.
    assert db.endswith(f" tcp/5432/{','.join(sorted_ips(plan))}")
    bastion_overlay = plan.exports["hosts"]["bastion-1"]["overlay_ip"]
    assert bastion_overlay not in db.rsplit("wg-apply", 1)[1]
    # Hosts without internal services get no rules argument.
    for host in ("bastion-1", "web-1", "web-2"):
        assert cmds[f"mesh-peers-{host}"].inputs["create"].endswith(" wg0 0"), host
