"""The test bed itself: two guests boot in parallel from a stock cloud-config,
accept SSH with a key made for this run, finish cloud-init, and reach each
other over the private VPC segment by their static addresses."""

from __future__ import annotations

import pytest

from tests.testbed.userdata import minimal_user_data

USER = "tester"


@pytest.fixture(scope="module")
def pair(vm_clusters, vm_ssh_key):
    ud = minimal_user_data(vm_ssh_key.public, user=USER)
    with vm_clusters(vpc_cidr="10.10.0.0/24", ssh_user=USER, ssh_key=vm_ssh_key) as cluster:
        alpha = cluster.add("alpha", ud, vpc_ip="10.10.0.11/24")
        beta = cluster.add("beta", ud, vpc_ip="10.10.0.12/24")
        cluster.start()
        cluster.wait_for_ssh(timeout=900)
        statuses = cluster.wait_for_cloud_init(timeout=1500)
        yield alpha, beta, statuses


def test_ssh_logs_in_with_the_generated_key(pair):
    alpha, beta, _ = pair
    for guest in (alpha, beta):
        res = guest.ssh("id -un; hostname; sudo -n true && echo sudo-ok", check=True)
        assert res.stdout.split() == [USER, guest.name, "sudo-ok"]


def test_ssh_without_the_key_is_refused(pair):
    alpha, _, _ = pair
    res = alpha.ssh("true", key=False)
    # no key offered and no password possible (BatchMode): authentication fails
    assert res.rc == 255
    assert "Permission denied" in res.stderr


def test_cloud_init_is_done(pair):
    alpha, beta, statuses = pair
    for guest in (alpha, beta):
        assert statuses[guest.name].ok, statuses[guest.name].detail
        res = guest.ssh("cloud-init status --long")
        assert res.rc == 0, res.stdout + res.stderr
        assert "status: done" in res.stdout
        assert "DataSourceNoCloud" in res.stdout


def test_nics_are_named_and_addressed_like_a_droplet(pair):
    alpha, beta, _ = pair
    for guest, vpc in ((alpha, "10.10.0.11/24"), (beta, "10.10.0.12/24")):
        for dev, addr in (("eth0", "10.0.2.15/24"), ("eth1", vpc)):
            fields = guest.ssh(f"ip -4 -br addr show dev {dev}", check=True).stdout.split()
            assert fields[:2] == [dev, "UP"] and addr in fields, fields


def test_guests_reach_each_other_over_the_vpc(pair):
    alpha, beta, _ = pair
    ping = alpha.ssh(f"ping -c 3 -W 5 {beta.vpc_address}")
    assert ping.ok, ping.stdout + ping.stderr
    # TCP as well: beta's sshd banner, fetched by alpha over eth1
    banner = alpha.ssh(
        f"timeout 20 bash -c 'exec 3<>/dev/tcp/{beta.vpc_address}/22; head -c 4 <&3'"
    )
    assert banner.stdout == "SSH-", banner
    back = beta.ssh(f"ping -c 1 -W 5 {alpha.vpc_address}")
    assert back.ok, back.stdout + back.stderr


def test_console_is_logged(pair):
    alpha, _, _ = pair
    log = alpha.console_log()
    assert "Linux version" in log
    assert "Cloud-init v." in log
