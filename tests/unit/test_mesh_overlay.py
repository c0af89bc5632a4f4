"""Overlay addressing and WireGuard config rendering (components/overlay.py)."""

from __future__ import annotations

import ipaddress
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hardened_do.components import overlay
from hardened_do.components.overlay import AdminPeer, Member, OverlayError

CIDR = "10.200.0.0/24"
KEYS = {  # real `wg genkey | wg pubkey` style keys (base64 of 32 bytes)
    "a": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    "b": "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=",
    "c": "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
    "adm": "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyApQ/NY=",
}

labels = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
name_sets = st.lists(labels, min_size=1, max_size=25, unique=True)
cidrs = st.sampled_from(["10.200.0.0/16", "10.200.0.0/20", "172.20.0.0/22", "10.99.0.0/24"])


def allocate_or_none(cidr, names, pins=None):
    try:
        return overlay.allocate(cidr, names, pins)
    except OverlayError as exc:
        assert "collision" in str(exc)
        return None


@settings(max_examples=300, deadline=None)
@given(cidr=cidrs, names=name_sets)
def test_addresses_are_unique_inside_the_range_and_never_network_or_broadcast(cidr, names):
    got = allocate_or_none(cidr, names)
    assume(got is not None)
    net = ipaddress.ip_network(cidr)
    assert sorted(got) == sorted(names)
    assert len(set(got.values())) == len(names)
    for addr in got.values():
        assert addr in net and addr not in (net.network_address, net.broadcast_address)


@settings(max_examples=300, deadline=None)
@given(cidr=cidrs, names=name_sets, extra=name_sets, data=st.data())
def test_adding_or_removing_hosts_never_renumbers_the_others(cidr, names, extra, data):
    before = allocate_or_none(cidr, names)
    assume(before is not None)
    # insertion
    grown = names + [n for n in extra if n not in names]
    after = allocate_or_none(cidr, grown)
    if after is not None:
        assert {n: after[n] for n in names} == before
    # removal of any subset
    kept = data.draw(st.lists(st.sampled_from(names), unique=True, min_size=1))
    shrunk = allocate_or_none(cidr, kept)
    assert shrunk is not None  # removing hosts cannot create a collision
    assert shrunk == {n: before[n] for n in kept}
    # order of declaration does not matter
    assert allocate_or_none(cidr, list(reversed(names))) == before


@settings(max_examples=200, deadline=None)
@given(names=st.lists(labels, min_size=2, max_size=40, unique=True))
def test_a_collision_is_an_error_that_suggests_a_free_pin_which_then_works(names):
    cidr = "10.77.0.0/29"  # 6 usable addresses: collisions are common
    assume(len(names) <= 6)
    try:
        overlay.allocate(cidr, names)
        return
    except OverlayError as exc:
        message = str(exc)
    assert "collision" in message and "pin" in message
    # Follow the advice: pin the suggested host(s) to the suggested address(es).
    pins = {}
    for part in message.split("e.g. ")[1:]:
        host, addr = part.split(" ")[0].rstrip(":"), part.split(" ")[1]
        pins[host] = addr
    assert pins
    before_pins = {n: overlay.preferred_address(ipaddress.ip_network(cidr), n) for n in names if n not in pins}
    try:
        got = overlay.allocate(cidr, names, pins)
    except OverlayError:
        return  # a second, independent collision; one round of advice per clash
    for host, addr in pins.items():
        assert str(got[host]) == addr
    for host, addr in before_pins.items():
        assert got[host] == addr  # the hosts that were not pinned did not move


def test_collision_message_names_both_hosts_and_a_free_address():
    # Find two names that collide in a /29 deterministically.
    net = ipaddress.ip_network("10.1.0.0/29")
    seen = {}
    for i in range(100):
        name = f"h{i}"
        slot = overlay.preferred_address(net, name)
        if slot in seen:
            a, b = seen[slot], name
            break
        seen[slot] = name
    with pytest.raises(OverlayError) as exc:
        overlay.allocate(str(net), [a, b])
    assert a in str(exc.value) and b in str(exc.value) and str(slot) in str(exc.value)


def test_pins_win_and_are_validated():
    got = overlay.allocate(CIDR, ["web-1", "db-1"], {"db-1": "10.200.0.9"})
    assert str(got["db-1"]) == "10.200.0.9"
    for bad, why in [("10.200.0.0", "network"), ("10.200.0.255", "broadcast"), ("10.201.0.1", "not a host"), ("x", "not an IPv4")]:
        with pytest.raises(OverlayError, match=why if why != "network" else "network"):
            overlay.allocate(CIDR, ["web-1"], {"web-1": bad})
    with pytest.raises(OverlayError, match="unknown hosts"):
        overlay.allocate(CIDR, ["web-1"], {"web-9": "10.200.0.3"})
    with pytest.raises(OverlayError, match="both pinned"):
        overlay.allocate(CIDR, ["a", "b"], {"a": "10.200.0.3", "b": "10.200.0.3"})


def test_too_many_members_for_the_range():
    with pytest.raises(OverlayError, match="larger range"):
        overlay.allocate("10.0.0.0/30", ["a", "b", "c"])


@pytest.mark.parametrize("cidr", ["10.200.0.1/24", "fd00::/64", "10.0.0.0/31", "nonsense"])
def test_bad_overlay_ranges(cidr):
    with pytest.raises(OverlayError):
        overlay.allocate(cidr, ["a"])


def test_known_addresses_do_not_change_between_releases():
    # The hash is part of the contract: changing it would renumber every
    # existing mesh (and invalidate every certificate's overlay SAN).
    got = overlay.allocate(CIDR, ["bastion-1", "web-1", "web-2", "db-1"])
    assert {k: str(v) for k, v in got.items()} == {
        "bastion-1": "10.200.0.56",
        "web-1": "10.200.0.44",
        "web-2": "10.200.0.5",
        "db-1": "10.200.0.254",
    }


# ------------------------------------------------------------------ keys


def test_public_key_check():
    assert overlay.check_public_key(KEYS["a"] + "\n", who="x") == KEYS["a"]
    for bad in ["", "abc", KEYS["a"][:-2], "-----BEGIN PRIVATE KEY-----", KEYS["a"] + KEYS["b"]]:
        with pytest.raises(OverlayError) as exc:
            overlay.check_public_key(bad, who="host x")
        assert "host x" in str(exc.value)
        assert bad[:10] not in str(exc.value) or not bad


# ------------------------------------------------------------------ configs


def members():
    return [
        Member("a", "10.200.0.11", "10.10.0.2", KEYS["a"]),
        Member("b", "10.200.0.12", "10.10.0.3", KEYS["b"]),
        Member("c", "10.200.0.13", "10.10.0.4", KEYS["c"]),
    ]


def test_each_host_lists_every_other_host_once_over_the_vpc():
    for me in ("a", "b", "c"):
        text = overlay.render_host_config(me, members(), overlay_cidr=CIDR)
        iface, peers = overlay.parse_config(text)
        assert iface["Address"] == [f"{next(m.overlay_ip for m in members() if m.name == me)}/24"]
        assert iface["ListenPort"] == ["51820"]
        assert "PrivateKey" not in iface
        assert iface["PostUp"] == ["wg set %i private-key /etc/wireguard/%i.key"]
        others = [m for m in members() if m.name != me]
        assert len(peers) == len(others)
        for m, p in zip(others, peers):
            assert p["PublicKey"] == [m.public_key]
            assert p["AllowedIPs"] == [f"{m.overlay_ip}/32"]
            assert p["Endpoint"] == [f"{m.private_ip}:51820"]
            assert p["PersistentKeepalive"] == ["25"]


def test_config_is_independent_of_member_order_and_keepalive_optional():
    a = overlay.render_host_config("a", members(), overlay_cidr=CIDR, keepalive=None, port=51999)
    b = overlay.render_host_config("a", list(reversed(members())), overlay_cidr=CIDR, keepalive=None, port=51999)
    assert a == b
    _, peers = overlay.parse_config(a)
    assert all("PersistentKeepalive" not in p for p in peers)
    assert all(p["Endpoint"][0].endswith(":51999") for p in peers)


def test_adding_a_host_adds_one_peer_and_changes_nothing_else():
    before = overlay.parse_config(overlay.render_host_config("a", members()[:2], overlay_cidr=CIDR))
    after = overlay.parse_config(overlay.render_host_config("a", members(), overlay_cidr=CIDR))
    assert before[0] == after[0]
    assert after[1][: len(before[1])] == before[1] or all(p in after[1] for p in before[1])
    assert len(after[1]) == len(before[1]) + 1


def test_admin_peers_go_through_the_gateway():
    admin = AdminPeer("alice", "10.200.0.200", KEYS["adm"])
    gw = overlay.render_host_config("a", members(), overlay_cidr=CIDR, admins=[admin], gateway="a")
    iface, peers = overlay.parse_config(gw)
    assert "sysctl -q -w net.ipv4.conf.%i.forwarding=1" in iface["PostUp"]
    alice = [p for p in peers if p["PublicKey"] == [KEYS["adm"]]]
    assert alice == [{"PublicKey": [KEYS["adm"]], "AllowedIPs": ["10.200.0.200/32"]}]
    # Other hosts route the admin's address to the gateway, not to the admin.
    iface_b, peers_b = overlay.parse_config(overlay.render_host_config("b", members(), overlay_cidr=CIDR, admins=[admin], gateway="a"))
    assert not any("forwarding" in x for x in iface_b["PostUp"])
    to_gw = next(p for p in peers_b if p["PublicKey"] == [KEYS["a"]])
    assert to_gw["AllowedIPs"] == ["10.200.0.11/32, 10.200.0.200/32"]
    assert not any(p["PublicKey"] == [KEYS["adm"]] for p in peers_b)

    client = overlay.render_admin_config(admin, members()[0], gateway_endpoint="203.0.113.5", overlay_cidr=CIDR)
    ci, cp = overlay.parse_config(client)
    assert ci["PrivateKey"] == ["<your key>"] and ci["Address"] == ["10.200.0.200/32"]
    assert cp == [{"PublicKey": [KEYS["a"]], "AllowedIPs": [CIDR], "Endpoint": ["203.0.113.5:51820"], "PersistentKeepalive": ["25"]}]


def test_admins_without_gateway_and_strangers_are_refused():
    admin = AdminPeer("alice", "10.200.0.200", KEYS["adm"])
    with pytest.raises(OverlayError, match="gateway"):
        overlay.render_host_config("a", members(), overlay_cidr=CIDR, admins=[admin], gateway=None)
    with pytest.raises(OverlayError, match="not a member"):
        overlay.render_host_config("zz", members(), overlay_cidr=CIDR)
    with pytest.raises(OverlayError, match="interface"):
        overlay.render_host_config("a", members(), overlay_cidr=CIDR, interface="wg0; rm -rf /")


def test_ipv6_endpoints_are_bracketed():
    ms = [Member("a", "10.200.0.11", "fd00::2", KEYS["a"]), Member("b", "10.200.0.12", "fd00::3", KEYS["b"])]
    _, peers = overlay.parse_config(overlay.render_host_config("a", ms, overlay_cidr=CIDR))
    assert peers[0]["Endpoint"] == ["[fd00::3]:51820"]


@pytest.mark.parametrize("name", ["web-1", "a", "x" * 63])
def test_host_names_accepted(name):
    assert overlay.check_host_name(name) == name


@pytest.mark.parametrize("name", ["", "Web", "-a", "a-", "a b", "a;b", "x" * 64, None, 3])
def test_host_names_refused(name):
    with pytest.raises(OverlayError):
        overlay.check_host_name(name)
