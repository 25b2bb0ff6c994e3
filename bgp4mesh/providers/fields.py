"""A provider's fields, declared once.

Each provider module lists its resource's own properties (besides ``kind``, ``connection``
and ``provider_version``, which every resource has) in one :class:`Fields` table. The Args
dataclass, the properties the resource registers, its secret outputs, the defaults ``check``
fills in and the lists ``diff`` compares are all read from that table, so adding or
changing a field touches one line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

INPUT = "input"
OUTPUT = "output"  # computed by the provider
SECRET = "secret"  # computed by the provider, and a credential: kept encrypted in the state


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of an input the caller must give."""


@dataclass(frozen=True)
class Field:
    """One property of a resource."""

    name: str
    kind: str  # INPUT, OUTPUT or SECRET
    replaces: bool = False
    """Input: Netmaker cannot change it in place, so a change replaces the object."""
    drift: bool = False
    """Output: a live value other than the state's means the object needs an update."""
    default: Any = REQUIRED
    """Input: the Args default; when not None, also what ``check`` fills in for a missing value."""
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (INPUT, OUTPUT, SECRET):
            raise ValueError(f"field {self.name}: kind must be input, output or secret, got {self.kind!r}")
        if (self.replaces and self.kind != INPUT) or (self.drift and self.kind == INPUT):
            raise ValueError(f"field {self.name}: only an input replaces, only an output drifts")


class Fields:
    """A resource's field table and the name lists derived from it, in declaration order."""

    def __init__(self, *fields: Field) -> None:
        self.fields = fields
        self.inputs = tuple(f.name for f in fields if f.kind == INPUT)
        self.replace_on = tuple(f.name for f in fields if f.replaces)
        self.outputs = tuple(f.name for f in fields if f.kind != INPUT)
        self.drift = tuple(f.name for f in fields if f.drift)
        self.secret_outputs = [f.name for f in fields if f.kind == SECRET] + ["connection"]
        # None means "unset" to the engine (it drops None properties), so only a real value is filled in
        self.defaults = {f.name: f.default for f in fields if f.default is not REQUIRED and f.default is not None}

    def args_class(self, name: str, provider_version: str, module: str) -> type:
        """The resource's Args dataclass: ``connection``, the inputs, ``provider_version``."""
        spec: list[Any] = [("connection", "NetmakerConnection | dict[str, Any] | pulumi.Input[dict[str, Any]]")]
        spec += [(f.name, "pulumi.Input[Any]", _default(f.default)) for f in self.fields if f.kind == INPUT]
        spec.append(("provider_version", str, _default(provider_version)))
        docs = [f"``{f.name}``: {f.doc}" for f in self.fields if f.kind == INPUT and f.doc]
        doc = f"Inputs of the resource (see ``FIELDS`` in {module}). " + " ".join(docs)
        return dataclasses.make_dataclass(name, spec, namespace={"__module__": module, "__doc__": doc.strip()})


def _default(value: Any) -> Any:
    return dataclasses.field(default=dataclasses.MISSING if value is REQUIRED else value)
