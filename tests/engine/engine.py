"""Helpers for running the real Pulumi CLI and engine on copies of our files."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "hardened-do-engine-tests"


def cli_env(pulumi_root: Path, home: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(
        PATH=f"{pulumi_root / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PULUMI_HOME=str(home),
        PULUMI_BACKEND_URL=state.as_uri(),
        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="true",
        PULUMI_ERROR_OUTPUT_STRING="true",
        NO_COLOR="1",
    )
    return env


def shipped(pattern: str) -> list[Path]:
    """Files of the repository whose name matches a glob (tracked or not ignored)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout
        files = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        files = [p for p in ROOT.rglob("*") if not any(s.startswith(".") for s in p.relative_to(ROOT).parts)]
    return sorted({p for p in files if fnmatch.fnmatch(p.name, pattern) and p.is_file()})


def project_dirs() -> list[Path]:
    return [p.parent for p in shipped("Pulumi.yaml")]


def stack_files(project_dir: Path) -> list[Path]:
    return sorted(p for p in project_dir.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml")


def stack_name(stack_file: Path) -> str:
    return stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")


def stage(project_dir: Path, dest: Path, *, stack_file: Path | None = None) -> Path:
    """Copy a project's Pulumi.yaml (and one stack file) to dest; return dest."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(project_dir / "Pulumi.yaml", dest / "Pulumi.yaml")
    if stack_file is not None:
        shutil.copy2(stack_file, dest / stack_file.name)
    return dest


def workspace(work_dir: Path, env: dict[str, str], program: Callable[[], None]):
    """An Automation API workspace on work_dir's Pulumi.yaml running `program` inline."""
    from pulumi import automation as auto

    root = Path(env["PATH"].split(os.pathsep, 1)[0]).parent
    return auto.LocalWorkspace(
        work_dir=str(work_dir),
        program=program,
        pulumi_home=env["PULUMI_HOME"],
        env_vars={k: v for k, v in env.items() if k.startswith("PULUMI_") or k == "NO_COLOR"},
        pulumi_command=auto.PulumiCommand(root=str(root), skip_version_check=True),
    )


def preview(work_dir: Path, stack: str, env: dict[str, str], program: Callable[[], None], **kwargs):
    """Create or select `stack` and preview it with the inline program.

    Returns (PreviewResult or None, engine output text, CommandError or None).
    """
    from pulumi import automation as auto

    ws = workspace(work_dir, env, program)
    lines: list[str] = []
    st = auto.Stack.create_or_select(stack, ws)
    try:
        result = st.preview(on_output=lines.append, color="never", **kwargs)
        return result, "\n".join(lines), None
    except auto.errors.CommandError as exc:
        return None, "\n".join(lines) + "\n" + str(exc), exc
