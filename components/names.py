"""Name patterns shared by the config model and the SSH-generic components."""

from __future__ import annotations

import re

# RFC 1123 host label, lowercase only: it becomes a host name, a DigitalOcean
# resource name, a tag, a WireGuard peer comment and a certificate SAN.
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

DNS_LABEL_HINT = "1-63 characters, lowercase a-z, 0-9 and '-', not starting or ending with '-'"


def is_dns_label(value: object) -> bool:
    """True for a lowercase DNS label; `fullmatch`, so no trailing newline slips through."""
    return isinstance(value, str) and DNS_LABEL.fullmatch(value) is not None
