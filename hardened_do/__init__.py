"""hardened-do: secure-by-default DigitalOcean servers as Pulumi components.

The public API is exactly the names in ``__all__`` below; version 0.x follows
semantic versioning for them. Modules below ``hardened_do`` (components,
cloud_init, provider) are implementation detail and may change in any
release.

Two ways in:

* Compose the components yourself: validate a plain dict with
  ``parse_stack_config(raw, name_prefix=...)`` (no Pulumi stack config
  needed), then create ``AdminSshKeys``, ``Network`` and one
  ``HardenedHost`` per host.
* On servers you already have (any SSH-reachable Linux host): a WireGuard
  mesh (``WireGuardMesh``), an internal CA with host certificates
  (``InternalPki``) and a service audit (``ServiceAudit``), each taking a
  list of ``HostConnection``.
* Or create one ``HardenedFleet`` from flat arguments; the same component is
  served to TypeScript, Go, .NET, Java and YAML programs by the component
  provider in ``hardened_do/provider`` (see its PulumiPlugin.yaml).

Every insecure choice is an explicit opt-in with a loud name
(``allow_ssh_from_anywhere``, ``droplet_agent``); everything else defaults to
deny.
"""

__version__ = "0.1.0"

# components/ and cloud_init/ are links to the folders of the same name at the
# top of the repository (the wheel maps those folders here): the program, the
# tests and the wheel all import the product code as hardened_do.*.
from .cloud_init.render import build_cloud_config, render_user_data
from .components.admin_keys import AdminSshKeys, AdminSshKeysArgs
from .components.audit import AuditMode, ServiceAudit, ServiceAuditArgs
from .components.config import SUPPORTED_IMAGES, ConfigError, StackConfig
from .components.host import HardenedHost, HardenedHostArgs, ssh_command
from .components.mesh import AdminPeerArgs, WireGuardMesh, WireGuardMeshArgs
from .components.network import Network, NetworkArgs
from .components.pki import InternalPki, InternalPkiArgs
from .components.remote import HostConnection
from .components.stack import load_from_pulumi, load_stack_file, parse_stack_config
from .provider import (
    Exposure,
    FleetHost,
    FleetRole,
    FleetService,
    HardenedFleet,
    HardenedFleetArgs,
    Protocol,
)

__all__ = [
    "__version__",
    # Configuration: validated before any resource exists.
    "parse_stack_config",
    "load_from_pulumi",
    "load_stack_file",
    "StackConfig",
    "ConfigError",
    "SUPPORTED_IMAGES",
    # Components composed from a StackConfig.
    "AdminSshKeys",
    "AdminSshKeysArgs",
    "Network",
    "NetworkArgs",
    "HardenedHost",
    "HardenedHostArgs",
    "ssh_command",
    # SSH-generic components: any reachable Linux host, droplet or not.
    "HostConnection",
    "WireGuardMesh",
    "WireGuardMeshArgs",
    "AdminPeerArgs",
    "InternalPki",
    "InternalPkiArgs",
    "ServiceAudit",
    "ServiceAuditArgs",
    "AuditMode",
    # The whole baseline from flat arguments (also served to other languages).
    "HardenedFleet",
    "HardenedFleetArgs",
    "FleetRole",
    "FleetService",
    "FleetHost",
    "Exposure",
    "Protocol",
    # What goes on a host, without Pulumi.
    "render_user_data",
    "build_cloud_config",
]
