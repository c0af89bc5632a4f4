"""A rejected config shows in `pulumi preview` as its message alone.

ConfigError is a `pulumi.RunError`, which Pulumi's Python SDK reports without
a traceback (the language host does the same for a program it runs). Proven
through the real engine with an Automation API inline program that calls the
program's real loader on a bad dev stack.
"""

from __future__ import annotations

import pytest
import yaml

from tests.engine import engine

pytestmark = pytest.mark.engine


def _load_program():
    from hardened_do.components.stack import load_from_pulumi

    load_from_pulumi()


def _bad_dev(tmp_path):
    work = engine.stage(engine.ROOT, tmp_path / "project")
    doc = yaml.safe_load((engine.ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["hardened-do:hosts"].append({"name": "web-3", "role": "no-such-role"})
    (work / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return work


def test_a_rejected_config_is_reported_without_a_traceback(fresh_state, tmp_path):
    work = _bad_dev(tmp_path)
    result, output, error = engine.preview(work, "dev", fresh_state, _load_program)
    assert error is not None, "the preview of a bad config succeeded"
    assert "stack config rejected" in output
    assert "no-such-role" in output
    assert "nothing was created" in output
    assert "Traceback" not in output, output
    assert "inline source runtime error" not in output, output
    assert "ConfigError" not in output, output


def test_any_other_exception_would_show_a_traceback(fresh_state, tmp_path):
    # The control: the same engine shows a traceback for a plain exception,
    # so the assertions above can fail.
    def program():
        raise ValueError("stack config rejected (control)")

    work = engine.stage(engine.ROOT, tmp_path / "project", stack_file=engine.ROOT / "Pulumi.dev.yaml")
    result, output, error = engine.preview(work, "dev", fresh_state, program)
    assert error is not None
    assert "Traceback" in output
