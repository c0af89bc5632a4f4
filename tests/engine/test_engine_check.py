"""`python -m offline.engine_check` (what scripts/preview runs when the CLI is
there but the language host and provider plugins are not)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from offline import engine_check
from tests.engine import engine

pytestmark = pytest.mark.engine


def test_the_dev_stack_is_accepted(pulumi_root):
    done = subprocess.run(
        [sys.executable, "-m", "offline.engine_check", "--stack", "dev", "--pulumi", str(pulumi_root / "bin")],
        cwd=engine.ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "accepted Pulumi.yaml and Pulumi.dev.yaml" in done.stdout


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        # Refused by the CLI's type check, before the program runs.
        ("hardened-do:vpc_cidr", [10, 10], "configuration key 'vpc_cidr' must be of type 'string'"),
        # Refused by our loader inside the engine.
        ("hardened-do:admin_user", "root", "hardened-do:admin_user"),
    ],
)
def test_a_bad_stack_is_refused_with_the_message_alone(pulumi_root, tmp_path, key, value, expected):
    project = engine.stage(engine.ROOT, tmp_path / "project")
    doc = yaml.safe_load((engine.ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"][key] = value
    (project / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    ok, message = engine_check.check("dev", pulumi_root / "bin", project)
    assert not ok
    assert expected in message, message
    assert "Traceback" not in message and "code: 1" not in message, message
