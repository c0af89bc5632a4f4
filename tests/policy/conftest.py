"""Plans of the dev stack and of the insecure example, made once per session."""

from __future__ import annotations

import pytest

from offline.mock_engine import ROOT, config_from_stack_file, run_program

INSECURE = ROOT / "tests" / "policy" / "insecure"


@pytest.fixture(scope="session")
def dev_plan():
    return run_program(config_from_stack_file(ROOT / "Pulumi.dev.yaml"))


@pytest.fixture(scope="session")
def insecure_plan():
    return run_program(
        config_from_stack_file(INSECURE / "Pulumi.insecure.yaml"),
        stack="insecure",
        program=INSECURE / "__main__.py",
    )
