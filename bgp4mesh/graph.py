"""`graph`: a picture of a stack's plan as Mermaid or Graphviz dot text (no Docker).

Both formats lay out one Picture built here from the plan (its nodes, edges and which
nodes sit inside the AS), so they cannot disagree; identifiers come from `node_id` alone.
The plan decides what is drawn: sessions, iBGP peers, the gateway order, members' pinned
addresses. Labels are names, addresses, ASNs and policy numbers, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from .plan import Member, RouterPlan, Session, StackPlan

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
    """ebgp, ibgp, control, member, gateway or exchange: each format's line style."""
    label: str


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


def picture(plan: StackPlan) -> Picture:
    """What both formats draw: the AS's routers, control plane and members, the upstreams
    and a lab's exchange and probe, with the sessions and mesh roles between them."""
    cfg = plan.model
    nodes = (
        *(_router_node(r) for r in plan.routers),
        Node(node_id("netmaker", "netmaker"), "netmaker", ("Netmaker control plane", cfg.netmaker.domain, f"host {cfg.netmaker.host}"), True),
        Node(node_id("mesh", cfg.mesh.network), "mesh", (f"mesh {cfg.mesh.network}", str(cfg.mesh.range)), True),
        *(Node(node_id("node", n.name), "node", (n.name, _mesh_address(n.member), f"host {n.member.host}"), True) for n in plan.nodes),
        *(_upstream_node(s) for r in plan.routers for s in r.sessions),
        *_lab_internet(plan),
    )
    edges = (*_sessions(plan), *_ibgp(plan), *_mesh_edges(plan), *_exchange_edges(plan))
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
        found.append(Node(node_id("exchange", "exchange"), "exchange", ("exchange", str(plan.exchange.subnet)), False))
    if plan.probe is not None:
        probe = plan.probe
        found.append(Node(node_id("probe", "probe"), "probe", ("probe", f"AS {probe.asn}", probe.test_address), False))
    return tuple(found)


def _sessions(plan: StackPlan) -> list[Edge]:
    """eBGP, labelled with what moves traffic: local-pref out, the prepends the upstream
    sees (its AS path beyond our own AS), BFD."""
    edges = []
    for r in plan.routers:
        for s in r.sessions:
            u = s.upstream
            parts = ["eBGP", f"local-pref {u.local_pref}"]
            parts += [f"prepend {len(s.as_path) - 1}"] if len(s.as_path) > 1 else []
            parts += [f"BFD {u.bfd.interval_ms} ms x {u.bfd.multiplier}"] if u.bfd else []
            edges.append(Edge(node_id("router", r.name), node_id("upstream", u.name), "ebgp", ", ".join(parts)))
    return edges


def _ibgp(plan: StackPlan) -> list[Edge]:
    """One edge per pair of routers that peer (the plan lists each session from both ends)."""
    bfd = ", BFD" if plan.model.policy.ibgp_bfd is not None else ""
    drawn: set[frozenset[str]] = set()
    edges = []
    for r in plan.routers:
        for peer in r.ibgp:
            pair = frozenset((r.name, peer.router))
            if pair not in drawn:
                drawn.add(pair)
                edges.append(Edge(node_id("router", r.name), node_id("router", peer.router), "ibgp", f"iBGP{bfd}"))
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


def _exchange_edges(plan: StackPlan) -> list[Edge]:
    if plan.exchange is None:
        return []
    exchange = node_id("exchange", "exchange")
    edges = [Edge(node_id("upstream", i.name), exchange, "exchange", f"eBGP {i.exchange_address}") for i in plan.isps if i.exchange_address]
    if plan.probe is not None:
        edges.append(Edge(node_id("probe", "probe"), exchange, "exchange", f"eBGP {plan.probe.address}"))
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
MERMAID_LINES = {"ibgp": "===", "gateway": "===", "control": "-.-"}
DOT_SHAPES = {
    "router": "shape=box",
    "upstream": "shape=hexagon",
    "netmaker": "shape=cylinder",
    "mesh": "shape=ellipse",
    "node": 'shape=box, style="rounded"',
    "exchange": "shape=parallelogram",
    "probe": "shape=octagon",
}
DOT_LINES = {"ibgp": "bold", "gateway": "bold", "control": "dashed"}


def mermaid(plan: StackPlan) -> str:
    """A Mermaid flowchart (renders in GitHub Markdown)."""
    pic = picture(plan)
    lines = ["flowchart LR", f'  subgraph {pic.box}["{_mermaid_text((pic.title,))}"]']
    lines += [f"    {_mermaid_node(n)}" for n in pic.nodes if n.inside]
    lines.append("  end")
    lines += [f"  {_mermaid_node(n)}" for n in pic.nodes if not n.inside]
    lines += [f'  {e.source} {MERMAID_LINES.get(e.kind, "---")}|"{_mermaid_text((e.label,))}"| {e.target}' for e in pic.edges]
    return "\n".join(lines) + "\n"


def dot(plan: StackPlan) -> str:
    """A Graphviz graph (`dot -Tsvg`)."""
    pic = picture(plan)
    lines = ["graph bgp4mesh {", '  rankdir=LR; fontname="Helvetica";', '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    lines += [f"  subgraph cluster_{pic.box} {{", f'    label="{_dot_text((pic.title,))}";']
    lines += [f"    {_dot_node(n)}" for n in pic.nodes if n.inside]
    lines.append("  }")
    lines += [f"  {_dot_node(n)}" for n in pic.nodes if not n.inside]
    lines += [f'  {e.source} -- {e.target} [label="{_dot_text((e.label,))}", style={DOT_LINES.get(e.kind, "solid")}];' for e in pic.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


FORMATS = {"mermaid": mermaid, "dot": dot}


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
