"""`python -m cloud_init render --stack dev --host web-1` (the render CLI).

Prints the exact user-data the Pulumi program sends for a host, from the stack
file alone: no cloud credentials, no Pulumi CLI. Reviewers use it to read and
lint what goes on a box.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..components.config import USER_DATA_BUDGET, ConfigError
from ..components.stack import load_stack_file
from .render import render_user_data

# The stack files of a checkout sit next to cloud_init/ (through the
# hardened_do/cloud_init link, two levels up); elsewhere use --stack-file.
PROJECT_DIR = Path(__file__).resolve().parent.parent


def _stack_file(args: argparse.Namespace) -> Path:
    if args.stack_file:
        return Path(args.stack_file)
    return PROJECT_DIR / f"Pulumi.{args.stack}.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloud_init", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="print a host's user-data")
    source = render.add_mutually_exclusive_group()
    source.add_argument("--stack", default="dev", help="stack name; reads Pulumi.<stack>.yaml (default: dev)")
    source.add_argument("--stack-file", help="path to a Pulumi.<stack>.yaml file")
    render.add_argument("--host", help="host name (default: every host, separated by a line)")
    render.add_argument("--list", action="store_true", help="list hosts with role and user-data size")
    args = parser.parse_args(argv)

    path = _stack_file(args)
    if not path.is_file():
        print(f"error: no stack file {path}", file=sys.stderr)
        return 2
    try:
        stack = load_stack_file(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.list:
        for host in stack.hosts:
            size = len(render_user_data(stack, host.name).encode())
            print(f"{host.name}\t{host.role}\t{size} bytes (budget {USER_DATA_BUDGET})")
        return 0
    names = [args.host] if args.host else [h.name for h in stack.hosts]
    for i, name in enumerate(names):
        try:
            text = render_user_data(stack, name)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
        if len(names) > 1:
            print(f"{'' if i == 0 else chr(10)}# ---- {name} ----")
        sys.stdout.write(text)
    return 0
