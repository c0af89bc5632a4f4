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


def package_schema() -> dict:
    """The Pulumi package schema the provider serves, as a dict.

    Built by the SDK's ComponentProvider, the same code path
    component_provider_host runs, so no engine is needed to inspect it.
    """
    import json

    from pulumi.provider.experimental.component import ComponentProvider

    from .. import __version__

    return json.loads(ComponentProvider(list(COMPONENTS), PACKAGE, None, __version__).schema)

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
    "package_schema",
]
