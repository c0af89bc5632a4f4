"""Baseline user-data for the test bed itself (the project's hardened user-data
comes from `python -m cloud_init render`, not from here)."""

from __future__ import annotations

import json


def minimal_user_data(public_key: str, user: str = "tester") -> str:
    """A stock cloud-config: one sudo user with one SSH key, nothing else.

    It is the control for measurements: whatever a hardened config adds to boot
    time or changes on the host shows up as a difference against this.
    """
    return (
        "#cloud-config\n"
        "users:\n"
        f"  - name: {user}\n"
        "    shell: /bin/bash\n"
        '    sudo: "ALL=(ALL) NOPASSWD:ALL"\n'
        "    ssh_authorized_keys:\n"
        f"      - {json.dumps(public_key)}\n"
    )
