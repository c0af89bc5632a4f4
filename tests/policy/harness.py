"""Feed planned resources to the policy pack the way the engine does.

Two routes, both without the Pulumi CLI:

* `evaluate_plan` calls each policy's `validate` with the public argument
  classes (`ResourceValidationArgs` for every custom resource's inputs,
  `StackValidationArgs` with `PolicyResource`s built from the outputs), and
  property proxies from `pulumi_policy.proxy`, as the analyzer server builds
  them.
* `Analyzer` drives pulumi-policy's own analyzer servicer with the protobuf
  requests the engine sends (Configure, Analyze, AnalyzeStack), so
  deserialization, per-policy enforcement levels from config and the
  handling of unknown values are pulumi-policy's, not ours. The servicer is
  a private class; pulumi-policy is pinned (requirements-dev.txt), and a
  change there shows up here first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from google.protobuf import struct_pb2
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"

# The pack's modules by their plain names, as the CLI loads them (pytest.ini
# puts policy/ on the path).
import pack  # noqa: E402
import rules  # noqa: E402


def engine_value(value: Any) -> Any:
    """A value as the engine would hand it to a policy pack.

    `rules.UNKNOWN` (test shorthand) and the mock engine's record of an
    unknown Output (its repr) become the engine's unknown placeholder;
    secrets are unwrapped, as pulumi-policy's deserializer does.
    """
    if value is rules.UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, str) and value.startswith("<pulumi.output.Unknown object"):
        return UNKNOWN_STRING_VALUE
    if isinstance(value, Mapping):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return engine_value(value.get("value"))
        return {k: engine_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [engine_value(v) for v in value]
    return value


def _options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def resource_args(
    resource_type: str,
    props: Mapping,
    name: str = "res",
    urn: str | None = None,
    config: Mapping | None = None,
) -> ResourceValidationArgs:
    urn = urn or f"urn:pulumi:test::hardened-do::{resource_type}::{name}"
    return ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(engine_value(dict(props))),
        urn,
        name,
        _options(),
        None,
        config,
    )


def run_resource_policy(
    policy: ResourceValidationPolicy,
    resource_type: str,
    props: Mapping,
    name: str = "res",
    config: Mapping | None = None,
) -> list[str]:
    """Messages `policy` reports for one resource (UnknownValueError propagates)."""
    reported: list[str] = []
    policy.validate(resource_args(resource_type, props, name, config=config), lambda m, urn=None: reported.append(m))
    return reported


def policy_resource(res: Mapping) -> PolicyResource:
    return PolicyResource(
        res["type"],
        unknown_checking_proxy(engine_value(dict(res.get("props") or {}))),
        res.get("urn") or f"urn:pulumi:test::hardened-do::{res['type']}::{res.get('name', 'res')}",
        res.get("name", "res"),
        _options(),
        None,
        None,
        [],
        {},
    )


def stack_args(resources: Iterable[Mapping], config: Mapping | None = None) -> StackValidationArgs:
    """StackValidationArgs with dependencies linked like the analyzer server links them."""
    resources = list(resources)
    built = [policy_resource(r) for r in resources]
    by_urn = {r.urn: r for r in built}
    for spec, res in zip(resources, built):
        res.parent = by_urn.get(spec.get("parent") or "")
        res.dependencies = [by_urn[u] for u in spec.get("dependencies") or [] if u in by_urn]
        res.property_dependencies = {
            k: [by_urn[u] for u in urns if u in by_urn] for k, urns in (spec.get("property_dependencies") or {}).items()
        }
    return StackValidationArgs(built, config)


def run_stack_policy(
    policy: StackValidationPolicy, resources: Iterable[Mapping], config: Mapping | None = None
) -> list[tuple[str | None, str]]:
    reported: list[tuple[str | None, str]] = []
    policy.validate(stack_args(resources, config), lambda m, urn=None: reported.append((urn, m)))
    return reported


@dataclass(frozen=True)
class Finding:
    policy: str
    urn: str
    name: str
    message: str


def plan_resources(plan, use: str = "inputs") -> list[dict]:
    """The plan's custom resources as the engine describes them to a policy pack."""
    return [
        {
            "type": r.type,
            "urn": r.urn,
            "name": r.name,
            "props": getattr(r, use),
            "parent": r.parent,
            "dependencies": r.dependencies,
            "property_dependencies": r.property_dependencies,
        }
        for r in plan.resources
        if r.custom
    ]


def evaluate_plan(plan, policies=None, config: Mapping[str, Mapping] | None = None) -> list[Finding]:
    """Run every policy over a plan: resource policies on inputs, stack policies on outputs.

    (The engine validates a resource's inputs before it is created and the
    whole stack's outputs at the end of the preview or update.)
    """
    policies = pack.POLICIES if policies is None else policies
    config = config or {}
    findings: list[Finding] = []
    inputs = plan_resources(plan, "inputs")
    names = {r["urn"]: r["name"] for r in inputs}
    for policy in policies:
        if isinstance(policy, ResourceValidationPolicy):
            for res in inputs:
                for message in run_resource_policy(policy, res["type"], res["props"], res["name"], config.get(policy.name)):
                    findings.append(Finding(policy.name, res["urn"], res["name"], message))
        else:
            for urn, message in run_stack_policy(policy, plan_resources(plan, "outputs"), config.get(policy.name)):
                findings.append(Finding(policy.name, urn or "", names.get(urn, ""), message))
    return findings


# --------------------------------------------------------------------------
# pulumi-policy's analyzer servicer, driven with the engine's requests
# --------------------------------------------------------------------------


def _struct(value: Mapping) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(engine_value(dict(value)))
    return struct


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    urn: str
    message: str
    level: EnforcementLevel


_LEVELS = {
    proto.ADVISORY: EnforcementLevel.ADVISORY,
    proto.MANDATORY: EnforcementLevel.MANDATORY,
    proto.REMEDIATE: EnforcementLevel.REMEDIATE,
    proto.DISABLED: EnforcementLevel.DISABLED,
}


class Analyzer:
    def __init__(self, policies=None):
        self.servicer = _PolicyAnalyzerServicer(
            pack.PACK_NAME, "0.0.1", list(pack.POLICIES if policies is None else policies), pack.ENFORCEMENT_LEVEL
        )

    def info(self):
        return self.servicer.GetAnalyzerInfo(None, None)

    def configure(self, config: Mapping[str, Any]) -> None:
        """`config` as in a policy config file: name -> level, or -> {enforcementLevel, ...}."""
        request = proto.ConfigureAnalyzerRequest()
        levels = {v: k for k, v in _LEVELS.items()}
        for name, value in config.items():
            entry = {"enforcementLevel": value} if isinstance(value, str) else dict(value)
            level = EnforcementLevel(entry.pop("enforcementLevel", pack.ENFORCEMENT_LEVEL.value))
            request.policyConfig[name].enforcementLevel = levels[level]
            request.policyConfig[name].properties.update(entry)
        self.servicer.Configure(request, None)

    @staticmethod
    def _diagnostics(response) -> list[Diagnostic]:
        return [Diagnostic(d.policyName, d.urn, d.message, _LEVELS[d.enforcementLevel]) for d in response.diagnostics]

    def analyze(self, resource_type: str, props: Mapping, urn: str = "", name: str = "res") -> list[Diagnostic]:
        urn = urn or f"urn:pulumi:test::hardened-do::{resource_type}::{name}"
        request = proto.AnalyzeRequest(type=resource_type, properties=_struct(props), urn=urn, name=name)
        return self._diagnostics(self.servicer.Analyze(request, None))

    def analyze_stack(self, resources: Iterable[Mapping]) -> list[Diagnostic]:
        request = proto.AnalyzeStackRequest()
        for res in resources:
            entry = request.resources.add()
            entry.type = res["type"]
            entry.urn = res["urn"]
            entry.name = res["name"]
            entry.properties.CopyFrom(_struct(res.get("props") or {}))
            entry.parent = res.get("parent") or ""
            entry.dependencies.extend(res.get("dependencies") or [])
            for key, urns in (res.get("property_dependencies") or {}).items():
                entry.propertyDependencies[key].urns.extend(urns)
        return self._diagnostics(self.servicer.AnalyzeStack(request, None))

    def analyze_plan(self, plan) -> list[Diagnostic]:
        found: list[Diagnostic] = []
        for res in plan_resources(plan, "inputs"):
            found += self.analyze(res["type"], res["props"], res["urn"], res["name"])
        return found + self.analyze_stack(plan_resources(plan, "outputs"))
