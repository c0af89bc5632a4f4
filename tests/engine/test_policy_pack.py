"""The policy pack from a fresh clone: the CLI loads its PulumiPolicy.yaml, and
the virtualenv that file names exists after our set-up and runs the pack.

The CLI does not create a policy pack's virtualenv, and `pulumi preview
--policy-pack policy` waited forever without one. PulumiPolicy.yaml names
`.venv`; scripts/bootstrap-policy-venv (run by scripts/test and
scripts/preview) links it to a cached virtualenv. The pack itself cannot run
through the engine here (that needs the Python language host, which the CLI
built from its Go module lacks), so this starts it from that virtualenv the
way the language host does: `<venv>/bin/python -u -m pulumi.policy <engine>
<pack dir>`.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2

from tests.engine import engine

POLICY = engine.ROOT / "policy"
SETUP = engine.ROOT / "scripts" / "bootstrap-policy-venv"


def _venv_dir() -> str:
    doc = yaml.safe_load((POLICY / "PulumiPolicy.yaml").read_text())
    return doc["runtime"]["options"]["virtualenv"]


@pytest.fixture(scope="module")
def pack_python():
    venv = POLICY / _venv_dir()
    if not (venv / "bin" / "python").exists():
        pytest.skip(f"needs the policy pack's virtualenv {venv} (run scripts/bootstrap-policy-venv; scripts/test does)")
    return venv / "bin" / "python"


def test_the_pack_names_a_virtualenv_that_git_ignores():
    name = _venv_dir()
    assert name == ".venv"
    ignored = subprocess.run(["git", "check-ignore", "-q", f"policy/{name}"], cwd=engine.ROOT)
    assert ignored.returncode == 0, f"policy/{name} is not ignored by git"


def test_the_set_up_links_the_virtualenv_and_is_fast_the_second_time(pack_python):
    start = time.monotonic()
    done = subprocess.run([str(SETUP)], capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert (POLICY / ".venv").resolve() == (POLICY / ".venv").resolve(strict=True)
    assert (POLICY / ".venv" / "bin" / "python").exists()
    assert elapsed < 10, f"a second run took {elapsed:.1f} s"


def test_the_virtualenv_runs_the_pack_as_the_language_host_would(pack_python):
    process = subprocess.Popen(
        [str(pack_python), "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICY)],
        cwd=POLICY, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        line = process.stdout.readline().decode().strip()
        assert line.isdigit(), f"the pack did not start from {pack_python}: {process.stderr.read1().decode()}"
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        from pulumi.runtime.proto import analyzer_pb2_grpc

        info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        channel.close()
        assert info.name == "hardened-do-baseline"
        assert len(info.policies) >= 9
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.engine
def test_the_cli_loads_the_pack_file(fresh_state, tmp_path):
    # The engine reads PulumiPolicy.yaml (schema, runtime, required Pulumi
    # version) before it asks for the pack's language host; here the run
    # stops at the missing host, after the file was accepted.
    pack = tmp_path / "policy"
    shutil.copytree(POLICY, pack, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    work = engine.stage(engine.ROOT, tmp_path / "project", stack_file=engine.ROOT / "Pulumi.dev.yaml")
    result, output, error = engine.preview(work, "dev", fresh_state, lambda: None, policy_packs=[str(pack)])
    assert error is not None
    print(output)
    assert "policy project" not in output, output
    assert "no language plugin 'pulumi-language-python' found" in output, output

    # The control: a broken file is reported as such.
    (pack / "PulumiPolicy.yaml").write_text("runtime: [python\n")
    result, output, error = engine.preview(work, "dev", fresh_state, lambda: None, policy_packs=[str(pack)])
    assert error is not None
    assert "failed to load Pulumi policy project" in output and "invalid YAML" in output, output
