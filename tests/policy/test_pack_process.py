"""The pack as the Pulumi CLI runs it: a separate Python process that serves
the analyzer gRPC interface, started as `python -u -m pulumi.policy
<engine-address> <pack-dir>` (what the CLI's Python policy host runs)."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from tests.policy.harness import POLICY_DIR, pack, rules


@pytest.fixture(scope="module")
def analyzer():
    process = subprocess.Popen(
        # The engine address is only used for logging, which these calls do not reach.
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICY_DIR)],
        cwd=POLICY_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = process.stdout.readline().decode().strip()
        assert line.isdigit(), f"the pack did not start: {line!r} {process.stderr.read1().decode() if not line else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_pack_describes_itself(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == pack.PACK_NAME
    assert [p.name for p in info.policies] == [p.name for p in pack.POLICIES]
    assert {p.enforcementLevel for p in info.policies} == {proto.MANDATORY}


def test_the_pack_analyzes_a_resource(analyzer):
    props = struct_pb2.Struct()
    props.update({"inboundRules": [{"protocol": "tcp", "portRange": "22", "sourceAddresses": ["::/0"]}]})
    request = proto.AnalyzeRequest(type=rules.FIREWALL, properties=props, urn="urn:pulumi:s::p::fw::fw", name="fw")
    (diagnostic,) = analyzer.Analyze(request, timeout=30).diagnostics
    assert diagnostic.policyName == "firewall-no-public-ssh"
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert "firewall 'fw' inboundRules[0] opens SSH" in diagnostic.message
