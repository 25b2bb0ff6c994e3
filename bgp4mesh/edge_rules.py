"""The edge firewall of every mesh member, as plain data from the model and the
iptables-restore texts that apply it (images/netclient/edge-firewall loads them): one for
IPv4 and, where the member has anything IPv6, one for IPv6 with the same chains.

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
it up.

IPv6 differs where the protocol does. Neighbour discovery (IPv6's ARP) and multicast
listener queries come from link-local or, during duplicate address detection, unspecified
sources, which are bogons: INPUT accepts them before anything can drop them, and a router
may send from those sources out of an uplink. ICMPv6 errors get in so that path MTU
discovery works (IPv6 routers never fragment); redirects are dropped. A service's sources
are of one family, so its port is closed to everyone in the other. And members' IPv6
addresses are not known when the plan is made (Netmaker assigns them from mesh.range6):
see EdgePlan.opened6."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import NamedTuple, Optional, Union

from .bogons import BOGON_PREFIXES_V4, BOGON_PREFIXES_V6
from .config import BorderRouter, MeshNode, StackConfig
from .scalars import PortRange

Address = Union[IPv4Address, IPv6Address]
Network = Union[IPv4Network, IPv6Network]

MESH_INTERFACE = "netmaker+"
"""netclient's interface (`netmaker`), as iptables matches a name prefix."""
PREFIX = "BGP4MESH"
JUMPS = ("INPUT", "FORWARD", "OUTPUT")
"""Built-in chains whose first rule jumps to BGP4MESH-<name> (when the plan has one)."""
RULES_PATH = "/etc/bgp4mesh/edge.rules"
"""Where a member container finds its IPv4 rules."""
RULES6_PATH = "/etc/bgp4mesh/edge6.rules"
"""Where it finds its IPv6 rules (ip6tables-restore), uploaded only when rendered."""


def uplink_token(address: Address) -> str:
    """The interface holding `address`, resolved when the rules are applied."""
    return f"@uplink:{address}@"


@dataclass(frozen=True)
class Uplink:
    address: IPv4Address
    """The router's own address on the link (an allowed source towards the upstream)."""
    link: IPv4Network
    """The peering subnet: the neighbor's own packets come from it."""
    address6: Optional[IPv6Address] = None
    """Its IPv6 address on link6 (None: the upstream has no IPv6 session)."""
    link6: Optional[IPv6Network] = None
    """The IPv6 peering subnet, on the same interface."""


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
    mesh_range6: Optional[IPv6Network] = None
    """The mesh's IPv6 range (None: the mesh carries IPv4 only)."""
    own6: tuple[IPv6Network, ...] = ()
    """Own IPv6 prefixes, as `own`."""
    opened6: tuple[PortRange, ...] = ()
    """Every member's openings, opened in IPv6 on a router's forward path towards the whole
    mesh range6: Netmaker assigns members' IPv6 addresses, so the plan cannot name them.
    A member's port is thus forwarded to every member; each member's own INPUT chain still
    drops what it did not open itself."""
    bogons6: tuple[IPv6Network, ...] = ()
    """IPv6 sources dropped from an upstream, as `bogons`."""
    exempt6: tuple[IPv6Network, ...] = ()
    """IPv6 bogon sources let in anyway, as `exempt`."""


@dataclass(frozen=True)
class Service:
    """A port of this member that only `sources` may reach, on any of its addresses (in
    each family, the sources of that family: none is everyone closed out)."""

    port: PortRange
    sources: tuple[Network, ...]
    name: str


def edge_plan(cfg: StackConfig, member: Union[BorderRouter, MeshNode], services: tuple[Service, ...] = ()) -> EdgePlan:
    """The plan of a node or a border router of `cfg`, serving `services`."""
    if isinstance(member, MeshNode):
        return EdgePlan(cfg.mesh.range, tuple(member.inbound), services=services, mesh_range6=cfg.mesh.range6)
    members = [(r.mesh_ip, r.inbound) for r in cfg.border_routers] + [(n.ip, n.inbound) for n in cfg.mesh.nodes]
    policy = cfg.policy
    return EdgePlan(
        mesh_range=cfg.mesh.range,
        inbound=tuple(member.inbound),
        router=True,
        own=tuple(p for p in cfg.prefixes if p.version == 4),
        uplinks=tuple(Uplink(u.local_address, u.link, u.local_address6, u.link6) for u in cfg.upstreams_of(member)),
        openings=tuple((address, rule) for address, rules in members if address is not None for rule in rules),
        bogons=BOGON_PREFIXES_V4 if policy.bogon_filter else (),
        exempt=tuple(p for p in policy.bogon_exempt_prefixes if p.version == 4),
        services=services,
        mesh_range6=cfg.mesh.range6,
        own6=tuple(p for p in cfg.prefixes if p.version == 6),
        opened6=tuple(dict.fromkeys(rule for _, rules in members for rule in rules)),
        bogons6=BOGON_PREFIXES_V6 if policy.bogon_filter else (),
        exempt6=tuple(p for p in policy.bogon_exempt_prefixes if p.version == 6),
    )


def _port(rule: PortRange) -> str:
    ports = str(rule.first) if rule.first == rule.last else f"{rule.first}:{rule.last}"
    return f"-p {rule.proto} -m {rule.proto} --dport {ports}"


def _drop(why: str) -> str:
    """A counted drop: `iptables -nvxL <chain>` shows its packets by this comment."""
    return f'-m comment --comment "bgp4mesh: {why}" -j DROP'


ECHO = "-p icmp -m icmp --icmp-type 8"
ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED"


def icmp6(kind: int) -> str:
    """An ICMPv6 type, as ip6tables-save writes it (so the text reads back unchanged)."""
    return f"-p ipv6-icmp -m icmp6 --icmpv6-type {kind}"


ECHO6 = icmp6(128)
ICMP6_ERRORS = (1, 2, 3, 4)
"""Unreachable, packet too big, time exceeded, parameter problem: path MTU discovery needs
them (IPv6 routers never fragment), and they are no way in."""
ND_TYPES = (133, 134, 135, 136)
"""Router and neighbour solicitation and advertisement. The kernel takes them only with hop
limit 255 (RFC 4861), so only the link can send them: matched the same way here."""
MLD_QUERY = 130
"""A multicast router's query, always link-local with hop limit 1: a member that never
answers it drops out of a snooping switch's tables, and neighbour solicitations stop
reaching it."""
REDIRECT = 137
"""Dropped: nobody outside may reroute a member (a router ignores them anyway)."""


class _Side(NamedTuple):
    """An uplink in one family."""

    token: Address
    """The address that names its interface (IPv6 without an IPv6 session: the IPv4 one)."""
    sources: tuple[Network, ...]
    """Its own address, as /32 or /128 (none without an address in this family)."""
    links: tuple[Network, ...]
    """Its peering link in this family (or none)."""


@dataclass(frozen=True)
class _Family:
    """One address family's share of a plan: each chain is written once, for both."""

    mesh: tuple[Network, ...]
    """The mesh range, or nothing (IPv6 without mesh.range6)."""
    own: tuple[Network, ...]
    uplinks: tuple[_Side, ...]
    bogons: tuple[Network, ...]
    exempt: tuple[Network, ...]
    openings: tuple[tuple[Network, PortRange], ...]
    """Destinations the forward path opens, with the port."""
    welcome: tuple[str, ...]
    """ICMP that may reach any member from outside: echo request (IPv6: and errors)."""
    first: tuple[str, ...] = ()
    """INPUT's first rules, before anything drops (IPv6: neighbour discovery and multicast
    listener queries in, redirects out)."""
    local_out: tuple[str, ...] = ()
    """Link-scoped sources a router sends out of an uplink (IPv6: link-local, and the
    unspecified address of duplicate address detection)."""
    version: int = 4


def _ipv4(plan: EdgePlan) -> _Family:
    return _Family(
        mesh=(plan.mesh_range,),
        own=plan.own,
        uplinks=tuple(_Side(u.address, (ip_network(u.address),), (u.link,)) for u in plan.uplinks),
        bogons=plan.bogons,
        exempt=plan.exempt,
        openings=tuple((ip_network(address), rule) for address, rule in plan.openings),
        welcome=(ECHO,),
    )


def _ipv6(plan: EdgePlan) -> _Family:
    """An uplink without IPv6 is named by its IPv4 address: IPv6 on it is filtered too."""
    mesh = (plan.mesh_range6,) if plan.mesh_range6 is not None else ()
    link = tuple(f"{icmp6(kind)} -m hl --hl-eq 255 -j RETURN" for kind in ND_TYPES)
    link += (f"-s fe80::/10 {icmp6(MLD_QUERY)} -m hl --hl-eq 1 -j RETURN",)
    return _Family(
        mesh=mesh,
        own=plan.own6,
        uplinks=tuple(_Side(u.address6 or u.address, _nets(u.address6), _nets(u.link6)) for u in plan.uplinks),
        bogons=plan.bogons6,
        exempt=plan.exempt6,
        openings=tuple((m, rule) for m in mesh for rule in plan.opened6),
        welcome=(ECHO6, *map(icmp6, ICMP6_ERRORS)),
        first=link + (f"{icmp6(REDIRECT)} {_drop('redirect')}",),
        local_out=("-s fe80::/10 -j RETURN", "-s ::/128 -p ipv6-icmp -j RETURN"),
        version=6,
    )


def _nets(value: Union[None, IPv6Address, IPv6Network]) -> tuple[Network, ...]:
    """An optional IPv6 fact as zero or one network, so each rule is written for all."""
    return () if value is None else (ip_network(value),)


def _member_in(plan: EdgePlan, f: _Family) -> list[str]:
    """INPUT: what reaches this member's own address from outside the mesh range, and its
    services, from their sources alone (mesh members included: nobody else)."""
    chain = f"{PREFIX}-INPUT"
    rules = [f"-A {chain} {rule}" for rule in f.first]
    rules += [f"-A {chain} -i {uplink_token(u.token)} -j {PREFIX}-SPOOF-IN" for u in f.uplinks]
    for service in plan.services:
        sources = [src for src in service.sources if src.version == f.version]
        rules += [f"-A {chain} -s {src} {_port(service.port)} -j RETURN" for src in sources]
        rules.append(f"-A {chain} {_port(service.port)} {_drop(service.name + ' closed')}")
    rules += [f"-A {chain} -s {m} -j RETURN" for m in f.mesh] + [f"-A {chain} {ESTABLISHED} -j RETURN"]
    rules += [f"-A {chain} -i {MESH_INTERFACE} -j {PREFIX}-MEMBER"] + [f"-A {chain} -d {m} -j {PREFIX}-MEMBER" for m in f.mesh]
    member = f"{PREFIX}-MEMBER"
    rules += [f"-A {member} {icmp} -j RETURN" for icmp in f.welcome] + [f"-A {member} {_port(r)} -j RETURN" for r in plan.inbound]
    return rules + [f"-A {member} {_drop('closed')}"]


def _spoofing(f: _Family) -> list[str]:
    """A router's uplinks: no own, mesh or bogon source in (the neighbor's link excepted),
    nothing but own prefixes and its link addresses out. IPv6's link-local neighbour
    discovery never reaches SPOOF-IN: INPUT accepts it first, and nobody forwards it."""
    into, out = f"{PREFIX}-SPOOF-IN", f"{PREFIX}-SPOOF-OUT"
    rules = [f"-A {into} -s {link} -j RETURN" for u in f.uplinks for link in u.links]
    rules += [f"-A {into} -s {p} {_drop('own source in')}" for p in f.own]
    rules += [f"-A {into} -s {m} {_drop('mesh source in')}" for m in f.mesh if not any(m.subnet_of(p) for p in f.own)]
    rules += [f"-A {into} -s {p} -j RETURN" for p in f.exempt]
    rules += [f"-A {into} -s {b} {_drop('bogon source in')}" for b in f.bogons]
    rules += [f"-A {out} -s {p} -j RETURN" for p in f.own]
    rules += [f"-A {out} -s {a} -j RETURN" for u in f.uplinks for a in u.sources]
    rules += [f"-A {out} {rule}" for rule in f.local_out]
    rules.append(f"-A {out} {_drop('spoofed source out')}")
    rules += [f"-A {PREFIX}-OUTPUT -o {uplink_token(u.token)} -j {out}" for u in f.uplinks]
    return rules


def _forward(f: _Family) -> list[str]:
    """A router's forward path: anti-spoofing first, then replies, the mesh's own flows
    (relayed member to member, out of the mesh, towards the active gateway), what the
    members open; anything else that touches an uplink or the mesh is dropped. Docker's
    own forwarding on a real host (bridges) is left to the rules after this chain."""
    chain, opened = f"{PREFIX}-FORWARD", f"{PREFIX}-OPEN"
    tokens = [uplink_token(u.token) for u in f.uplinks]
    rules = [f"-A {chain} -i {t} -j {PREFIX}-SPOOF-IN" for t in tokens] + [f"-A {chain} -o {t} -j {PREFIX}-SPOOF-OUT" for t in tokens]
    rules += [f"-A {chain} {ESTABLISHED} -j RETURN"] + [f"-A {chain} -s {m} -j RETURN" for m in f.mesh]
    rules += [f"-A {chain} -o {MESH_INTERFACE} -j {opened}"] + [f"-A {chain} -d {m} -j RETURN" for m in f.mesh]
    edges = [f"-i {MESH_INTERFACE}", f"-o {MESH_INTERFACE}"] + [f"{d} {t}" for t in tokens for d in ("-i", "-o")]
    rules += [f"-A {chain} {e} {_drop('not an edge flow')}" for e in edges]
    rules += [f"-A {opened} -d {dst} {_port(r)} -j RETURN" for dst, r in f.openings]
    return rules + [f"-A {opened} {icmp} -j RETURN" for icmp in f.welcome] + [f"-A {opened} {_drop('closed')}"]


def chains(plan: EdgePlan) -> list[str]:
    """The chains a member's rules define, jumped-to ones first (the same in each family)."""
    jumped = ["INPUT", "FORWARD", "OUTPUT"] if plan.router else ["INPUT"]
    own = ["MEMBER", "SPOOF-IN", "SPOOF-OUT", "OPEN"] if plan.router else ["MEMBER"]
    return [f"{PREFIX}-{c}" for c in jumped + own]


def _render(plan: EdgePlan, f: _Family, header: str) -> str:
    """(ip6)tables-restore input (`--noflush`): each chain is declared, which empties it,
    then filled. The built-in chains are not touched here: the applier keeps a jump to
    BGP4MESH-<chain> first in each (netclient inserts its own rules at the top)."""
    lines = [header, "*filter"] + [f":{c} - [0:0]" for c in chains(plan)] + _member_in(plan, f)
    if plan.router:
        lines += _spoofing(f) + _forward(f)
    return "\n".join(lines + ["COMMIT", ""])


def render_edge_rules(plan: EdgePlan) -> str:
    """The IPv4 rules (iptables-restore), which every member has."""
    return _render(plan, _ipv4(plan), "# bgp4mesh edge firewall: generated from the stack config (bgp4mesh/edge_rules.py)")


def has_ipv6(plan: EdgePlan) -> bool:
    """The member meets IPv6 at its edge: the mesh carries it, or an uplink has an IPv6 session."""
    return plan.mesh_range6 is not None or any(u.link6 is not None for u in plan.uplinks)


def render_edge_rules6(plan: EdgePlan) -> Optional[str]:
    """The IPv6 rules (ip6tables-restore), or None where the member has no IPv6 at all."""
    if not has_ipv6(plan):
        return None
    return _render(plan, _ipv6(plan), "# bgp4mesh edge firewall, IPv6: generated from the stack config (bgp4mesh/edge_rules.py)")
