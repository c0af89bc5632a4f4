"""A stack ready to deploy: validated config values, plus the limits that show
only once firewall rules and user-data are derived from them.

Data flows one way: `config` parses values, `services` derives rules from
them, `cloud_init` renders user-data from both; this module sits above all
three, so a rejected stack is reported whole (every problem at once) before
any resource is registered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..cloud_init.render import user_data_problems
from .config import (
    PROJECT,
    ConfigError,
    StackConfig,
    parse_config_values,
    read_pulumi_config,
    read_stack_file,
)
from .overlay import ADMIN_PREFIX, OverlayError, allocate
from .reboots import check_reboot_window
from .services import check_firewall_limits


def check_derived_limits(stack: StackConfig) -> None:
    """DigitalOcean's per-firewall rule limit, a reboot minute for every host
    in its window, and our user-data budget."""
    problems = [f"{PROJECT}:{p}" for p in check_firewall_limits(stack)]
    problems += [f"{PROJECT}:{p}" for p in check_reboot_window(stack)]
    problems += [f"{PROJECT}:{p}" for p in user_data_problems(stack)]
    problems += [f"{PROJECT}:{p}" for p in overlay_problems(stack)]
    if problems:
        raise ConfigError(problems)


def overlay_pins(stack: StackConfig) -> dict[str, str]:
    """Host name -> pinned overlay address, for the hosts that have one."""
    return {h.name: h.overlay_ip for h in stack.hosts if h.overlay_ip}


def overlay_problems(stack: StackConfig) -> list[str]:
    """The mesh's addresses planned as WireGuardMesh will plan them: a clash of
    two hashed names, or a bad pin, is reported before any droplet exists."""
    if not stack.mesh:
        return []
    admins = [ADMIN_PREFIX + p.name for p in stack.mesh_admin_peers] if stack.bastion_host else []
    try:
        allocate(stack.overlay_cidr, [h.name for h in stack.hosts] + admins, overlay_pins(stack))
    except OverlayError as exc:
        return [f"hosts: {exc}; set `overlay_ip` on the host in `hosts` to pin it"]
    return []


def parse_stack_config(raw: Any, *, name_prefix: str) -> StackConfig:
    """Validate raw config values (keys without the `hardened-do:` namespace).

    Raises ConfigError, listing every problem, and nothing else.
    """
    stack = parse_config_values(raw, name_prefix=name_prefix)
    check_derived_limits(stack)
    return stack


def load_from_pulumi() -> StackConfig:
    """The running stack's config, validated."""
    raw, prefix = read_pulumi_config()
    return parse_stack_config(raw, name_prefix=prefix)


def load_stack_file(path: str | Path, *, project: str = PROJECT) -> StackConfig:
    """A `Pulumi.<stack>.yaml` file, validated without the Pulumi CLI (render, tests, CI)."""
    raw, prefix = read_stack_file(path, project=project)
    return parse_stack_config(raw, name_prefix=prefix)
