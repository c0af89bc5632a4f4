"""Components with flat, schema-friendly arguments, served to every Pulumi language.

`COMPONENTS` is what the component provider hosts (see `__main__.py` and
`PulumiPlugin.yaml` in this directory). Only components whose arguments a
Pulumi package schema can express belong here; the StackConfig-based ones
stay Python-only.
"""

from .fleet import (
    PACKAGE,
    Exposure,
    FleetHost,
    FleetRole,
    FleetService,
    HardenedFleet,
    HardenedFleetArgs,
    Protocol,
    fleet_config,
)

COMPONENTS = (HardenedFleet,)

__all__ = [
    "COMPONENTS",
    "PACKAGE",
    "Exposure",
    "FleetHost",
    "FleetRole",
    "FleetService",
    "HardenedFleet",
    "HardenedFleetArgs",
    "Protocol",
    "fleet_config",
]
