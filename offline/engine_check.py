"""The real Pulumi engine's verdict on a stack's config, with no plugin at all.

    python -m offline.engine_check --stack dev [--pulumi DIR]

Runs `pulumi preview` of an Automation API inline program on copies of
`Pulumi.yaml` and `Pulumi.<stack>.yaml` (temporary PULUMI_HOME and local state
backend, so nothing of this machine or repository is touched): the CLI loads
the project file and checks the stack's config against the declared types,
then the engine hands the config to the program's own loader
(`hardened_do.components.stack.load_from_pulumi`), which validates it and renders every
host's user-data, as `__main__.py` does before registering anything. No
language host and no provider plugin is needed, so this runs where the real
preview cannot (see scripts/pulumi-toolchain).

Exit 0 with one line when the config is accepted; exit 1 with the engine's
message (never a traceback) when it is not; exit 3 when there is no CLI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _program() -> None:
    import pulumi

    from hardened_do.cloud_init.render import render_user_data
    from hardened_do.components.stack import load_from_pulumi

    stack = load_from_pulumi()
    sizes = {h.name: len(render_user_data(stack, h.name).encode()) for h in stack.hosts}
    pulumi.export("user_data_bytes", sizes)


def check(stack: str, pulumi_bin_dir: Path, project_dir: Path = ROOT) -> tuple[bool, str]:
    """(accepted, message) for `Pulumi.<stack>.yaml` in project_dir."""
    from pulumi import automation as auto

    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        return False, f"no stack file {stack_file}"
    with tempfile.TemporaryDirectory(prefix="hardened-do-engine-") as tmp:
        work, home, state = Path(tmp, "project"), Path(tmp, "home"), Path(tmp, "state")
        for d in (work, home, state):
            d.mkdir()
        shutil.copy2(project_dir / "Pulumi.yaml", work / "Pulumi.yaml")
        shutil.copy2(stack_file, work / stack_file.name)
        env = {
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": state.as_uri(),
            # The stack file's own secrets provider: the local dev default
            # unless the caller has a passphrase set (scripts/preview's rule).
            "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "hardened-do-local-dev"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "NO_COLOR": "1",
        }
        ws = auto.LocalWorkspace(
            work_dir=str(work),
            program=_program,
            pulumi_home=str(home),
            env_vars=env,
            pulumi_command=auto.PulumiCommand(root=str(pulumi_bin_dir.parent), skip_version_check=True),
        )
        lines: list[str] = []
        try:
            st = auto.Stack.create_or_select(stack, ws)
            st.preview(on_output=lines.append, color="never")
        except auto.errors.CommandError as exc:
            return False, _errors(str(exc)) or str(exc)
    return True, f"the Pulumi CLI accepted Pulumi.yaml and {stack_file.name}, and our loader the config it passed"


def _errors(text: str) -> str:
    """The engine's `error:` lines and what they continue with, once each."""
    out: list[str] = []
    keep = False
    for line in text.splitlines():
        stripped = line.strip().removeprefix("stderr: ").removeprefix("stdout: ")
        if stripped.startswith("error:"):
            keep = not stripped.startswith("error: an unhandled error occurred")
            if keep and stripped not in out:
                out.append(stripped)
            continue
        if keep and line.startswith((" ", "\t")) and stripped:
            if stripped not in out:
                out.append(stripped if not stripped.startswith("- ") else "  " + stripped)
            continue
        keep = False
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.engine_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--pulumi", type=Path, help="directory holding the `pulumi` binary (default: PATH)")
    args = parser.parse_args(argv)
    bindir = args.pulumi
    if bindir is None:
        found = shutil.which("pulumi")
        if not found:
            print("engine-check: no Pulumi CLI (scripts/pulumi-cli builds one)", file=sys.stderr)
            return 3
        bindir = Path(found).parent
    ok, message = check(args.stack, bindir)
    print(f"engine-check: {message}", file=sys.stderr if not ok else sys.stdout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
