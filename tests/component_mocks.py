"""One component declared alone under Pulumi's mock monitor, for the component unit tests.

Pulumi's MockMonitor forgets what a reviewer of a component checks: which resource is
each child's parent, what each depends on, and what a component passes to
register_outputs. `WiringMonitor` keeps those, so a test can assert the component's
wiring as the engine would receive it, not as the Python objects look."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from tests.program_mocks import PROJECT, RecordingMocks, unwrap

MOCK_TOKEN = "enrollment-token-only-for-stdin"
"""The token the mock enrollment key returns: distinctive, so a test can look for it anywhere."""


@dataclass
class Registered:
    """One resource as the engine received it."""

    typ: str
    name: str
    urn: str
    parent: str
    dependencies: set[str]
    provider: str
    delete_before_replace: bool
    inputs: dict
    raw_inputs: dict
    former_parents: list = field(default_factory=list)
    """The parent URNs of its aliases (where it lived before a refactoring)."""


class ComponentMocks(RecordingMocks):
    """RecordingMocks, plus what a mesh member's provider would answer: its address (the
    pinned one, or one Netmaker would pick), its node id, and a recognisable token."""

    ASSIGNED_ADDRESS = "100.64.0.77"

    def new_resource(self, args):
        id_, outs = super().new_resource(args)
        if args.typ.endswith(":MeshMember"):
            outs = {**outs, "address": args.inputs.get("pinned_address") or self.ASSIGNED_ADDRESS, "node_id": f"node-of-{args.inputs['host_name']}"}
        if args.typ.endswith(":EnrollmentKey"):
            outs = {**outs, "token": MOCK_TOKEN}
        return id_, outs


class WiringMonitor(MockMonitor):
    """A MockMonitor that also keeps parents, dependencies, providers and registered outputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registered: dict[str, Registered] = {}
        self.outputs: dict[str, dict] = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = rpc.deserialize_properties(request.object)
            self.registered[response.urn] = Registered(
                request.type, request.name, response.urn, request.parent, set(request.dependencies),
                request.provider, request.deleteBeforeReplace, unwrap(raw), raw,
                [a.spec.parentUrn for a in request.aliases if a.HasField("spec")],
            )
        return response

    def RegisterResourceOutputs(self, request):
        self.outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


@dataclass
class Declaration:
    """Everything one program declared, and what its components registered as outputs."""

    resources: list[Registered]
    registered_outputs: dict[str, dict] = field(default_factory=dict)

    def one(self, typ: str) -> Registered:
        """The single resource of type `typ` (exact, or a suffix such as ':Container')."""
        found = [r for r in self.resources if r.typ == typ or r.typ.endswith(typ)]
        assert len(found) == 1, f"{typ}: {[r.name for r in found]}"
        return found[0]

    def named(self, name: str, typ: str = "") -> Registered:
        return next(r for r in self.resources if r.name == name and r.typ.endswith(typ))

    def of_type(self, suffix: str) -> list[Registered]:
        return [r for r in self.resources if r.typ.endswith(suffix)]

    def children(self, parent: Registered) -> list[Registered]:
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants(self, parent: Registered) -> list[Registered]:
        direct = self.children(parent)
        return direct + [d for child in direct for d in self.descendants(child)]

    def outputs_of(self, component: Registered) -> dict:
        """What the component passed to register_outputs, secrets unwrapped."""
        return unwrap(self.registered_outputs[component.urn])

    def secret_outputs_of(self, component: Registered) -> set[str]:
        return {k for k, v in self.registered_outputs[component.urn].items() if rpc.is_rpc_secret(v)}


def declare(program: Callable[[], None], stack: str = "unit") -> Declaration:
    """Run `program` (which declares resources) under the mock monitor, as Pulumi stack
    `stack`; nothing is created. Each call starts a new stack."""
    from pulumi.runtime.settings import ROOT
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    ROOT.set(None)
    mocks = ComponentMocks()
    monitor = WiringMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    _sync_await(run_pulumi_func(program))
    return Declaration(list(monitor.registered.values()), dict(monitor.outputs))


def is_secret(raw: Any) -> bool:
    return rpc.is_rpc_secret(raw)


def upload_secret(container: Registered, path: str) -> Optional[bool]:
    """Whether the upload of `path` reaches the engine secret (the list, the entry or its
    content may carry the marker); None when the container has no such upload."""
    uploads = container.raw_inputs.get("uploads") or []
    if is_secret(uploads):
        return True
    entry = next((u for u in uploads if unwrap(u)["file"] == path), None)
    if entry is None:
        return None
    return is_secret(entry) or is_secret(entry.get("content"))


def env_of(container: Registered) -> dict[str, str]:
    """The container's environment as a mapping (the engine receives KEY=VALUE strings)."""
    return dict(e.split("=", 1) for e in container.inputs.get("envs") or [])


def uploaded(container: Registered) -> dict[str, dict]:
    """The container's uploads by file path."""
    return {u["file"]: u for u in container.inputs.get("uploads") or []}


def attached(container: Registered) -> list[tuple[str, Optional[str]]]:
    """(network, address) of every network the container is attached to, in order."""
    return [(n["name"], n.get("ipv4Address")) for n in container.inputs.get("networksAdvanced") or []]


def label_values(container: Registered) -> dict[str, str]:
    return {label["label"]: label["value"] for label in container.inputs.get("labels") or []}
