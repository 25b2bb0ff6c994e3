"""Recording mocks for the unit tier: the program runs under Pulumi's mock monitor,
every resource is recorded with its inputs, nothing is created."""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
from pulumi.runtime import rpc

from bgp4mesh.stack import NAMESPACE, PROJECT_DIR, raw_from_file

PROJECT = "bgp4mesh"


def unwrap(value: Any) -> Any:
    """Mock-monitor inputs carry secrets wrapped; assertions want the plain value."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def run_program(
    stack: str,
    mocks: pulumi.runtime.Mocks,
    raw: dict[str, Any],
    project_dir: Path = PROJECT_DIR,
    secret_keys: set[str] = frozenset(),
    observe: Optional[Callable[[pulumi.ResourceTransformationArgs], None]] = None,
) -> tuple[dict, set]:
    """Run __main__.py under `mocks` with `raw` as the stack's bgp4mesh:* config (the
    `secret_keys` among them held as secret, as the engine does for `--secret`); return
    the stack outputs and which of them are secret. `observe` sees every resource's
    type, name and options as declared."""
    from pulumi.runtime.settings import ROOT
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_all_config(
        {f"{NAMESPACE}:{k}": json.dumps(v) for k, v in raw.items()}, [f"{NAMESPACE}:{k}" for k in secret_keys]
    )
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))

    def program() -> None:
        if observe is not None:
            pulumi.runtime.register_stack_transformation(lambda args: observe(args))
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    _sync_await(run_pulumi_func(program))
    return _sync_await(_resolve_outputs())


async def _resolve_outputs() -> tuple[dict[str, Any], set[str]]:
    from pulumi.runtime.settings import get_root_resource

    root = get_root_resource()
    values, secret = {}, set()
    for key, value in (getattr(root, "outputs", {}) or {}).items():
        out = pulumi.Output.from_input(value)
        values[key] = await out.future()
        if await out.is_secret():
            secret.add(key)
    return values, secret


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
