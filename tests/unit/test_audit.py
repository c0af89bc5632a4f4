"""The service audit's parsing and policy (components/hostagent/audit.py) on real `ss` output.

The samples are literal captures of `ss -H -tulpn` (iproute2 6.1, Debian 12):
BUILD_HOST_* from this project's build machine with test listeners bound to
every address form ss prints; GUEST_* from booted Debian 12 test guests with
the hardened user-data applied (tests/vm).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hardened_do.components.stack import load_stack_file
from hardened_do.components.services import expected_listeners
from hardened_do.components.hostagent import audit
from tests.conftest import ROOT

BUILD_HOST_SS = """\
udp UNCONN 0      0       127.0.0.53%lo:53   0.0.0.0:* users:(("python3",pid=2157,fd=13))
udp UNCONN 0      0      192.0.2.2%eth0:68   0.0.0.0:* users:(("python3",pid=2157,fd=16))
udp UNCONN 0      0             0.0.0.0:5353 0.0.0.0:* users:(("python3",pid=2157,fd=12))
udp UNCONN 0      0               [::1]:323     [::]:* users:(("python3",pid=2157,fd=17))
udp UNCONN 0      0                   *:5354       *:* users:(("python3",pid=2157,fd=14))
udp UNCONN 0      0                [::]:5355    [::]:* users:(("python3",pid=2157,fd=15))
tcp LISTEN 0      128           0.0.0.0:2024 0.0.0.0:*                                   
tcp LISTEN 0      128         127.0.0.1:8001 0.0.0.0:* users:(("python3",pid=2157,fd=3)) 
tcp LISTEN 0      128      0.0.0.0%eth0:8007 0.0.0.0:* users:(("python3",pid=2157,fd=9)) 
tcp LISTEN 0      128           0.0.0.0:8005 0.0.0.0:* users:(("python3",pid=2157,fd=7)) 
tcp LISTEN 0      128         192.0.2.2:8006 0.0.0.0:* users:(("python3",pid=2157,fd=8)) 
tcp LISTEN 0      128             [::1]:8002    [::]:* users:(("python3",pid=2157,fd=4)) 
tcp LISTEN 0      128              [::]:8004    [::]:* users:(("python3",pid=2157,fd=6)) 
tcp LISTEN 0      128                 *:8003       *:* users:(("python3",pid=2157,fd=5)) 
tcp LISTEN 0      128            *%eth0:8009       *:* users:(("python3",pid=2157,fd=18))
tcp LISTEN 0      128         [fd00::2]:8008    [::]:* users:(("python3",pid=2157,fd=11))
"""

BUILD_HOST_SS_SCOPED = """\
udp UNCONN 0      0      [fe80::fc:ff:fe00:1]%eth0:546     [::]:* users:(("python3",pid=2265,fd=3))
tcp LISTEN 0      128                      0.0.0.0:2024 0.0.0.0:*                                  
tcp LISTEN 0      128    [fe80::fc:ff:fe00:1]%eth0:8010    [::]:* users:(("python3",pid=2265,fd=4))
tcp LISTEN 0      128           [::ffff:127.0.0.1]:8011       *:* users:(("python3",pid=2265,fd=5))
"""

# `ip -j addr` of the same machine (trimmed to the fields the audit reads).
BUILD_HOST_IP = json.dumps(
    [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8},
                                       {"family": "inet6", "local": "::1", "prefixlen": 128}]},
        {"ifname": "ifb0", "addr_info": []},
        {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "192.0.2.2", "prefixlen": 24},
                                         {"family": "inet6", "local": "fd00::2", "prefixlen": 64},
                                         {"family": "inet6", "local": "fe80::fc:ff:fe00:1", "prefixlen": 64}]},
    ]
)

# A booted Debian 12 guest (tests/vm/test_mesh_pki_audit.py) with the hardened
# user-data, the WireGuard mesh up (kernel socket: no process) and dhclient
# on the "public" NIC. `sudo ss -H -tulpn` and `ip -j addr`, verbatim.
GUEST_WEB_SS = 'udp UNCONN 0      0      0.0.0.0:68    0.0.0.0:* users:(("dhclient",pid=354,fd=7))\nudp UNCONN 0      0      0.0.0.0:51820 0.0.0.0:*                                  \nudp UNCONN 0      0         [::]:51820    [::]:*                                  \ntcp LISTEN 0      128    0.0.0.0:22    0.0.0.0:* users:(("sshd",pid=2041,fd=3))   \ntcp LISTEN 0      128       [::]:22       [::]:* users:(("sshd",pid=2041,fd=4))   \n'

GUEST_DB_SS = 'udp UNCONN 0      0      0.0.0.0:51820 0.0.0.0:*                                  \nudp UNCONN 0      0      0.0.0.0:68    0.0.0.0:* users:(("dhclient",pid=353,fd=7))\nudp UNCONN 0      0         [::]:51820    [::]:*                                  \ntcp LISTEN 0      128    0.0.0.0:22    0.0.0.0:* users:(("sshd",pid=2037,fd=3))   \ntcp LISTEN 0      128       [::]:22       [::]:* users:(("sshd",pid=2037,fd=4))   \n'

GUEST_WEB_IP = '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","noprefixroute":true,"valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"fq_codel","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"52:54:00:ac:5b:0b","broadcast":"ff:ff:ff:ff:ff:ff","altnames":["enp0s2","ens2"],"addr_info":[{"family":"inet","local":"10.0.2.15","prefixlen":24,"broadcast":"10.0.2.255","scope":"global","dynamic":true,"label":"eth0","valid_life_time":85392,"preferred_life_time":85392},{"family":"inet6","local":"fec0::5054:ff:feac:5b0b","prefixlen":64,"scope":"site","dynamic":true,"mngtmpaddr":true,"valid_life_time":86106,"preferred_life_time":14106},{"family":"inet6","local":"fe80::5054:ff:feac:5b0b","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":3,"ifname":"eth1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"fq_codel","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"52:54:00:32:e1:31","broadcast":"ff:ff:ff:ff:ff:ff","altnames":["enp0s3","ens3"],"addr_info":[{"family":"inet","local":"10.10.0.11","prefixlen":24,"broadcast":"10.10.0.255","scope":"global","label":"eth1","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::5054:ff:fe32:e131","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":4,"ifname":"wg0","flags":["POINTOPOINT","NOARP","UP","LOWER_UP"],"mtu":1420,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"none","addr_info":[{"family":"inet","local":"10.200.0.44","prefixlen":24,"scope":"global","label":"wg0","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]'

DECLARED = {
    "version": 1,
    "role": "web",
    "vpc_cidr": "10.10.0.0/20",
    "overlay_cidr": "10.200.0.0/24",
    "services": [
        {"name": "ssh", "port": 22, "protocol": "tcp", "exposure": "internal", "managed": True},
        {"name": "wireguard", "port": 51820, "protocol": "udp", "exposure": "private", "managed": True},
        {"name": "http", "port": 80, "protocol": "tcp", "exposure": "public", "managed": False},
        {"name": "metrics", "port": 9100, "protocol": "tcp", "exposure": "private", "managed": False},
    ],
}

# A droplet-shaped host: public eth0 (with DigitalOcean's anchor address),
# VPC eth1, overlay wg0.
DROPLET_IP = {
    "lo": ["127.0.0.1/8", "::1/128"],
    "eth0": ["203.0.113.10/20", "10.19.0.5/16", "fe80::1/64"],
    "eth1": ["10.10.0.5/20", "fe80::2/64"],
    "wg0": ["10.200.0.44/24"],
}


def by_port(report, port, protocol="tcp"):
    return [r for r in report["listeners"] if r["port"] == port and r["protocol"] == protocol]


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    "local, expected",
    [
        ("0.0.0.0:22", ("*", None, 22)),
        ("*:22", ("*", None, 22)),
        ("[::]:22", ("*", None, 22)),
        ("127.0.0.53%lo:53", ("127.0.0.53", "lo", 53)),
        ("0.0.0.0%eth0:8007", ("*", "eth0", 8007)),
        ("*%eth0:8009", ("*", "eth0", 8009)),
        ("[::1]:323", ("::1", None, 323)),
        ("[fe80::fc:ff:fe00:1]%eth0:546", ("fe80::fc:ff:fe00:1", "eth0", 546)),
        ("[::ffff:127.0.0.1]:8011", ("127.0.0.1", None, 8011)),
        ("[fd00::2]:8008", ("fd00::2", None, 8008)),
    ],
)
def test_address_forms(local, expected):
    assert audit.parse_address(local) == expected


@pytest.mark.parametrize("bad", ["0.0.0.0", "[::1:22", "300.1.1.1:80", "[::1]x:22"])
def test_bad_addresses(bad):
    with pytest.raises(ValueError):
        audit.parse_address(bad)


def test_parse_real_output_every_line():
    listeners = audit.parse_ss(BUILD_HOST_SS + BUILD_HOST_SS_SCOPED)
    assert len(listeners) == 20
    udp = [l for l in listeners if l["protocol"] == "udp"]
    assert {l["port"] for l in udp} == {53, 68, 5353, 323, 5354, 5355, 546}
    no_proc = [l for l in listeners if not l["processes"]]
    assert {l["port"] for l in no_proc} == {2024}
    assert audit.parse_processes('users:(("sshd",pid=512,fd=3),("sshd",pid=513,fd=3),("sshd",pid=512,fd=4))') == [
        {"name": "sshd", "pid": 512}, {"name": "sshd", "pid": 513}]


def test_tcp_non_listening_rows_and_headers_are_skipped_garbage_refused():
    text = "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n" \
           "tcp ESTAB 0 0 10.0.0.1:22 10.0.0.2:5555 users:((\"sshd\",pid=1,fd=3))\n"
    assert audit.parse_ss(text) == []
    with pytest.raises(ValueError, match="line 1"):
        audit.parse_ss("hello world\n")


def test_parse_ip_json():
    assert audit.parse_ip_addr(BUILD_HOST_IP)["eth0"] == ["192.0.2.2/24", "fd00::2/64", "fe80::fc:ff:fe00:1/64"]
    assert audit.parse_ip_addr(BUILD_HOST_IP)["ifb0"] == []


# ------------------------------------------------------------------ classification


def test_exposure_of_every_real_listener():
    report = audit.audit(audit.parse_ss(BUILD_HOST_SS + BUILD_HOST_SS_SCOPED), DECLARED,
                         audit.parse_ip_addr(BUILD_HOST_IP), "build")
    exposure = {(r["protocol"], r["port"]): r["exposure"] for r in report["listeners"]}
    assert exposure == {
        ("udp", 53): "loopback",       # 127.0.0.53%lo
        ("udp", 68): "public",         # bound to eth0's public address
        ("udp", 5353): "public",       # 0.0.0.0 on a host with a public interface
        ("udp", 323): "loopback",      # [::1]
        ("udp", 5354): "public",       # dual-stack *
        ("udp", 5355): "public",       # [::] v6only
        ("tcp", 2024): "public",
        ("tcp", 8001): "loopback",
        ("tcp", 8007): "public",       # wildcard bound to eth0
        ("tcp", 8005): "public",
        ("tcp", 8006): "public",
        ("tcp", 8002): "loopback",
        ("tcp", 8004): "public",
        ("tcp", 8003): "public",
        ("tcp", 8009): "public",
        ("tcp", 8008): "public",       # fd00::2: a ULA outside the VPC is not the VPC
        ("udp", 546): "public",        # link-local, scoped to the public eth0
        ("tcp", 8010): "public",
        ("tcp", 8011): "loopback",     # v4-mapped loopback
    }
    # The DHCP client port is a client, not a service, even when public.
    assert by_port(report, 68, "udp")[0]["status"] == "client"
    assert by_port(report, 546, "udp")[0]["status"] == "client"


@pytest.mark.parametrize(
    "local, expected",
    [
        ("0.0.0.0:9000", "public"),
        ("10.10.0.5:9000", "vpc"),
        ("10.200.0.44:9000", "overlay"),
        ("10.19.0.5:9000", "public"),  # DO's anchor address is on the public NIC
        ("203.0.113.10:9000", "public"),
        ("127.0.0.1:9000", "loopback"),
        ("0.0.0.0%eth1:9000", "vpc"),
        ("*%wg0:9000", "overlay"),
        ("[fe80::2]%eth1:9000", "vpc"),
        ("[fe80::1]%eth0:9000", "public"),
        ("0.0.0.0%docker0:9000", "public"),  # unknown interface: assume the worst
    ],
)
def test_exposure_on_a_droplet(local, expected):
    address, iface, port = audit.parse_address(local)
    listener = {"protocol": "tcp", "address": address, "interface": iface, "port": port, "processes": []}
    assert audit.classify_listener(listener, DROPLET_IP, "10.10.0.0/20", "10.200.0.0/24") == expected


def test_on_a_private_only_host_all_interfaces_means_the_vpc():
    ips = {"lo": ["127.0.0.1/8"], "eth1": ["10.10.0.7/20"], "wg0": ["10.200.0.9/24"], "eth9": []}
    listener = {"protocol": "tcp", "address": "*", "interface": None, "port": 5432, "processes": []}
    assert audit.classify_listener(listener, ips, "10.10.0.0/20", "10.200.0.0/24") == "vpc"


# ------------------------------------------------------------------ policy


def listeners(text):
    return audit.parse_ss(text)


def test_declared_services_pass_and_undeclared_public_is_critical():
    ss = """\
tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=700,fd=6),("nginx",pid=701,fd=6))
tcp LISTEN 0 511 [::]:80 [::]:* users:(("nginx",pid=700,fd=7),("nginx",pid=701,fd=7))
tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=512,fd=3))
tcp LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=512,fd=4))
udp UNCONN 0 0 0.0.0.0:51820 0.0.0.0:*
udp UNCONN 0 0 [::]:51820 [::]:*
tcp LISTEN 0 5 0.0.0.0:8081 0.0.0.0:* users:(("python3",pid=4242,fd=3))
"""
    report = audit.audit(listeners(ss), DECLARED, DROPLET_IP, "web-1")
    assert not report["ok"]
    (v,) = report["violations"]
    assert v["kind"] == "undeclared" and v["severity"] == "critical" and v["port"] == 8081
    assert v["message"] == (
        "web-1: undeclared tcp port 8081 listens on all addresses (public); process: python3 (pid 4242)"
    )
    assert {r["status"] for r in by_port(report, 80)} == {"declared"}
    # sshd (internal) and the kernel's WireGuard socket bind every interface
    # by nature; the firewalls narrow them. Listed, not a violation.
    assert {r["status"] for r in by_port(report, 22)} == {"relies-on-firewall"}
    assert {r["status"] for r in by_port(report, 51820, "udp")} == {"relies-on-firewall"}
    assert audit.failing(report, "critical") == [v]
    assert audit.failing(report, "never") == []


def test_vpc_only_undeclared_listener_is_a_warning_and_loopback_is_fine():
    ss = """\
tcp LISTEN 0 5 10.10.0.5:8081 0.0.0.0:* users:(("python3",pid=4242,fd=3))
tcp LISTEN 0 5 10.200.0.44:7000 0.0.0.0:* users:(("app",pid=1,fd=3))
tcp LISTEN 0 5 127.0.0.1:6379 0.0.0.0:* users:(("redis-server",pid=9,fd=6))
udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=400,fd=13))
"""
    report = audit.audit(listeners(ss), DECLARED, DROPLET_IP, "web-1")
    assert [(v["port"], v["severity"], v["exposure"]) for v in report["violations"]] == [
        (8081, "warning", "vpc"), (7000, "warning", "overlay")]
    assert audit.failing(report, "critical") == []
    assert len(audit.failing(report, "any")) == 2
    assert by_port(report, 6379)[0]["status"] == "loopback"


def test_private_service_on_all_interfaces_is_over_exposed_once():
    ss = """\
tcp LISTEN 0 5 0.0.0.0:9100 0.0.0.0:* users:(("node_exporter",pid=3,fd=3))
tcp LISTEN 0 5 [::]:9100 [::]:* users:(("node_exporter",pid=3,fd=4))
"""
    report = audit.audit(listeners(ss), DECLARED, DROPLET_IP, "web-1")
    (v,) = report["violations"]
    assert v["kind"] == "over-exposed" and v["severity"] == "warning"
    assert v["service"] == "metrics" and v["declared_exposure"] == "private"
    assert "declared private but listens on all addresses (public)" in v["message"]
    # Bound to the VPC address it is fine.
    ok = audit.audit(listeners("tcp LISTEN 0 5 10.10.0.5:9100 0.0.0.0:*\n"), DECLARED, DROPLET_IP, "web-1")
    assert ok["ok"] and ok["violations"] == []


def test_protocol_matters():
    report = audit.audit(listeners("udp UNCONN 0 0 0.0.0.0:80 0.0.0.0:* users:((\"x\",pid=1,fd=1))\n"),
                         DECLARED, DROPLET_IP, "web-1")
    assert report["violations"][0]["kind"] == "undeclared"


def test_dhclient_random_port_is_a_client():
    ss = 'udp UNCONN 0 0 0.0.0.0:41234 0.0.0.0:* users:(("dhclient",pid=300,fd=6))\n'
    report = audit.audit(listeners(ss), DECLARED, DROPLET_IP, "web-1")
    assert report["ok"] and report["listeners"][0]["status"] == "client"


def test_the_real_declaration_of_the_dev_stack_is_understood():
    stack = load_stack_file(ROOT / "Pulumi.dev.yaml")
    declared = expected_listeners(stack, "web")
    ss = """\
tcp LISTEN 0 511 0.0.0.0:443 0.0.0.0:* users:(("nginx",pid=700,fd=6))
tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=512,fd=3))
udp UNCONN 0 0 0.0.0.0:51820 0.0.0.0:*
"""
    report = audit.audit(listeners(ss), declared, {"lo": ["127.0.0.1/8"], "eth0": ["203.0.113.9/20"],
                                                    "eth1": ["10.10.0.9/20"]}, "web-1")
    assert report["ok"], report["violations"]
    assert report["role"] == "web"


# ------------------------------------------------------------------ the CLI


def run_cli(tmp_path, ss_text, *args, ip_text=BUILD_HOST_IP, declared=DECLARED):
    services = tmp_path / "services.json"
    services.write_text(json.dumps(declared))
    ip = tmp_path / "ip.json"
    ip.write_text(ip_text)
    return subprocess.run(
        [sys.executable, "-I", str(ROOT / "components" / "hostagent" / "audit.py"), "--services", str(services),
         "--ss-output", "-", "--ip-output", str(ip), "--host-name", "h1", *args],
        input=ss_text, capture_output=True, text=True,
    )


def test_cli_exit_codes_and_json(tmp_path):
    clean = "tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:((\"nginx\",pid=700,fd=6))\n"
    res = run_cli(tmp_path, clean)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["ok"] is True

    res = run_cli(tmp_path, BUILD_HOST_SS)
    assert res.returncode == 1
    report = json.loads(res.stdout)
    assert report["summary"]["critical"] >= 5
    assert "h1: undeclared tcp port 8005 listens on all addresses (public); process: python3 (pid 2157)" in res.stderr

    res = run_cli(tmp_path, BUILD_HOST_SS, "--fail-on", "never", "--quiet")
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""


def test_cli_runs_with_the_standard_library_only(tmp_path):
    # -I: isolated mode, no site-packages, no user paths: what a fresh host has.
    res = run_cli(tmp_path, "")
    assert res.returncode == 0, res.stderr
    src = (ROOT / "components" / "hostagent" / "audit.py").read_text()
    for line in src.splitlines():
        if line.startswith(("import ", "from ")) and "__future__" not in line:
            module = line.split()[1].split(".")[0]
            assert module in sys.stdlib_module_names, module


def test_cli_reports_unusable_input_with_exit_2(tmp_path):
    res = run_cli(tmp_path, "garbage line\n")
    assert res.returncode == 2 and "not `ss -tulpn` output" in res.stderr
    services = tmp_path / "missing.json"
    res = subprocess.run([sys.executable, str(ROOT / "components" / "hostagent" / "audit.py"), "--services", str(services),
                          "--ss-output", "-", "--ip-output", "/dev/null"], input="", capture_output=True, text=True)
    assert res.returncode == 2 and "cannot read the declaration" in res.stderr


# ------------------------------------------------------------------ booted guests


def test_a_hardened_guest_is_clean_against_its_own_declaration():
    stack = load_stack_file(ROOT / "Pulumi.dev.yaml")
    declared = dict(expected_listeners(stack, "web"), vpc_cidr="10.10.0.0/24", overlay_cidr="10.200.0.0/24")
    report = audit.audit(audit.parse_ss(GUEST_WEB_SS), declared, audit.parse_ip_addr(GUEST_WEB_IP), "web-1")
    assert report["ok"], report["violations"]
    status = {(r["protocol"], r["port"], r["address"]): r["status"] for r in report["listeners"]}
    assert status == {
        ("udp", 68, "*"): "client",                  # dhclient
        ("udp", 51820, "*"): "relies-on-firewall",   # kernel WireGuard, v4 and v6 sockets
        ("tcp", 22, "*"): "relies-on-firewall",      # sshd (internal behind the dev bastion)
    }
    wg = [r for r in report["listeners"] if r["port"] == 51820]
    assert len(wg) == 2 and all(r["processes"] == [] for r in wg)
    assert all(r["exposure"] == "public" for r in report["listeners"])  # eth0 10.0.2.15 is the "public" NIC
    ips = audit.parse_ip_addr(GUEST_WEB_IP)
    assert ips["wg0"] == ["10.200.0.44/24"] and ips["eth1"][0] == "10.10.0.11/24"


def test_a_guest_with_an_extra_listener_fails_naming_it():
    rogue = GUEST_DB_SS + 'tcp LISTEN 0      5            *:8081        *:* users:(("python3",pid=2417,fd=3))\n'
    declared = {"role": "db", "vpc_cidr": "10.10.0.0/24", "overlay_cidr": "10.200.0.0/24", "services": [
        {"name": "ssh", "port": 22, "protocol": "tcp", "exposure": "internal", "managed": True},
        {"name": "wireguard", "port": 51820, "protocol": "udp", "exposure": "private", "managed": True},
        {"name": "postgres", "port": 5432, "protocol": "tcp", "exposure": "internal", "managed": False}]}
    report = audit.audit(audit.parse_ss(rogue), declared, audit.parse_ip_addr(GUEST_WEB_IP), "db-1")
    assert [v["message"] for v in audit.failing(report, "critical")] == [
        "db-1: undeclared tcp port 8081 listens on all addresses (public); process: python3 (pid 2417)"]
