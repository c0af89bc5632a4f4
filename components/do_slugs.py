"""DigitalOcean's published region and droplet size slugs.

The DigitalOcean provider accepts any string for a region or size and only the
API refuses it, half-way through `pulumi up`; these lists are our check before
that. Taken from DigitalOcean's public product documentation (regional
availability matrix and the droplet pricing page) as of 2025-06-01.

A slug DigitalOcean adds later is allowed by setting `allow_unlisted_slugs:
true` in the stack config (it is then only checked for its shape); please also
add it here.
"""

from __future__ import annotations

import re

SLUGS_AS_OF = "2025-06-01"

REGIONS = frozenset(
    {
        "nyc1", "nyc2", "nyc3", "sfo1", "sfo2", "sfo3", "ams2", "ams3", "sgp1",
        "lon1", "fra1", "tor1", "blr1", "syd1", "atl1", "ric1",
    }
)

_BASIC = (
    "s-1vcpu-512mb-10gb", "s-1vcpu-1gb", "s-1vcpu-1gb-amd", "s-1vcpu-1gb-intel",
    "s-1vcpu-1gb-35gb-intel", "s-1vcpu-2gb", "s-1vcpu-2gb-amd", "s-1vcpu-2gb-intel",
    "s-1vcpu-2gb-70gb-intel", "s-2vcpu-2gb", "s-2vcpu-2gb-amd", "s-2vcpu-2gb-intel",
    "s-2vcpu-2gb-90gb-intel", "s-2vcpu-4gb", "s-2vcpu-4gb-amd", "s-2vcpu-4gb-intel",
    "s-2vcpu-4gb-120gb-intel", "s-2vcpu-8gb-amd", "s-2vcpu-8gb-160gb-intel",
    "s-4vcpu-8gb", "s-4vcpu-8gb-amd", "s-4vcpu-8gb-intel", "s-4vcpu-8gb-240gb-intel",
    "s-4vcpu-16gb-amd", "s-4vcpu-16gb-320gb-intel", "s-8vcpu-16gb", "s-8vcpu-16gb-amd",
    "s-8vcpu-16gb-intel", "s-8vcpu-16gb-480gb-intel", "s-8vcpu-32gb-amd",
    "s-8vcpu-32gb-640gb-intel",
)


def _family(prefix: str, shapes: tuple[str, ...], suffixes: tuple[str, ...] = ("", "-intel")) -> set[str]:
    return {f"{prefix}-{shape}{suffix}" for shape in shapes for suffix in suffixes}


SIZES = frozenset(
    set(_BASIC)
    # General purpose (1:4), CPU-optimised (1:2), memory-optimised (1:8),
    # storage-optimised (1:8 with NVMe); premium Intel variants end in -intel.
    | _family("g", ("2vcpu-8gb", "4vcpu-16gb", "8vcpu-32gb", "16vcpu-64gb", "32vcpu-128gb", "40vcpu-160gb", "48vcpu-192gb"))
    | _family("gd", ("2vcpu-8gb", "4vcpu-16gb", "8vcpu-32gb", "16vcpu-64gb", "32vcpu-128gb", "40vcpu-160gb", "48vcpu-192gb"))
    | _family("c", ("2", "4", "8", "16", "32", "48"))
    | _family("c2", ("2vcpu-4gb", "4vcpu-8gb", "8vcpu-16gb", "16vcpu-32gb", "32vcpu-64gb", "48vcpu-96gb"))
    | _family("m", ("2vcpu-16gb", "4vcpu-32gb", "8vcpu-64gb", "16vcpu-128gb", "24vcpu-192gb", "32vcpu-256gb"))
    | _family("m3", ("2vcpu-16gb", "4vcpu-32gb", "8vcpu-64gb", "16vcpu-128gb", "24vcpu-192gb", "32vcpu-256gb"))
    | _family("m6", ("2vcpu-16gb", "4vcpu-32gb", "8vcpu-64gb", "16vcpu-128gb", "24vcpu-192gb", "32vcpu-256gb"))
    | _family("so", ("2vcpu-16gb", "4vcpu-32gb", "8vcpu-64gb", "16vcpu-128gb", "24vcpu-192gb", "32vcpu-256gb"))
    | _family("so1_5", ("2vcpu-16gb", "4vcpu-32gb", "8vcpu-64gb", "16vcpu-128gb", "24vcpu-192gb", "32vcpu-256gb"))
)

# The shapes an unlisted slug must still have with allow_unlisted_slugs.
REGION_SHAPE = re.compile(r"[a-z]{3}[0-9]")
SIZE_SHAPE = re.compile(r"[a-z][a-z0-9_]{0,7}(-[a-z0-9]{1,16}){1,5}")
