"""Hardened from the first boot stage: the boot filter, the hand-over to UFW,
Lynis-driven settings and reboot minutes, on the rendered cloud-config.

Ubuntu 24.04 guests cannot be booted here (no Ubuntu archive); what differs
for them is checked on the rendering only.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess

import pytest
import yaml

from hardened_do.cloud_init import early_firewall
from hardened_do.cloud_init.render import render_user_data
from hardened_do.cloud_init.render import AUDIT_PACKAGES, BLOCKED_MODULES
from hardened_do.components.config import ConfigError
from hardened_do.components.config import USER_DATA_BUDGET
from hardened_do.components.stack import parse_stack_config
from hardened_do.components.reboots import reboot_slots, reboot_time
from hardened_do.components.services import ufw_rules
from tests.conftest import dev_config, make_ca_pem

CA_PEM = make_ca_pem()


def stack(raw: dict | None = None, **overrides):
    raw = copy.deepcopy(raw or dev_config())
    raw.update(overrides)
    return parse_stack_config(raw, name_prefix="boot")


def cfg(st, host: str) -> dict:
    return yaml.safe_load(render_user_data(st, host))


def files(c: dict) -> dict[str, str]:
    return {f["path"]: f["content"] for f in c["write_files"]}


@pytest.fixture(params=["debian-12-x64", "ubuntu-24-04-x64"])
def image_stack(request):
    return stack(image=request.param)


# ---- boot filter ------------------------------------------------------------


def test_boot_filter_comes_first_and_carries_the_ufw_rules(image_stack):
    for host in image_stack.hosts:
        c = cfg(image_stack, host.name)
        assert next(iter(c)) == "bootcmd", "the boot filter must be the first thing cloud-init runs"
        snippet = c["bootcmd"][0]
        lines = re.search(r"^R='(.*?)'$", snippet, re.M).group(1).split(";")
        assert lines == [f"{r.protocol} {r.port} {r.source}" for r in ufw_rules(image_stack, host.role)]
        assert f"D={early_firewall.STATE_DIR}\n" in snippet
        assert "if [ ! -e $D/boot-filter-handed-over ]; then" in snippet
        assert early_firewall.HANDED_OVER == f"{early_firewall.STATE_DIR}/boot-filter-handed-over"


def _run_snippet(snippet: str, tmp_path, *, with_nft: bool) -> subprocess.CompletedProcess:
    """The real snippet with the real nft/iptables-restore in check mode.

    Check mode parses and validates the ruleset against the kernel without
    loading it, so the machine running the tests keeps its own firewall.
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if with_nft:
        (bindir / "nft").write_text('#!/bin/sh\nexec /usr/sbin/nft -c "$@"\n')
    else:
        for tool in ("iptables-restore", "ip6tables-restore"):
            (bindir / tool).write_text(f'#!/bin/sh\nexec /usr/sbin/{tool} --test "$@"\n')
        for tool in ("iptables", "ip6tables"):  # only ever asked to delete a jump that is not there
            (bindir / tool).write_text("#!/bin/sh\nexit 1\n")
    (bindir / "logger").write_text("#!/bin/sh\nexit 0\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    state = tmp_path / "state"
    script = snippet.replace(early_firewall.STATE_DIR, str(state))
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "LC_ALL": "C"}
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env)
    proc.state = state  # type: ignore[attr-defined]
    return proc


@pytest.fixture
def netfilter_tools():
    if os.geteuid() != 0:
        pytest.skip("checking rulesets against the kernel needs root")
    for tool in ("/usr/sbin/nft", "/usr/sbin/iptables-restore", "/usr/sbin/ip6tables-restore"):
        if not os.path.exists(tool):
            pytest.skip(f"needs {tool} (scripts/setup-host installs nftables and iptables)")


def test_boot_filter_nft_ruleset_is_valid_and_complete(tmp_path, netfilter_tools):
    st = stack(image="debian-12-x64")
    snippet = cfg(st, "db-1")["bootcmd"][0]
    proc = _run_snippet(snippet, tmp_path, with_nft=True)
    assert proc.returncode == 0, proc.stderr
    log = (proc.state / "boot-filter.log").read_text()
    assert log.rstrip().endswith("loaded nft"), log
    rules = (proc.state / "boot-filter.rules").read_text()
    assert "policy drop;" in rules
    for r in ufw_rules(st, "db"):
        match = "" if r.source == "any" else f"ip saddr {r.source} "
        assert f"{match}{r.protocol} dport {r.port} accept" in rules
    # Nothing else is let in: every accept is a declared rule or the baseline
    # any host needs (replies, loopback, ICMP errors and ping, DHCP replies).
    accepts = [line for line in rules.splitlines() if "dport" in line and "accept" in line]
    assert len(accepts) == len(ufw_rules(st, "db")) + 1  # + DHCP replies (udp sport 67 dport 68)


def test_boot_filter_falls_back_to_iptables(tmp_path, netfilter_tools):
    st = stack(image="ubuntu-24-04-x64", ssh_allowed_sources=["203.0.113.0/24", "2001:db8::/32"])
    snippet = cfg(st, "bastion-1")["bootcmd"][0]
    proc = _run_snippet(snippet, tmp_path, with_nft=False)
    assert proc.returncode == 0, proc.stderr
    assert (proc.state / "boot-filter.log").read_text().rstrip().endswith("loaded iptables")
    v4 = (proc.state / "boot-filter.v4").read_text()
    v6 = (proc.state / "boot-filter.v6").read_text()
    assert "-A HD-BOOT -s 203.0.113.0/24 -p tcp --dport 22 -j ACCEPT" in v4
    assert "2001:db8::/32" not in v4
    assert "-A HD-BOOT -s 2001:db8::/32 -p tcp --dport 22 -j ACCEPT" in v6
    assert "203.0.113.0/24" not in v6
    for text in (v4, v6):
        assert text.splitlines()[-2:] == ["-A HD-BOOT -j DROP", "COMMIT"]


def test_boot_filter_is_not_loaded_again_after_the_hand_over(tmp_path, netfilter_tools):
    snippet = cfg(stack(), "web-1")["bootcmd"][0]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "boot-filter-handed-over").touch()
    proc = _run_snippet(snippet, tmp_path, with_nft=True)
    assert proc.returncode == 0
    assert not (tmp_path / "state" / "boot-filter.log").exists()


def test_hand_over_enables_ufw_before_removing_the_boot_filter(image_stack):
    script = files(cfg(image_stack, "web-1"))["/usr/local/sbin/hardened-do-firewall"]
    lines = script.splitlines()
    enable = lines.index("ufw --force enable")
    assert all(i < enable for i, line in enumerate(lines) if line.startswith("ufw allow") or line.startswith("ufw limit"))
    removal = next(i for i, line in enumerate(lines) if f"nft delete table inet {early_firewall.TABLE}" in line)
    marker = next(i for i, line in enumerate(lines) if line.startswith(f"touch {early_firewall.HANDED_OVER}"))
    assert enable < removal < marker


def test_boot_filter_script_passes_shellcheck(tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("needs shellcheck (scripts/setup-host)")
    snippet = cfg(stack(), "db-1")["bootcmd"][0]
    path = tmp_path / "bootcmd.sh"
    path.write_text("#!/bin/sh\n" + snippet)
    # SC2086: word splitting of $D and $t is wanted (paths without spaces).
    proc = subprocess.run(["shellcheck", "-S", "warning", "-e", "SC2086", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


# ---- Lynis-driven settings --------------------------------------------------


def test_lynis_settings_are_written(image_stack):
    c = cfg(image_stack, "web-1")
    f = files(c)
    modprobe = f["/etc/modprobe.d/hardened-do.conf"]
    for module in ("dccp", "sctp", "rds", "tipc", "usb-storage"):
        assert f"install {module} /bin/true" in modprobe.splitlines()  # NETW-3200, USB-1000
    assert "blacklist firewire-core" in modprobe.splitlines()  # STRG-1846
    assert "squashfs" not in BLOCKED_MODULES  # Ubuntu's snaps mount it
    assert "* hard core 0" in f["/etc/security/limits.d/60-hardened-do.conf"]  # KRNL-5820
    assert re.search(r"authorized", f["/etc/issue"], re.I)  # BANN-7126/7130
    baseline = f["/usr/local/sbin/hardened-do-baseline"]
    for key, value in (("UMASK", "027"), ("PASS_MAX_DAYS", "365"), ("SHA_CRYPT_MIN_ROUNDS", "65536")):
        assert f"set_def {key} {value}" in baseline
    assert "cp /etc/issue /etc/issue.net" in baseline
    # The audit trail is an opt-in: nothing of it by default.
    assert not set(AUDIT_PACKAGES) & set(c["packages"])
    assert "/etc/audit/rules.d/60-hardened-do.rules" not in f
    assert "augenrules --load" not in [" ".join(x) for x in c["runcmd"]]
    sysctl = f["/etc/sysctl.d/60-hardened-do.conf"]
    for line in ("kernel.core_uses_pid = 1", "kernel.perf_event_paranoid = 3", "-dev.tty.ldisc_autoload = 0"):
        assert line in sysctl.splitlines()
    # Upgrades keep the files edited in place instead of stopping at a prompt.
    assert '"--force-confold";' in f["/etc/apt/apt.conf.d/52hardened-do-unattended-upgrades"]


def test_audit_trail_opt_in_installs_and_loads_the_rules(image_stack):
    raw = copy.deepcopy(dev_config())
    raw["audit_trail"] = True
    st = stack(raw, image=image_stack.image)
    c = cfg(st, "web-1")
    f = files(c)
    assert set(AUDIT_PACKAGES) <= set(c["packages"])
    assert "-w /etc/sudoers -p wa -k privilege" in f["/etc/audit/rules.d/60-hardened-do.rules"]
    assert f["/etc/default/sysstat"] == 'ENABLED="true"\n'
    runcmd = [" ".join(x) for x in c["runcmd"]]
    assert runcmd.index("/usr/local/sbin/hardened-do-baseline") < runcmd.index("augenrules --load")


def test_baseline_script_edits_login_defs_in_place(tmp_path):
    """The real script's set_def on a copy of a Debian login.defs."""
    script = files(cfg(stack(), "web-1"))["/usr/local/sbin/hardened-do-baseline"]
    set_def = re.search(r"^set_def\(\) \{.*?^\}$", script, re.M | re.S).group(0)
    defs = tmp_path / "login.defs"
    defs.write_text(
        "# UMASK is the default umask value for pam_umask and is used by\n"
        "#\tPASS_MAX_DAYS\tMaximum number of days a password may be used.\n"
        "UMASK\t\t022\nPASS_MAX_DAYS\t99999\n#SHA_CRYPT_MIN_ROUNDS 5000\n#SHA_CRYPT_MIN_ROUNDS 6000\n"
    )
    body = set_def.replace("/etc/login.defs", str(defs))
    calls = "\n".join(line for line in script.splitlines() if line.startswith("set_def ")).replace("/etc/login.defs", str(defs))
    subprocess.run(["sh", "-ec", body + "\n" + calls + "\n" + calls], check=True)
    text = defs.read_text().splitlines()
    assert text.count("UMASK 027") == 1 and text.count("PASS_MAX_DAYS 365") == 1
    assert "SHA_CRYPT_MIN_ROUNDS 65536" in text and "PASS_MIN_DAYS 1" in text
    assert text.count("SHA_CRYPT_MIN_ROUNDS 65536") == 1
    # Comments that merely mention a key are left alone.
    assert text[0].startswith("# UMASK is the default") and text[1].startswith("#\tPASS_MAX_DAYS")


def test_unattended_origins_follow_the_image():
    deb = files(cfg(stack(image="debian-12-x64"), "web-1"))["/etc/apt/apt.conf.d/52hardened-do-unattended-upgrades"]
    ubu = files(cfg(stack(image="ubuntu-24-04-x64"), "web-1"))["/etc/apt/apt.conf.d/52hardened-do-unattended-upgrades"]
    assert "origin=Debian," in deb and "origin=Ubuntu," not in deb
    assert "origin=Ubuntu," in ubu and "origin=Debian," not in ubu


# ---- reboot minutes ---------------------------------------------------------


def _fleet(n_web: int, **uu) -> dict:
    raw = copy.deepcopy(dev_config())
    raw["hosts"] = [h for h in raw["hosts"] if h["role"] != "web"] + [
        {"name": f"web-{i}", "role": "web"} for i in range(1, n_web + 1)
    ]
    raw["unattended_upgrades"] = {"automatic_reboot": True, "reboot_time": "04:30", **uu}
    return raw


def test_no_two_hosts_of_a_role_reboot_at_the_same_minute():
    st = parse_stack_config(_fleet(40, reboot_window_minutes=45), name_prefix="x")
    by_role: dict[str, list[str]] = {}
    for h in st.hosts:
        by_role.setdefault(h.role, []).append(reboot_time(st, h.name))
    for role, times in by_role.items():
        assert len(times) == len(set(times)), role
    assert all("04:30" <= t <= "05:14" for times in by_role.values() for t in times)
    # Spread, not stacked at the window start.
    assert len({reboot_time(st, h.name) for h in st.hosts}) > 30


def test_reboot_minute_is_in_the_rendered_user_data_and_wraps_midnight():
    st = parse_stack_config(_fleet(5, reboot_time="23:50", reboot_window_minutes=30), name_prefix="x")
    for h in st.hosts:
        t = reboot_time(st, h.name)
        assert t >= "23:50" or t < "00:20"
        conf = files(cfg(st, h.name))["/etc/apt/apt.conf.d/52hardened-do-unattended-upgrades"]
        assert f'Automatic-Reboot-Time "{t}";' in conf


def test_appending_hosts_changes_no_existing_host():
    before = parse_stack_config(_fleet(10), name_prefix="x")
    after = parse_stack_config(_fleet(30), name_prefix="x")
    for h in before.hosts:
        assert render_user_data(before, h.name) == render_user_data(after, h.name), h.name


def test_hosts_of_a_role_differ_only_in_name_and_reboot_minute():
    st = parse_stack_config(_fleet(3), name_prefix="x")
    a, b = render_user_data(st, "web-1").splitlines(), render_user_data(st, "web-2").splitlines()
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    assert len(a) == len(b) and len(diff) == 2, diff
    assert diff[0][0].startswith("# hardened-do: host web-1")
    assert "Automatic-Reboot-Time" in diff[1][0] and "Automatic-Reboot-Time" in diff[1][1]


def test_render_is_stable_across_parses():
    assert render_user_data(stack(), "web-2") == render_user_data(stack(), "web-2")
    assert reboot_slots(stack()) == reboot_slots(stack())


def test_a_window_narrower_than_a_role_is_refused():
    with pytest.raises(ConfigError) as e:
        parse_stack_config(_fleet(6, reboot_window_minutes=5), name_prefix="x")
    assert "reboot_window_minutes" in str(e.value) and "'web' has 6 hosts" in str(e.value)


# ---- budget -----------------------------------------------------------------


@pytest.mark.parametrize("image", ["debian-12-x64", "ubuntu-24-04-x64"])
def test_every_host_fits_the_budget_with_a_ca(image):
    raw = copy.deepcopy(dev_config())
    st = stack(raw, image=image, trusted_ca_pem=CA_PEM)
    for h in st.hosts:
        assert len(render_user_data(st, h.name).encode()) < USER_DATA_BUDGET, h.name


def test_baked_rendering_skips_only_the_package_steps():
    st = stack()
    full = cfg(st, "web-1")
    baked = yaml.safe_load(render_user_data(st, "web-1", baked=True))
    assert "packages" not in baked and baked["package_update"] is False and baked["package_upgrade"] is False
    rest = {k: v for k, v in full.items() if k not in ("packages", "package_update", "package_upgrade")}
    assert rest == {k: v for k, v in baked.items() if k not in ("package_update", "package_upgrade")}
