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

from pathlib import Path as _Path

__version__ = "0.1.0"

# In a checkout of the repository, components/ and cloud_init/ sit next to
# this package (the Pulumi program imports them as top-level packages); the
# wheel installs them as hardened_do.components and hardened_do.cloud_init.
# Searching the checkout's root as well lets the same import names work in
# both layouts, without a second copy of the code on disk.
_HERE = _Path(__file__).resolve().parent
if not (_HERE / "components").is_dir() and (_HERE.parent / "components" / "config.py").is_file():
    __path__.append(str(_HERE.parent))  # noqa: F821 (set by the import system)

from .cloud_init import build_cloud_config, render_user_data  # noqa: E402
from .components.audit import AuditMode, ServiceAudit, ServiceAuditArgs  # noqa: E402
from .components.config import (  # noqa: E402
    SUPPORTED_IMAGES,
    ConfigError,
    StackConfig,
    load_from_pulumi,
    load_stack_file,
    parse_stack_config,
)
from .components.host import HardenedHost, HardenedHostArgs, ssh_command  # noqa: E402
from .components.mesh import AdminPeerArgs, WireGuardMesh, WireGuardMeshArgs  # noqa: E402
from .components.network import Network, NetworkArgs  # noqa: E402
from .components.pki import InternalPki, InternalPkiArgs  # noqa: E402
from .components.remote import HostConnection  # noqa: E402
from .components.ssh_keys import AdminSshKeys, AdminSshKeysArgs  # noqa: E402
from .provider import (  # noqa: E402
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
