"""The mesh's overlay addresses are planned with the rest of the config: a
clash of two hashed names is reported, with a free address to pin, before
anything is created; the pin settles it and reaches WireGuardMesh."""

from __future__ import annotations

import copy

import pytest

from hardened_do.components.config import ConfigError
from hardened_do.components.overlay import allocate
from hardened_do.components.stack import overlay_pins, parse_stack_config
from tests.conftest import dev_config


def _fleet(n: int, **extra) -> dict:
    raw = copy.deepcopy(dev_config())
    raw["unattended_upgrades"]["reboot_window_minutes"] = 240
    raw["hosts"] += [{"name": f"web-{i}", "role": "web"} for i in range(3, n)]
    raw.update(extra)
    return raw


def test_a_clash_is_a_config_error_naming_a_free_address_and_a_pin_settles_it():
    raw = _fleet(200, overlay_cidr="10.200.0.0/24")
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, name_prefix="x")
    message = str(err.value)
    assert "overlay address collision" in message and "set `overlay_ip`" in message
    # Pin every host the planner would move, where it says: then it plans.
    for _ in range(300):
        try:
            stack = parse_stack_config(raw, name_prefix="x")
            break
        except ConfigError as exc:
            text = str(exc)
            name, _, address = text.split("e.g. ", 1)[1].split(" (", 1)[0].partition(": ")
            next(h for h in raw["hosts"] if h["name"] == name)["overlay_ip"] = address
    else:
        pytest.fail("pins did not settle the clashes")
    pins = overlay_pins(stack)
    assert pins and all(stack.host(n).overlay_ip == a for n, a in pins.items())
    planned = allocate(stack.overlay_cidr, [h.name for h in stack.hosts], pins)
    assert len(set(planned.values())) == len(stack.hosts)


def test_the_mesh_off_plans_no_addresses():
    raw = _fleet(200, overlay_cidr="10.200.0.0/24", mesh=False)
    parse_stack_config(raw, name_prefix="x")


@pytest.mark.parametrize("bad", ["10.200.0.300", "10.200.0.5\n", "fe80::1", "10.201.0.5"])
def test_a_bad_pin_is_refused(bad):
    raw = copy.deepcopy(dev_config())
    raw["hosts"][0]["overlay_ip"] = bad
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, name_prefix="x")
    assert "overlay" in str(err.value)
