"""Serve hardened-do's flat-argument components to every Pulumi language.

Pulumi's Python language host runs this directory (`python <dir> <engine
args>`) when a program lists it under `packages:`; `python -m
hardened_do.provider` runs the same host by hand. The package schema is
inferred from the components' type annotations.
"""

import sys
from pathlib import Path

if not __package__:
    # Run as a directory: sys.path[0] is this directory. Two levels up is
    # whatever holds the hardened_do package, a checkout of the repository
    # or site-packages.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi.provider.experimental import component_provider_host  # noqa: E402

from hardened_do import __version__  # noqa: E402
from hardened_do.provider import COMPONENTS, PACKAGE  # noqa: E402

if __name__ == "__main__":
    component_provider_host(components=list(COMPONENTS), name=PACKAGE, version=__version__)
