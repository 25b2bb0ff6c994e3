"""The contract between bgp4mesh and the HA agent: the JSON config bgp4mesh uploads and the
state files the agent writes for `verify`. One definition for both sides: the image runs
this file, and bgp4mesh loads it by path (bgp4mesh/agent_config.py). Stdlib only."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

CONFIG_PATH = "/etc/bgp4mesh/agent.json"
"""Uploaded by bgp4mesh; its presence makes the image start the agent (and BIRD drained)."""
ROUTER_STATE = "/run/bgp4mesh/border-health"
NODE_STATE = "/run/bgp4mesh/egress-failover"
MAINTENANCE_FLAG = "/var/lib/bgp4mesh/maintenance"
"""The drain switch, on the container's own disk: survives stop/start."""

TABLE = "44"
"""Inbound for the mesh, forwarded to the active gateway."""
RULE_PREF = 1000
"""border-health's rules: RULE_PREF to RULE_PREF + 3, per family."""
DEFAULT6_TABLE = "112"
"""IPv6's default into the mesh on an internet gateway's client (netclient's IPv4 one: 111)."""
DEFAULT6_RULES = ((2600, "main", ("suppress_prefixlength", "0")), (3100, DEFAULT6_TABLE, ()))
"""The main table's specific routes first, then the mesh's default (netclient's order for
IPv4, at prefs of their own)."""
HOST_ROUTING = tuple((v, p) for v in (4, 6) for p in range(RULE_PREF, RULE_PREF + 4)) + tuple((6, p) for p, _t, _e in DEFAULT6_RULES)
"""(IP version, rule preference) of every rule the agent makes: with host networking (real
hosts) they are the host's, and bgp4mesh removes them when the stack is destroyed."""
HOST_TABLES = ((4, TABLE), (6, TABLE), (6, DEFAULT6_TABLE))

ROUTER_FIELDS = ("maintenance", "mesh", "upstream", "port", "available", "announce", "active")
NODE_FIELDS = ("active",)
STATE_FIELDS = {ROUTER_STATE: ROUTER_FIELDS, NODE_STATE: NODE_FIELDS}


@dataclass(frozen=True)
class Probe:
    """How gateways and mesh members are probed: TCP to netclient's port, as Netmaker Pro does."""

    port: int = 51821
    interval_ms: int = 200
    timeout_ms: int = 200
    down_after: int = 2
    """Missed probes in a row before a member is given up."""
    up_after: int = 3
    """Answered probes in a row before a member is taken (again)."""


@dataclass(frozen=True)
class Gateway:
    mesh: str
    """The router's mesh address (what nodes probe)."""
    ibgp: str
    """Its iBGP address (where the other routers forward inbound for the mesh)."""
    ibgp6: str = ""
    """Its IPv6 iBGP address, where inbound for mesh_range6 goes (a v6 mesh)."""


@dataclass(frozen=True)
class Router:
    """A border router: what it announces and whether it serves follow what it can do."""

    bgp_protocols: tuple[str, ...]
    """BIRD protocols of its eBGP sessions: one Established is an upstream."""
    gateways: tuple[Gateway, ...] = ()
    """Every router in the nodes' priority order; empty with one router."""
    self_ip: str = ""
    """This router's mesh address (with gateways)."""
    mesh_range: str = ""
    """The mesh's range (with gateways): inbound for it goes to the active gateway."""
    mesh_range6: str = ""
    """The mesh's IPv6 range (with gateways and a v6 mesh): likewise, by each ibgp6."""


@dataclass(frozen=True)
class Node:
    """A mesh node: keeps its egress ranges on the first gateway that serves."""

    gateways: tuple[str, ...]
    """The routers' mesh addresses, in priority order (empty: no egress failover)."""
    ranges: tuple[str, ...]
    internet6: bool = False
    """A client of the internet gateway in a mesh with range6: netclient gives it the
    gateway's ::/0 but routes IPv4's default alone, so the agent keeps IPv6's into the mesh."""


@dataclass(frozen=True)
class AgentConfig:
    probe: Probe = field(default_factory=Probe)
    router: Optional[Router] = None
    node: Optional[Node] = None

    def __post_init__(self) -> None:
        if (self.router is None) == (self.node is None):
            raise ValueError("agent config: exactly one of router and node")
        if self.router and len(self.router.gateways) > 1 and not (self.router.self_ip and self.router.mesh_range):
            raise ValueError("agent config: router.self_ip and router.mesh_range are needed with several gateways")
        if self.router and self.router.mesh_range6 and not all(g.ibgp6 for g in self.router.gateways):
            raise ValueError("agent config: router.mesh_range6 needs every gateway's ibgp6")
        if self.node and len(self.node.gateways) < 2 and not (self.node.internet6 and not self.node.gateways):
            raise ValueError("agent config: node.gateways needs several gateways (or none, with internet6)")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> "AgentConfig":
        raw = json.loads(text)
        router, node = raw.get("router"), raw.get("node")
        return AgentConfig(
            probe=_typed(Probe, raw.get("probe") or {}, "probe"),
            router=_router(router) if router else None,
            node=_typed(Node, node, "node") if node else None,
        )


def _router(raw: dict[str, Any]) -> Router:
    gateways = tuple(_typed(Gateway, g, f"router.gateways[{i}]") for i, g in enumerate(raw.get("gateways") or ()))
    return _typed(Router, {**raw, "gateways": gateways}, "router")


def _typed(cls, raw: dict[str, Any], where: str):
    """`cls` from `raw`, refusing unknown keys and values of the wrong type by key path."""
    if not isinstance(raw, dict):
        raise ValueError(f"agent config: {where} must be an object")
    known = cls.__dataclass_fields__
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"agent config: {where} has unknown keys {unknown}")
    values = {}
    for name, value in raw.items():
        if isinstance(value, list):
            value = tuple(value)
        kind = known[name].type
        if kind in ("int", "str", "bool") and type(value).__name__ != kind:
            raise ValueError(f"agent config: {where}.{name} must be {kind}, not {value!r}")
        if kind.startswith("tuple[str") and not all(isinstance(v, str) for v in value):
            raise ValueError(f"agent config: {where}.{name} must be a list of strings")
        values[name] = value
    return cls(**values)


def encode_state(fields: tuple[str, ...], values: dict[str, Any]) -> str:
    """The state file: key=value lines in schema order, booleans as 1/0 (shell-readable)."""
    shown = {k: str(int(v)) if isinstance(v, bool) else str(v) for k, v in values.items()}
    return "".join(f"{k}={shown[k]}\n" for k in fields)


def decode_state(path: str, text: str) -> dict[str, str]:
    """A state file read back (extra lines such as `age=` kept); every field of its schema
    must be there."""
    state = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    missing = [k for k in STATE_FIELDS.get(path, ()) if k not in state]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    return state
