"""The edge firewall of every mesh member, as plain data from the model and the
iptables-restore text that applies it (images/netclient/edge-firewall loads it).

A member's public mesh address is closed by default: from outside the mesh range only
replies, ICMP echo and the member's `inbound` openings get in; the mesh's own traffic
(WireGuard, member to member, the HA agents' probes on 51821) comes from inside the range
and is never touched. A border router also filters the forward path into the mesh the
same way for every member, and drops spoofed sources both ways on its uplinks (BCP 38/84).

The same text runs in a lab container's namespace and, on real hosts, in the host's
(members run with host networking): one rule source. The chains only DROP or RETURN, so
what they let through still meets netclient's ACL chains, border-health's refusal and the
host's nftables table; a DROP in any of them is final. An uplink is named by its address
(`@uplink:<address>@`): Docker and the host decide the interface name, the applier looks
it up."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Union

from .bogons import BOGON_PREFIXES_V4
from .config import BorderRouter, MeshNode, StackConfig
from .scalars import PortRange

MESH_INTERFACE = "netmaker+"
"""netclient's interface (`netmaker`), as iptables matches a name prefix."""
PREFIX = "BGP4MESH"
JUMPS = ("INPUT", "FORWARD", "OUTPUT")
"""Built-in chains whose first rule jumps to BGP4MESH-<name> (when the plan has one)."""
RULES_PATH = "/etc/bgp4mesh/edge.rules"
"""Where a member container finds its rules."""


def uplink_token(address: IPv4Address) -> str:
    """The interface holding `address`, resolved when the rules are applied."""
    return f"@uplink:{address}@"


@dataclass(frozen=True)
class Uplink:
    address: IPv4Address
    """The router's own address on the link (an allowed source towards the upstream)."""
    link: IPv4Network
    """The peering subnet: the neighbor's own packets come from it."""


@dataclass(frozen=True)
class EdgePlan:
    """What one member enforces."""

    mesh_range: IPv4Network
    inbound: tuple[PortRange, ...]
    """This member's own openings."""
    router: bool = False
    own: tuple[IPv4Network, ...] = ()
    """Own IPv4 prefixes (a router: the only sources it sends upstream, never accepted from it)."""
    uplinks: tuple[Uplink, ...] = ()
    openings: tuple[tuple[IPv4Address, PortRange], ...] = ()
    """Every member's openings by address (a router filters the forward path with them)."""
    bogons: tuple[IPv4Network, ...] = ()
    """Sources dropped from an upstream (the stack's bogon set; empty with the filter off)."""
    exempt: tuple[IPv4Network, ...] = ()
    """Bogon sources let in anyway (a lab's test nets)."""
    services: tuple[Service, ...] = ()
    """What this member serves to a few sources only (exporters, the looking glass)."""


@dataclass(frozen=True)
class Service:
    """A port of this member that only `sources` may reach, on any of its addresses."""

    port: PortRange
    sources: tuple[IPv4Network, ...]
    name: str


def edge_plan(cfg: StackConfig, member: Union[BorderRouter, MeshNode], services: tuple[Service, ...] = ()) -> EdgePlan:
    """The plan of a node or a border router of `cfg`, serving `services`."""
    if isinstance(member, MeshNode):
        return EdgePlan(cfg.mesh.range, tuple(member.inbound), services=services)
    members = [(r.mesh_ip, r.inbound) for r in cfg.border_routers] + [(n.ip, n.inbound) for n in cfg.mesh.nodes]
    policy = cfg.policy
    return EdgePlan(
        mesh_range=cfg.mesh.range,
        inbound=tuple(member.inbound),
        router=True,
        own=tuple(p for p in cfg.prefixes if p.version == 4),
        uplinks=tuple(Uplink(u.local_address, u.link) for u in cfg.upstreams_of(member)),
        openings=tuple((address, rule) for address, rules in members if address is not None for rule in rules),
        bogons=BOGON_PREFIXES_V4 if policy.bogon_filter else (),
        exempt=tuple(p for p in policy.bogon_exempt_prefixes if p.version == 4),
        services=services,
    )


def _port(rule: PortRange) -> str:
    ports = str(rule.first) if rule.first == rule.last else f"{rule.first}:{rule.last}"
    return f"-p {rule.proto} -m {rule.proto} --dport {ports}"


def _drop(why: str) -> str:
    """A counted drop: `iptables -nvxL <chain>` shows its packets by this comment."""
    return f'-m comment --comment "bgp4mesh: {why}" -j DROP'


ECHO = "-p icmp -m icmp --icmp-type 8"
ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED"


def _member_in(plan: EdgePlan) -> list[str]:
    """INPUT: what reaches this member's own address from outside the mesh range, and its
    services, from their sources alone (mesh members included: nobody else)."""
    chain = f"{PREFIX}-INPUT"
    rules = [f"-A {chain} -i {uplink_token(u.address)} -j {PREFIX}-SPOOF-IN" for u in plan.uplinks]
    for service in plan.services:
        rules += [f"-A {chain} -s {src} {_port(service.port)} -j RETURN" for src in service.sources]
        rules.append(f"-A {chain} {_port(service.port)} {_drop(service.name + ' closed')}")
    rules += [f"-A {chain} -s {plan.mesh_range} -j RETURN", f"-A {chain} {ESTABLISHED} -j RETURN"]
    rules += [f"-A {chain} -i {MESH_INTERFACE} -j {PREFIX}-MEMBER", f"-A {chain} -d {plan.mesh_range} -j {PREFIX}-MEMBER"]
    member = f"{PREFIX}-MEMBER"
    rules += [f"-A {member} {ECHO} -j RETURN"] + [f"-A {member} {_port(r)} -j RETURN" for r in plan.inbound]
    return rules + [f"-A {member} {_drop('closed')}"]


def _spoofing(plan: EdgePlan) -> list[str]:
    """A router's uplinks: no own, mesh or bogon source in (the neighbor's link excepted),
    nothing but own prefixes and its link addresses out."""
    into, out = f"{PREFIX}-SPOOF-IN", f"{PREFIX}-SPOOF-OUT"
    rules = [f"-A {into} -s {u.link} -j RETURN" for u in plan.uplinks]
    rules += [f"-A {into} -s {p} {_drop('own source in')}" for p in plan.own]
    if not any(plan.mesh_range.subnet_of(p) for p in plan.own):
        rules.append(f"-A {into} -s {plan.mesh_range} {_drop('mesh source in')}")
    rules += [f"-A {into} -s {p} -j RETURN" for p in plan.exempt]
    rules += [f"-A {into} -s {b} {_drop('bogon source in')}" for b in plan.bogons]
    rules += [f"-A {out} -s {p} -j RETURN" for p in plan.own]
    rules += [f"-A {out} -s {u.address}/32 -j RETURN" for u in plan.uplinks]
    rules.append(f"-A {out} {_drop('spoofed source out')}")
    rules += [f"-A {PREFIX}-OUTPUT -o {uplink_token(u.address)} -j {out}" for u in plan.uplinks]
    return rules


def _forward(plan: EdgePlan) -> list[str]:
    """A router's forward path: anti-spoofing first, then replies, the mesh's own flows
    (relayed member to member, out of the mesh, towards the active gateway), what the
    members open; anything else that touches an uplink or the mesh is dropped. Docker's
    own forwarding on a real host (bridges) is left to the rules after this chain."""
    chain, opened = f"{PREFIX}-FORWARD", f"{PREFIX}-OPEN"
    rules = [f"-A {chain} -i {uplink_token(u.address)} -j {PREFIX}-SPOOF-IN" for u in plan.uplinks]
    rules += [f"-A {chain} -o {uplink_token(u.address)} -j {PREFIX}-SPOOF-OUT" for u in plan.uplinks]
    rules += [f"-A {chain} {ESTABLISHED} -j RETURN", f"-A {chain} -s {plan.mesh_range} -j RETURN"]
    rules += [f"-A {chain} -o {MESH_INTERFACE} -j {opened}", f"-A {chain} -d {plan.mesh_range} -j RETURN"]
    edges = [f"-i {MESH_INTERFACE}", f"-o {MESH_INTERFACE}"]
    edges += [f"{d} {uplink_token(u.address)}" for u in plan.uplinks for d in ("-i", "-o")]
    rules += [f"-A {chain} {e} {_drop('not an edge flow')}" for e in edges]
    rules += [f"-A {opened} -d {address}/32 {_port(r)} -j RETURN" for address, r in plan.openings]
    return rules + [f"-A {opened} {ECHO} -j RETURN", f"-A {opened} {_drop('closed')}"]


def chains(plan: EdgePlan) -> list[str]:
    """The chains a member's rules define, jumped-to ones first."""
    jumped = ["INPUT", "FORWARD", "OUTPUT"] if plan.router else ["INPUT"]
    own = ["MEMBER", "SPOOF-IN", "SPOOF-OUT", "OPEN"] if plan.router else ["MEMBER"]
    return [f"{PREFIX}-{c}" for c in jumped + own]


def render_edge_rules(plan: EdgePlan) -> str:
    """iptables-restore input (`--noflush`): each chain is declared, which empties it, then
    filled. The built-in chains are not touched here: the applier keeps a jump to
    BGP4MESH-<chain> first in each (netclient inserts its own rules at the top)."""
    lines = ["# bgp4mesh edge firewall: generated from the stack config (bgp4mesh/edge_rules.py)", "*filter"]
    lines += [f":{c} - [0:0]" for c in chains(plan)]
    lines += _member_in(plan)
    if plan.router:
        lines += _spoofing(plan) + _forward(plan)
    return "\n".join(lines + ["COMMIT", ""])
