"""Evaluate the Pulumi program under the SDK's mocks and record what it plans.

This is the program-logic half of a preview: every resource the program
registers, with its inputs, parent, explicit and property dependencies and
which inputs are secret. It does not replace the engine (no provider checks
its inputs); it runs where the engine cannot, and it is what the unit tests
and the policy tests assert on.
"""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "hardened-do"


@dataclass
class PlannedResource:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict
    outputs: dict
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    secret_inputs: list[str] = field(default_factory=list)
    additional_secret_outputs: list[str] = field(default_factory=list)
    order: int = 0


@dataclass
class Plan:
    resources: list[PlannedResource]
    exports: dict
    secret_exports: list[str]

    def of_type(self, typ: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == typ]

    def by_urn(self, urn: str) -> PlannedResource:
        return next(r for r in self.resources if r.urn == urn)

    def to_json(self) -> str:
        return json.dumps(
            {
                "resources": [r.__dict__ for r in self.resources],
                "exports": self.exports,
                "secret_exports": self.secret_exports,
            },
            indent=2,
            sort_keys=True,
            default=str,
        )


def _fake_outputs(typ: str, name: str, inputs: dict, n: int) -> dict:
    """Plausible provider-computed outputs, enough for the program's wiring."""
    out = dict(inputs)
    if typ == "digitalocean:index/droplet:Droplet":
        out.setdefault("ipv4AddressPrivate", f"10.10.0.{10 + n % 200}")
        if inputs.get("publicNetworking", True) is not False:
            out.setdefault("ipv4Address", f"192.0.2.{10 + n % 200}")
        out.setdefault("urn", name)
    elif typ == "digitalocean:index/sshKey:SshKey":
        out.setdefault("fingerprint", f"aa:bb:cc:{n:02x}")
    elif typ == "digitalocean:index/vpc:Vpc":
        out.setdefault("urn", f"do:vpc:{name}")
    return out


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.count = 0

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.count += 1
        return f"{args.name}-id", _fake_outputs(args.typ, args.name, args.inputs, self.count)

    def call(self, args: pulumi.runtime.MockCallArgs):
        # The default code path makes no data-source calls (preview must work
        # without an API token); any call is a bug the tests should see.
        raise AssertionError(f"unexpected provider function call: {args.token}")


def _secret_paths(value: Any, prefix: str = "") -> list[str]:
    """Paths of secret-wrapped values in a protobuf-derived structure."""
    found = []
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return [prefix or "<root>"]
        for k, v in value.items():
            found += _secret_paths(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _secret_paths(v, f"{prefix}[{i}]")
    return found


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: _Mocks):
        super().__init__(mocks)
        self.planned: list[PlannedResource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        from google.protobuf import json_format

        raw = json_format.MessageToDict(request.object)
        inputs = rpc.deserialize_properties(request.object)
        state = self.resources[response.urn].state
        self.planned.append(
            PlannedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent=request.parent,
                inputs=_plain(inputs),
                outputs=_plain(state),
                dependencies=list(request.dependencies),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                secret_inputs=_secret_paths(raw),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                order=len(self.planned),
            )
        )
        return response


def _plain(value: Any) -> Any:
    """JSON-friendly copy; secrets masked (the plan is printed), unknowns named."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return "[secret]"
    if type(value).__name__ == "Unknown":
        return "<computed>"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


class _Box(dict):
    pass


def _settle(value: Any, outs: list) -> Any:
    """A copy of `value` whose Output leaves are filled in as they resolve
    ("<computed>" until then, and for good if they stay unknown)."""
    if isinstance(value, pulumi.Output):
        box = _Box(value="<computed>")
        outs.append(value.apply(lambda v: box.__setitem__("value", v)))
        return box
    if isinstance(value, dict):
        return {k: _settle(v, outs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_settle(v, outs) for v in value]
    return value


def _unbox(value: Any) -> Any:
    if isinstance(value, _Box):
        return _unbox(value["value"])
    if isinstance(value, dict):
        return {k: _unbox(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unbox(v) for v in value]
    return value


def config_from_stack_file(path: Path) -> dict[str, Any]:
    """`project:key` -> value, as the CLI would pass them to the program."""
    import yaml

    doc = yaml.safe_load(Path(path).read_text()) or {}
    return dict(doc.get("config") or {})


def run_program(
    config: dict[str, Any],
    *,
    stack: str = "dev",
    program: Path = ROOT / "__main__.py",
    preview: bool = True,
    mocks: pulumi.runtime.Mocks | None = None,
) -> Plan:
    """Run the program under mocks with `config` (`project:key` -> value).

    `mocks` replaces the stand-in providers (tests give remote commands
    real output this way)."""
    mocks = mocks or _Mocks()
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    # The CLI passes structured values as JSON strings; do the same so the
    # program's config reading is exercised as it is in a real run.
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}, []
    )
    exports: dict[str, Any] = {}
    secret_exports: list[str] = []
    real_export = pulumi.export

    def _export(name: str, value: Any) -> None:
        exports[name] = value
        real_export(name, value)

    @pulumi.runtime.test
    def _evaluate():
        pulumi.export = _export
        # As the Python language host does: the program's directory is on
        # the module path while it runs (for its own sibling modules).
        sys.path.insert(0, str(program.parent))
        try:
            runpy.run_path(str(program), run_name="__pulumi_program__")
        finally:
            pulumi.export = real_export
            sys.path.remove(str(program.parent))

        import asyncio

        outs = []
        for name in list(exports):
            out = pulumi.Output.from_input(exports[name])
            secret = asyncio.ensure_future(out.is_secret())
            secret.add_done_callback(lambda fut, n=name: fut.result() and secret_exports.append(n))
            # Field by field: in a preview one unknown field must not hide
            # the known ones next to it.
            exports[name] = _settle(exports[name], outs)
        return pulumi.Output.all(*outs)

    try:
        _evaluate()
    except Exception as exc:
        # Let callers check that a rejected config registered nothing.
        exc.planned = list(monitor.planned)  # type: ignore[attr-defined]
        raise
    for name, value in exports.items():
        # Masked like secret inputs: the plan is printed.
        exports[name] = "[secret]" if name in secret_exports else _unbox(value)
    return Plan(resources=sorted(monitor.planned, key=lambda r: r.order), exports=exports, secret_exports=secret_exports)
