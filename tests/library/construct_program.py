"""A program that constructs a component the way other languages reach it.

A TypeScript, Go or YAML program never calls HardenedFleet directly: the
engine sends the component provider a Construct request with schema
(camelCase) property names and wire values, and the provider maps them back
to Python args. This program does the same in-process through the SDK's
ComponentProvider, so the mapping and the resulting resource graph can be
tested under mocks without the engine.

Config (as run by offline.mock_engine.run_program):
  hardened-do:construct  {"type": token, "name": name, "inputs": {...}}
"""

import pulumi
from pulumi.provider.experimental.component import ComponentProvider

from hardened_do import __version__
from hardened_do.provider import COMPONENTS, PACKAGE


def _as_wire(value):
    # The wire format has a single number type: a 443 in YAML arrives as 443.0.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: _as_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_wire(v) for v in value]
    return value


request = pulumi.Config(PACKAGE).require_object("construct")
provider = ComponentProvider(list(COMPONENTS), PACKAGE, None, __version__)
result = provider.construct(request["name"], request["type"], _as_wire(request["inputs"]), None)
for key, value in result.state.items():
    pulumi.export(key, value)
