"""Recording mocks for the unit tier: the program runs under Pulumi's mock monitor,
every resource is recorded with its inputs, nothing is created."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from harness.live import run_program, unwrap
from bgp4mesh.stack import raw_from_file


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict
    raw_inputs: dict


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    resources: list[Recorded] = field(default_factory=list)

    def new_resource(self, args):
        self.resources.append(Recorded(args.typ, args.name, unwrap(args.inputs), args.inputs))
        outs = dict(args.inputs)
        if args.typ == "docker:index/container:Container":
            outs["networkDatas"] = [
                {"networkName": n["name"], "ipAddress": n.get("ipv4Address", "")} for n in args.inputs.get("networksAdvanced") or []
            ]
        if args.typ.startswith("random:index/random"):
            outs["result"] = "x" * int(args.inputs.get("length", 16))
        if args.typ == "tls:index/privateKey:PrivateKey":
            outs["privateKeyPem"] = "KEY"
        if args.typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
            outs["certPem"] = "CERT"
        if args.typ == "tls:index/certRequest:CertRequest":
            outs["certRequestPem"] = "CSR"
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outs["imageId"] = f"sha256:id-of-{args.inputs['name']}"
        if args.typ in ("command:local:Command", "command:remote:Command"):
            outs["stdout"] = ""
        if args.typ.startswith("pulumi-python:dynamic"):
            outs = {**outs, "token": "TOKEN", "value": "VALUE", "id": f"{args.name}-id"}
        return f"{args.name}-id", outs

    def call(self, args):
        return {}, None

    def of_type(self, suffix: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ.endswith(suffix)]

    def named(self, name: str) -> Recorded:
        return next(r for r in self.resources if r.name == name)


def run_stack(stack: str, raw: dict | None = None, secret_keys: set[str] = frozenset(), observe=None) -> tuple[RecordingMocks, dict, set]:
    mocks = RecordingMocks()
    outputs, secret = run_program(stack, mocks, raw if raw is not None else raw_from_file(stack)[0], secret_keys=secret_keys, observe=observe)
    return mocks, outputs, secret


def with_operator_key(raw: dict, key_file: str) -> dict:
    """`raw` with every remote host's ssh.private_key_file set to `key_file` (a test key:
    the program reads the operator's key, and the shipped stacks name ~/.ssh's)."""
    hosts = [dict(h, ssh=dict(h["ssh"], private_key_file=key_file)) if "ssh" in h else h for h in raw["hosts"]]
    return {**raw, "hosts": hosts}
