"""`python -m offline plan --stack dev`: what the program would create.

Runs the Pulumi program under the SDK's mocks with a stack file's config and
prints the planned resources as a tree (like `pulumi preview`), the exports,
and each host's user-data size. No cloud account, CLI or provider plugin is
needed; provider-side checks of the inputs are therefore not performed.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .mock_engine import ROOT, config_from_stack_file, run_program


def _tree(plan) -> list[str]:
    children: dict[str, list] = {}
    for res in plan.resources:
        children.setdefault(res.parent, []).append(res)
    roots = [r for r in plan.resources if r.parent not in {x.urn for x in plan.resources}]
    lines: list[str] = []

    def walk(res, prefix: str, last: bool, depth: int) -> None:
        branch = "└─ " if last else "├─ "
        # digitalocean:index/droplet:Droplet -> digitalocean:index:Droplet, as the CLI shows it
        pkg, module, kind = res.type.split(":")
        label = f"{pkg}:{module.split('/')[0]}:{kind}"
        lines.append(f" +   {prefix + branch + label:<56} {res.name}")
        kids = children.get(res.urn, [])
        for i, kid in enumerate(kids):
            ext = "   " if last else "│  "
            walk(kid, prefix + ext, i == len(kids) - 1, depth + 1)

    for i, res in enumerate(roots):
        walk(res, "", i == len(roots) - 1, 1)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    plan_cmd = sub.add_parser("plan", help="print the planned resources")
    plan_cmd.add_argument("--stack", default="dev")
    plan_cmd.add_argument("--stack-file", help="path to a Pulumi.<stack>.yaml (default: Pulumi.<stack>.yaml)")
    plan_cmd.add_argument("--json", action="store_true", help="print the plan as JSON")
    args = parser.parse_args(argv)

    path = Path(args.stack_file) if args.stack_file else ROOT / f"Pulumi.{args.stack}.yaml"
    if not path.is_file():
        print(f"error: no stack file {path}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from hardened_do.components.config import ConfigError

    try:
        plan = run_program(config_from_stack_file(path), stack=args.stack)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the program raised: show its message, not a traceback
        cause = exc
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        print(f"error: {cause}", file=sys.stderr)
        return 1

    if args.json:
        print(plan.to_json())
        return 0
    print(f"Planning hardened-do/{args.stack} (offline: the program evaluated under Pulumi's mocks)\n")
    print(f"     {'Type':<56} Name")
    print(f" +   {'pulumi:pulumi:Stack':<56} hardened-do-{args.stack}")
    for line in _tree(plan):
        print(line)
    custom = [r for r in plan.resources if r.custom]
    print(f"\nResources:\n    + {len(plan.resources) + 1} to create ({len(custom)} cloud resources)\n")
    print("Outputs (computed values are stand-ins):")
    print("    " + json.dumps(plan.exports, indent=2, sort_keys=True).replace("\n", "\n    "))
    sizes = {
        r.inputs["name"]: len(r.inputs["userData"].encode())
        for r in plan.of_type("digitalocean:index/droplet:Droplet")
    }
    print("\nuser_data per host: " + ", ".join(f"{n} {s} B" for n, s in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
