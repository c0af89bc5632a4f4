"""Reboot minutes: a window shared by the stack, one minute per host.

Every host of a role at the same minute would take the whole role down at
once, so each host gets its own minute inside `unattended_upgrades`' window
(`reboot_time` plus `reboot_window_minutes`), and two hosts of one role never
share one. The minute is a pure function of the config:

* a host's preferred slot is a hash of its name (not its position in the
  list), so hosts hash all over the window and roles interleave;
* on a clash inside the role, the host listed later moves to the next free
  minute. Appending hosts therefore never moves an existing host, and a
  host's user-data (which carries its minute) stays the same across runs.
  Removing a host can let a later host of its role that had moved take its
  preferred minute back: that host's user-data, and so the droplet, changes.
"""

from __future__ import annotations

import hashlib

from .config import StackConfig
from .memo import StackMemo

_DAY = 24 * 60
_SLOTS = StackMemo()


def _preferred_slot(host_name: str, width: int) -> int:
    digest = hashlib.sha256(f"reboot:{host_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % width


def reboot_slots(stack: StackConfig) -> dict[str, int]:
    """Minutes after the window start, by host name."""
    width = stack.unattended_upgrades.reboot_window_minutes
    taken: dict[str, set[int]] = {}
    slots: dict[str, int] = {}
    for host in stack.hosts:
        used = taken.setdefault(host.role, set())
        slot = _preferred_slot(host.name, width)
        for step in range(width):
            candidate = (slot + step) % width
            if candidate not in used:
                slot = candidate
                break
        else:  # more hosts than minutes; check_reboot_window reports it
            slot = slot % width
        used.add(slot)
        slots[host.name] = slot
    return slots


def reboot_time(stack: StackConfig, host_name: str) -> str:
    """The host's reboot minute, HH:MM (UTC)."""
    slots = _SLOTS.get(stack, "reboot-slots", lambda: reboot_slots(stack))
    hh, mm = map(int, stack.unattended_upgrades.reboot_time.split(":"))
    minute = (hh * 60 + mm + slots[host_name]) % _DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"


def check_reboot_window(stack: StackConfig) -> list[str]:
    width = stack.unattended_upgrades.reboot_window_minutes
    counts: dict[str, int] = {}
    for host in stack.hosts:
        counts[host.role] = counts.get(host.role, 0) + 1
    return [
        f"unattended_upgrades.reboot_window_minutes: role {role!r} has {n} hosts but the window "
        f"has {width} minutes; two hosts of one role would reboot together. Widen the window to at least {n}"
        for role, n in sorted(counts.items())
        if n > width
    ]
