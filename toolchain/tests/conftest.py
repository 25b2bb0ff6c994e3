"""Shared fixtures: start a stand-in provider plugin and talk to it over gRPC, as the engine does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

TOOLCHAIN = Path(__file__).resolve().parent.parent
ROOT = TOOLCHAIN.parent
sys.path.insert(0, str(TOOLCHAIN / "providers"))

from standin.base import marshal, unmarshal  # noqa: E402

STACK_URN = "urn:pulumi:test::proj::"


def urn(token: str, name: str) -> str:
    return f"urn:pulumi:test::proj::{token}::{name}"


class Plugin:
    """A running stand-in plugin plus convenience wrappers around its RPCs."""

    def __init__(self, name: str):
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, str(TOOLCHAIN / "providers" / "run.py"), name, "127.0.0.1:1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PULUMI_STANDIN_DEBUG": "1"},
        )
        port = self.proc.stdout.readline().strip()
        assert port.isdigit(), f"plugin printed {port!r}; stderr: {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.stub.Configure(provider_pb2.ConfigureRequest(acceptSecrets=True, acceptResources=True))

    def close(self) -> None:
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    # -- wrappers: plain dicts in, (plain dict, secret keys) out
    def check(self, u: str, news: dict, olds: dict | None = None, secrets: set = frozenset()):
        r = self.stub.Check(provider_pb2.CheckRequest(urn=u, news=marshal(news, secrets),
                                                      olds=marshal(olds or {}), randomSeed=b"seed"))
        return unmarshal(r.inputs)[0], list(r.failures)

    def create(self, u: str, inputs: dict, preview: bool = False, secrets: set = frozenset()):
        r = self.stub.Create(provider_pb2.CreateRequest(urn=u, properties=marshal(inputs, secrets), preview=preview))
        props, sec = unmarshal(r.properties)
        return r.id, props, sec

    def diff(self, u: str, rid: str, olds: dict, news: dict, old_inputs: dict | None = None):
        req = provider_pb2.DiffRequest(urn=u, id=rid, olds=marshal(olds), news=marshal(news))
        if old_inputs is not None:
            req.old_inputs.CopyFrom(marshal(old_inputs))
        return self.stub.Diff(req)

    def update(self, u: str, rid: str, olds: dict, news: dict, preview: bool = False):
        r = self.stub.Update(provider_pb2.UpdateRequest(urn=u, id=rid, olds=marshal(olds), news=marshal(news),
                                                        preview=preview))
        return unmarshal(r.properties)

    def delete(self, u: str, rid: str, state: dict) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(urn=u, id=rid, properties=marshal(state)))


@pytest.fixture(scope="module")
def plugin(request):
    p = Plugin(request.module.PLUGIN)
    yield p
    p.close()
