"""Start the provider plugin the way Pulumi's Python language host does and
talk to it over gRPC, as the engine would.

The language host runs `python <plugin directory> <engine address>`; the
plugin prints the port it listens on (loopback) and serves the
ResourceProvider protocol. GetSchema and GetPluginInfo need no engine, so a
placeholder engine address that is never dialled is enough.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Iterator

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

# A discard-port address: nothing here makes the plugin dial it.
UNUSED_ENGINE = "127.0.0.1:9"


@contextlib.contextmanager
def running_plugin(python: Path | str, plugin_dir: Path, env: dict | None = None) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    proc = subprocess.Popen(
        [str(python), str(plugin_dir), UNUSED_ENGINE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/", env=env,
    )
    try:
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            proc.kill()
            raise AssertionError(f"plugin did not print a port: {port!r}\n{proc.stderr.read()}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def served_schema(stub: provider_pb2_grpc.ResourceProviderStub) -> dict:
    return json.loads(stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=30).schema)


def served_version(stub: provider_pb2_grpc.ResourceProviderStub) -> str:
    return stub.GetPluginInfo(empty_pb2.Empty(), timeout=30).version
