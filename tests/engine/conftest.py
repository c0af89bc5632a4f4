"""The real Pulumi CLI (built by scripts/pulumi-cli) on a local file backend.

Every test works on copies of the project files in a temporary directory:
creating a stack with the passphrase secrets provider writes an
`encryptionsalt` into the stack file, and the repository must stay untouched.
PULUMI_HOME is temporary too, so no plugin or credential of the machine is
used; automatic plugin download is off.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.engine import engine


@pytest.fixture(scope="session")
def pulumi_root() -> Path:
    """The directory whose bin/ holds the built `pulumi` (skips if not built)."""
    done = subprocess.run(
        [str(engine.ROOT / "scripts" / "pulumi-cli"), "--check"], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(
            "needs the Pulumi CLI built from its Go module: run scripts/pulumi-cli "
            f"(scripts/test does) [{done.stderr.strip()}]"
        )
    return Path(done.stdout.strip()).parent


@pytest.fixture(scope="session")
def pulumi_env(pulumi_root, tmp_path_factory) -> dict[str, str]:
    """Environment for CLI runs: temporary home and state, no plugin download."""
    base = tmp_path_factory.mktemp("pulumi")
    (base / "home").mkdir()
    (base / "state").mkdir()
    return engine.cli_env(pulumi_root, base / "home", base / "state")


@pytest.fixture
def cli(fresh_state):
    """Run the CLI on this test's state: cli(args, cwd) -> CompletedProcess (text)."""

    def run(args: list[str], cwd: Path, *, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [shutil.which("pulumi", path=fresh_state["PATH"]), *args, "--non-interactive"],
            cwd=cwd,
            env=fresh_state,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def fresh_state(pulumi_env, tmp_path) -> dict[str, str]:
    """A per-test state backend (stacks of the same name do not collide)."""
    state = tmp_path / "state"
    state.mkdir()
    env = dict(pulumi_env)
    env["PULUMI_BACKEND_URL"] = state.as_uri()
    return env
