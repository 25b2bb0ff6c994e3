"""`graph`: a picture of a stack's plan as Mermaid or Graphviz dot text (no Docker).

Both formats lay out one Picture built here from the plan (its nodes, edges and which
nodes sit inside the AS), so they cannot disagree; identifiers come from `node_id` alone.
The plan decides what is drawn: sessions, iBGP peers, the gateway order, members' pinned
addresses. Labels are names, addresses, ASNs and policy numbers, never a secret.

`--live` passes what a running stack showed (`Observed`, read by graph_live.py): the same
picture, each BGP session (with its BFD) and each member's tunnel to each gateway then
green when healthy and red otherwise. Drawing stays a pure function of plan and state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Optional

from .plan import IbgpPeer, Member, RouterPlan, Session, StackPlan
from .verify import HANDSHAKE_FRESH_SECONDS

ASSIGNED = "assigned at join"


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    """router, upstream, netmaker, mesh, node, exchange or probe: each format's shape."""
    lines: tuple[str, ...]
    inside: bool
    """Part of the AS (drawn in its box) rather than the Internet around it."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    """ebgp, ibgp, control, member, gateway, exchange or tunnel: each format's line style."""
    label: str
    healthy: Optional[bool] = None
    """Live only: green (True) or red (False); None is drawn uncoloured."""


ESTABLISHED = "Established"
NOT_READ = "no answer"


@dataclass(frozen=True)
class Observed:
    """What a running stack showed at one moment. A key that is missing was not read (its
    container did not answer) and is drawn red as such."""

    sessions: Mapping[tuple[str, str], str]
    """(router, BIRD protocol) -> its state: BIRD's info word (Established, Active...) or
    the protocol state when BIRD gives no info."""
    bfd: Mapping[tuple[str, str], str]
    """(router, neighbor address) -> BFD session state (Up, Down, Init...)."""
    handshakes: Mapping[tuple[str, str], Optional[float]]
    """(member, gateway) -> seconds since the member's latest handshake with the gateway;
    None: no handshake (or the gateway is not among its peers)."""


@dataclass(frozen=True)
class Picture:
    box: str
    """The AS box's identifier."""
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def node_id(kind: str, name: str) -> str:
    """The one maker of identifiers. Names hold only a-z, 0-9 and '-' (config.Name), so
    '-' -> '_' is safe for both formats and the kind prefix keeps a router and an upstream
    of the same name apart."""
    return f"{kind}_{name.replace('-', '_')}"


def picture(plan: StackPlan, seen: Optional[Observed] = None) -> Picture:
    """What both formats draw: the AS's routers, control plane and members, the upstreams
    and a lab's exchange and probe, with the sessions and mesh roles between them; with
    `seen`, sessions coloured and each member's tunnels to the gateways added."""
    cfg = plan.model
    nodes = (
        *(_router_node(r) for r in plan.routers),
        Node(node_id("netmaker", "netmaker"), "netmaker", ("Netmaker control plane", cfg.netmaker.domain, f"host {cfg.netmaker.host}"), True),
        Node(node_id("mesh", cfg.mesh.network), "mesh", (f"mesh {cfg.mesh.network}", str(cfg.mesh.range)), True),
        *(Node(node_id("node", n.name), "node", (n.name, _mesh_address(n.member), f"host {n.member.host}"), True) for n in plan.nodes),
        *(_upstream_node(s) for r in plan.routers for s in r.sessions if s.version == 4),
        *_lab_internet(plan),
    )
    edges = (*_sessions(plan, seen), *_ibgp(plan, seen), *_mesh_edges(plan), *_exchange_edges(plan))
    edges += tuple(_tunnels(plan, seen)) if seen is not None else ()
    title = f"AS {cfg.asn}: {', '.join(str(p) for p in cfg.prefixes)}"
    return Picture(node_id("as", str(cfg.asn)), title, nodes, edges)


def _mesh_address(member: Member) -> str:
    return f"mesh {member.pinned}" if member.pinned is not None else f"mesh {ASSIGNED}"


def _router_node(r: RouterPlan) -> Node:
    drained = ("MAINTENANCE: drained",) if r.spec.maintenance else ()
    lines = (r.name, f"router id {r.spec.router_id}", f"host {r.member.host}", _mesh_address(r.member), *drained)
    return Node(node_id("router", r.name), "router", lines, True)


def _upstream_node(s: Session) -> Node:
    u = s.upstream
    return Node(node_id("upstream", u.name), "upstream", (u.name, f"AS {u.asn}", s.kind, str(u.neighbor)), False)


def _lab_internet(plan: StackPlan) -> tuple[Node, ...]:
    """A lab's exchange LAN and the probe on it (the Internet beyond the mock ISPs)."""
    found = []
    if plan.exchange is not None:
        subnets = [str(n) for n in (plan.exchange.subnet, plan.exchange.subnet6) if n is not None]
        found.append(Node(node_id("exchange", "exchange"), "exchange", ("exchange", *subnets), False))
    if plan.probe is not None:
        probe = plan.probe
        tests = [a for a in (probe.test_address, probe.test_address6) if a]
        found.append(Node(node_id("probe", "probe"), "probe", ("probe", f"AS {probe.asn}", *tests), False))
    return tuple(found)


def _sessions(plan: StackPlan, seen: Optional[Observed]) -> list[Edge]:
    """eBGP, labelled with what moves traffic: local-pref out, the prepends the upstream
    sees (its AS path beyond our own AS), BFD; live, with the state the router shows."""
    edges = []
    for r in plan.routers:
        for s in r.sessions:
            u = s.upstream
            parts = ["eBGP" if s.version == 4 else f"eBGP IPv{s.version}", f"local-pref {u.local_pref}"]
            parts += [f"prepend {len(s.as_path) - 1}"] if len(s.as_path) > 1 else []
            parts += [f"BFD {u.bfd.interval_ms} ms x {u.bfd.multiplier}"] if u.bfd else []
            edge = Edge(node_id("router", r.name), node_id("upstream", u.name), "ebgp", ", ".join(parts))
            bfd = str(s.neighbor) if u.bfd else None
            edges.append(edge if seen is None else _observed(edge, [_end_state(seen, r.name, s.protocol, bfd)]))
    return edges


def _ibgp(plan: StackPlan, seen: Optional[Observed]) -> list[Edge]:
    """One edge per pair of routers that peer and address family (the plan lists each
    session from both ends); live, healthy only when both ends show it Established (and BFD Up)."""
    bfd = plan.model.policy.ibgp_bfd is not None
    drawn: set[tuple[frozenset[str], int]] = set()
    edges = []
    for r in plan.routers:
        for peer in r.ibgp:
            pair = (frozenset((r.name, peer.router)), peer.version)
            if pair not in drawn:
                drawn.add(pair)
                kind = "iBGP" if peer.version == 4 else f"iBGP IPv{peer.version}"
                edge = Edge(node_id("router", r.name), node_id("router", peer.router), "ibgp", f"{kind}, BFD" if bfd else kind)
                if seen is not None:
                    ends = [(r.name, peer), (peer.router, _reverse(plan, r.name, peer))]
                    edge = _observed(edge, [_end_state(seen, n, p.protocol, str(p.address) if bfd else None, n) for n, p in ends])
                edges.append(edge)
    return edges


def _reverse(plan: StackPlan, router: str, peer: IbgpPeer) -> IbgpPeer:
    """The same iBGP session (and family) as the peer lists it."""
    return next(p for p in plan.router(peer.router).ibgp if p.router == router and p.version == peer.version)


def _end_state(seen: Observed, router: str, protocol: str, bfd: Optional[str], who: str = "") -> tuple[bool, str]:
    """(healthy, words) of one end of a session: BGP Established, and BFD Up when it runs."""
    state = seen.sessions.get((router, protocol), NOT_READ)
    healthy, words = state == ESTABLISHED, [f"{who} {state}".strip()]
    if bfd is not None:
        bfd_state = seen.bfd.get((router, bfd), NOT_READ)
        healthy, words = healthy and bfd_state == "Up", [*words, f"BFD {bfd_state}"]
    return healthy, ", ".join(words)


def _observed(edge: Edge, ends: list[tuple[bool, str]]) -> Edge:
    return replace(edge, label=f"{edge.label}: {'; '.join(w for _, w in ends)}", healthy=all(h for h, _ in ends))


def gateway_names(plan: StackPlan) -> list[str]:
    """The routers members tunnel to for the Internet: the egress order, then the
    internet gateway if it is not in it."""
    names = [plan.member_name(address) for address in plan.gateways.egress]
    return names + [plan.gateways.internet] if plan.gateways.internet not in (None, *names) else names


def _tunnels(plan: StackPlan, seen: Observed) -> list[Edge]:
    """Live: each member's WireGuard tunnel to each gateway, by its latest handshake; a
    tunnel between two gateways once, as the first of them sees it."""
    gateways = gateway_names(plan)
    members = [*((node_id("router", r.name), r.name) for r in plan.routers), *((node_id("node", n.name), n.name) for n in plan.nodes)]
    edges = []
    for source, name in members:
        for gateway in gateways:
            if gateway == name or (name in gateways and gateways.index(gateway) < gateways.index(name)):
                continue
            key = (name, gateway)
            age = seen.handshakes.get(key)
            words = NOT_READ if key not in seen.handshakes else "no handshake" if age is None else f"handshake {int(age)} s ago"
            fresh = age is not None and age < HANDSHAKE_FRESH_SECONDS
            edges.append(Edge(source, node_id("router", gateway), "tunnel", f"WireGuard: {words}", fresh))
    return edges


def _mesh_edges(plan: StackPlan) -> list[Edge]:
    """Netmaker controls the mesh; every member is on it, a gateway with its roles."""
    mesh = node_id("mesh", plan.model.mesh.network)
    roles = _gateway_roles(plan)
    edges = [Edge(node_id("netmaker", "netmaker"), mesh, "control", "controls")]
    for r in plan.routers:
        mine = roles.get(r.name, [])
        edges.append(Edge(node_id("router", r.name), mesh, "gateway" if mine else "member", ", ".join(["member", *mine])))
    edges += [Edge(node_id("node", n.name), mesh, "member", "member") for n in plan.nodes]
    return edges


def _gateway_roles(plan: StackPlan) -> dict[str, list[str]]:
    """Router -> its gateway roles: its place in the egress order (numbered only when there
    is more than one gateway; first = preferred) and the internet gateway."""
    order = [plan.member_name(address) for address in plan.gateways.egress]
    roles: dict[str, list[str]] = {}
    for place, name in enumerate(order, start=1):
        numbered = f" {place}" + (" (preferred)" if place == 1 else "") if len(order) > 1 else ""
        roles.setdefault(name, []).append(f"egress gateway{numbered}")
    if plan.gateways.internet is not None:
        roles.setdefault(plan.gateways.internet, []).append("internet gateway")
    return roles


def _ebgp_at(addresses: dict) -> str:
    """An exchange session's label: its address in each family it peers in."""
    return "eBGP " + ", ".join(str(a) for _v, a in sorted(addresses.items()))


def _exchange_edges(plan: StackPlan) -> list[Edge]:
    if plan.exchange is None:
        return []
    exchange = node_id("exchange", "exchange")
    edges = [Edge(node_id("upstream", i.name), exchange, "exchange", _ebgp_at(i.exchange_addresses)) for i in plan.isps if i.exchange_address]
    if plan.probe is not None:
        edges.append(Edge(node_id("probe", "probe"), exchange, "exchange", _ebgp_at(plan.probe.addresses)))
    return edges


# ---- the formats: layout only ------------------------------------------------------------

MERMAID_SHAPES = {
    "router": ('["', '"]'),
    "upstream": ('{{"', '"}}'),
    "netmaker": ('[("', '")]'),
    "mesh": ('(("', '"))'),
    "node": ('("', '")'),
    "exchange": ('[/"', '"/]'),
    "probe": ('>"', '"]'),
}
MERMAID_LINES = {"ibgp": "===", "gateway": "===", "control": "-.-", "tunnel": "-.-"}
DOT_SHAPES = {
    "router": "shape=box",
    "upstream": "shape=hexagon",
    "netmaker": "shape=cylinder",
    "mesh": "shape=ellipse",
    "node": 'shape=box, style="rounded"',
    "exchange": "shape=parallelogram",
    "probe": "shape=octagon",
}
DOT_LINES = {"ibgp": "bold", "gateway": "bold", "control": "dashed", "tunnel": "dotted"}
COLOURS = {True: "#1a7f37", False: "#cf222e"}
"""Live: healthy green, otherwise red (readable on white, both formats take hex)."""


def mermaid(plan: StackPlan, seen: Optional[Observed] = None) -> str:
    """A Mermaid flowchart (renders in GitHub Markdown)."""
    pic = picture(plan, seen)
    lines = ["flowchart LR", f'  subgraph {pic.box}["{_mermaid_text((pic.title,))}"]']
    lines += [f"    {_mermaid_node(n)}" for n in pic.nodes if n.inside]
    lines.append("  end")
    lines += [f"  {_mermaid_node(n)}" for n in pic.nodes if not n.inside]
    lines += [f'  {e.source} {MERMAID_LINES.get(e.kind, "---")}|"{_mermaid_text((e.label,))}"| {e.target}' for e in pic.edges]
    for healthy, colour in COLOURS.items():
        indexes = [str(i) for i, e in enumerate(pic.edges) if e.healthy is healthy]
        lines += [f"  linkStyle {','.join(indexes)} stroke:{colour},stroke-width:2px,color:{colour}"] if indexes else []
    return "\n".join(lines) + "\n"


def dot(plan: StackPlan, seen: Optional[Observed] = None) -> str:
    """A Graphviz graph (`dot -Tsvg`)."""
    pic = picture(plan, seen)
    lines = ["graph bgp4mesh {", '  rankdir=LR; fontname="Helvetica";', '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    lines += [f"  subgraph cluster_{pic.box} {{", f'    label="{_dot_text((pic.title,))}";']
    lines += [f"    {_dot_node(n)}" for n in pic.nodes if n.inside]
    lines.append("  }")
    lines += [f"  {_dot_node(n)}" for n in pic.nodes if not n.inside]
    lines += [f'  {e.source} -- {e.target} [label="{_dot_text((e.label,))}", style={DOT_LINES.get(e.kind, "solid")}{_dot_colour(e)}];' for e in pic.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


FORMATS = {"mermaid": mermaid, "dot": dot}


def _dot_colour(e: Edge) -> str:
    return "" if e.healthy is None else f', color="{COLOURS[e.healthy]}", fontcolor="{COLOURS[e.healthy]}", penwidth=2'


def _mermaid_node(n: Node) -> str:
    opening, closing = MERMAID_SHAPES[n.kind]
    return f"{n.id}{opening}{_mermaid_text(n.lines)}{closing}"


def _dot_node(n: Node) -> str:
    return f'{n.id} [{DOT_SHAPES[n.kind]}, label="{_dot_text(n.lines)}"];'


def _mermaid_text(lines: tuple[str, ...]) -> str:
    """Inside a quoted Mermaid label: entity codes for what would end or open markup."""
    escaped = (x.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") for x in lines)
    return "<br/>".join(escaped)


def _dot_text(lines: tuple[str, ...]) -> str:
    """Inside a quoted dot string: backslash and quote escaped, lines centred."""
    return "\\n".join(x.replace("\\", "\\\\").replace('"', '\\"') for x in lines)
