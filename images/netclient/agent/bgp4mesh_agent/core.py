"""The agent's decisions, pure: `decide_router` and `decide_node` take the state carried
between rounds and one round's observations, and return the next state and the actions to
take. Nothing here touches the system; adapters.py does what the actions say, and
`confirm` records the actions that worked (an announcement or a forwarding that failed is
tried again next round)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Optional, Union

from .schema import Node, Probe, Router

SLOW_ROUNDS = 25
"""Rounds between the slower looks: the mesh peers, the refusal against iptables."""
CLOSED_AFTER = 10
"""Rounds: a closed own port is no sub-second failure, and one probe is easier to miss
under load than "any member of the mesh"."""
RESTART_AFTER_S = 15.0
"""netclient's port closed this long with the mesh up: restart the daemon..."""
RESTART_MAX_S = 300.0
"""...and twice as long before each further restart, up to this."""
MAX_PEERS = 4
"""Mesh members a router probes besides the other gateways."""


@dataclass(frozen=True)
class Flip:
    """A debounced up/down: takes what is seen once it differed long enough in a row."""

    up: bool = False
    streak: int = 0


def flip(value: Flip, seen: bool, up_after: int, down_after: int) -> Flip:
    streak = value.streak + 1 if seen != value.up else 0
    if streak >= (down_after if value.up else up_after):
        return Flip(not value.up, 0)
    return Flip(value.up, streak)


# ---- actions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Log:
    text: str


@dataclass(frozen=True)
class Refuse:
    """Refuse (True) or answer (False) the nodes' probes on the mesh interface."""

    refuse: bool
    why: str


@dataclass(frozen=True)
class Announce:
    """Switch BIRD in place to the normal or the drained config."""

    mode: str


@dataclass(frozen=True)
class ForwardTo:
    """Inbound for the mesh goes to `via` (an iBGP address), or is delivered here ("")."""

    via: str
    gateway: str


@dataclass(frozen=True)
class RestartDaemon:
    closed_for_s: float


@dataclass(frozen=True)
class ClearRules:
    """What an earlier deployment left (rules outlive the container on a real host)."""

    mesh_range: str


@dataclass(frozen=True)
class InstallRules:
    mesh_range: str
    own_ibgp: str


@dataclass(frozen=True)
class SetAllowedIps:
    """The WireGuard peer `key` holds `ips` (the gateway's own and the egress ranges)."""

    key: str
    ips: tuple[str, ...]


@dataclass(frozen=True)
class FallbackRoute:
    """A route for `range` into the mesh, below netclient's own metrics."""

    range: str


@dataclass(frozen=True)
class DefaultRoute6:
    """IPv6's default into the mesh, in a table looked up after the main table's specific
    routes, as netclient keeps IPv4's for an internet gateway's client."""


Action = Union[Log, Refuse, Announce, ForwardTo, RestartDaemon, ClearRules, InstallRules, SetAllowedIps, FallbackRoute, DefaultRoute6]


# ---- border router ------------------------------------------------------------------------
@dataclass(frozen=True)
class RouterState:
    mesh: Flip = Flip()
    port: Flip = Flip()
    """netclient's own port answers (always, without a mesh address of our own)."""
    gateways: Mapping[str, Flip] = field(default_factory=dict)
    """The other gateways, as the nodes see them."""
    peers: tuple[str, ...] = ()
    settled: int = 0
    """Rounds available in a row."""
    announced: str = "drained"
    refused: bool = True
    forwarding: Optional[str] = None
    """The iBGP address inbound goes to ("" here); None: not set yet."""
    rounds: int = 0
    closed_since: float = 0.0
    restart_after: float = RESTART_AFTER_S
    report: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RouterSeen:
    now: float
    """Monotonic seconds."""
    probes: Mapping[str, bool]
    maintenance: bool
    upstream: bool
    peers: Optional[tuple[str, ...]] = None
    """Mesh members looked up this round (when `wants_peers`), else None."""


def others(router: Router) -> tuple[str, ...]:
    return tuple(g.mesh for g in router.gateways if g.mesh != router.self_ip)


def start_router(router: Router, now: float) -> tuple[RouterState, list[Action]]:
    """Drained and refusing until the mesh answers; rules of an earlier run cleared first."""
    actions: list[Action] = [ClearRules(router.mesh_range)]
    if len(router.gateways) > 1:
        own = next(g.ibgp for g in router.gateways if g.mesh == router.self_ip)
        actions.append(InstallRules(router.mesh_range, own))
    shown = " ".join(f"{g.mesh}={g.ibgp}" for g in router.gateways) or "none"
    actions += [Refuse(True, "starting"), Log(f"started (gateways: {shown}); announcing drained until the mesh answers")]
    state = RouterState(port=Flip(up=not router.self_ip), gateways={gw: Flip() for gw in others(router)}, closed_since=now)
    return state, actions


def wants_peers(state: RouterState) -> bool:
    return state.rounds % SLOW_ROUNDS == 0 or not state.peers


def pick_peers(router: Router, allowed_ips: list[tuple[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """Up to MAX_PEERS mesh members besides the gateways: each WireGuard peer's first /32."""
    skip = {router.self_ip, *(g.mesh for g in router.gateways)}
    peers: list[str] = []
    for _key, ips in allowed_ips:
        host = next((ip[:-3] for ip in ips if ip.endswith("/32") and ip[:-3] not in skip), None)
        if host:
            peers.append(host)
        if len(peers) >= MAX_PEERS:
            break
    return tuple(peers)


def router_targets(router: Router, peers: tuple[str, ...]) -> tuple[str, ...]:
    """Whom a round probes: mesh peers, the other gateways, our own port."""
    return (*peers, *others(router), *((router.self_ip,) if router.self_ip else ()))


def decide_router(router: Router, probe: Probe, state: RouterState, seen: RouterSeen) -> tuple[RouterState, list[Action]]:
    actions: list[Action] = []
    peers = seen.peers if seen.peers is not None else state.peers
    ok = any(seen.probes.get(p, False) for p in (*peers, *others(router)))
    mesh = flip(state.mesh, ok, probe.up_after, probe.down_after)
    if mesh.up != state.mesh.up:
        actions.append(Log(f"mesh {'up' if mesh.up else 'down'}"))
    state, port_actions = _own_port(router, probe, replace(state, mesh=mesh, peers=peers), seen)
    actions += port_actions
    available = mesh.up and seen.upstream and state.port.up and not seen.maintenance
    settled = state.settled + 1 if available else 0
    want = "normal" if mesh.up and not seen.maintenance else "drained"
    if want != state.announced:
        actions.append(Announce(want))
    rounds = state.rounds + 1
    if state.refused != (not available):
        actions.append(Refuse(not available, f"available={int(available)}"))
    elif rounds % SLOW_ROUNDS == 0:
        actions.append(Refuse(state.refused, f"iptables did not match available={int(available)}"))
    gateways = {gw: flip(state.gateways[gw], seen.probes.get(gw, False), probe.up_after, probe.down_after) for gw in others(router)}
    active = choose_gateway(router, gateways, seen.probes, settled >= probe.up_after, mesh.up)
    if len(router.gateways) > 1:
        via = next((g.ibgp for g in router.gateways if g.mesh == active and active != router.self_ip), "")
        if via != state.forwarding:
            actions.append(ForwardTo(via, active))
    report = {"maintenance": seen.maintenance, "mesh": mesh.up, "upstream": seen.upstream, "port": state.port.up,
              "available": available, "active": active}
    state = replace(state, settled=settled, refused=not available, rounds=rounds, gateways=gateways, report=report)
    return state, actions


def _own_port(router: Router, probe: Probe, state: RouterState, seen: RouterSeen) -> tuple[RouterState, list[Action]]:
    """The nodes probe our netclient port: closed CLOSED_AFTER rounds, we stop serving; closed
    restart_after seconds with the mesh up, the daemon is restarted (backing off)."""
    if not router.self_ip:
        return state, []
    actions: list[Action] = []
    port = flip(state.port, seen.probes.get(router.self_ip, False), probe.up_after, CLOSED_AFTER)
    if port.up != state.port.up:
        actions.append(Log(f"netclient's port {probe.port} {'answers' if port.up else 'is closed'}"))
    closed_since = seen.now if port.up or not state.mesh.up else state.closed_since
    restart_after = RESTART_AFTER_S if port.up else state.restart_after
    if seen.now - closed_since >= restart_after:
        actions.append(RestartDaemon(restart_after))
        closed_since, restart_after = seen.now, min(restart_after * 2, RESTART_MAX_S)
    return replace(state, port=port, closed_since=closed_since, restart_after=restart_after), actions


def choose_gateway(router: Router, gateways: Mapping[str, Flip], probes: Mapping[str, bool], settled: bool, mesh: bool) -> str:
    """The active gateway as the nodes pick it: the first that is up, this one once it has
    been available as long as a node needs to take it up again. Until then (back from a
    restart, say) a gateway that answers now is taken: the nodes are still there. Without a
    mesh here, whatever still arrives is better off at the next gateway."""
    for g in router.gateways:
        if g.mesh == router.self_ip:
            if settled:
                return g.mesh
        elif gateways[g.mesh].up or (not settled and probes.get(g.mesh, False)):
            return g.mesh
    rest = others(router)
    return rest[0] if rest and not mesh else ""


def confirm(state, action: Action, ok: bool):
    """The state once `action` was carried out (ok) or failed."""
    if ok and isinstance(action, Announce):
        return replace(state, announced=action.mode)
    if ok and isinstance(action, ForwardTo):
        return replace(state, forwarding=action.via)
    return state


def router_report(state: RouterState) -> dict[str, object]:
    return {**state.report, "announce": state.announced}


# ---- mesh node ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeState:
    gateways: Mapping[str, Flip]
    active: str = ""


@dataclass(frozen=True)
class NodeSeen:
    probes: Mapping[str, bool]
    allowed_ips: list[tuple[str, tuple[str, ...]]]
    """WireGuard peers of the mesh interface: (public key, allowed IPs), in `wg show` order."""
    routed: frozenset[str]
    """Destinations routed through the mesh interface."""
    default6: bool = False
    """IPv6's default into the mesh is in place (looked at only for node.internet6)."""


def start_node(node: Node) -> tuple[NodeState, list[Action]]:
    log = Log(f"gateways {' '.join(node.gateways)} (priority order), ranges {' '.join(node.ranges)}")
    return NodeState(gateways={gw: Flip() for gw in node.gateways}), [log]


def decide_node(node: Node, probe: Probe, state: NodeState, seen: NodeSeen) -> tuple[NodeState, list[Action]]:
    """Every range on the first gateway that is up, and a route for each into the mesh."""
    actions: list[Action] = []
    gateways = {}
    for gw in node.gateways:
        gateways[gw] = flip(state.gateways[gw], seen.probes.get(gw, False), probe.up_after, probe.down_after)
        if gateways[gw].up != state.gateways[gw].up:
            actions.append(Log(f"gateway {gw} {'up' if gateways[gw].up else 'down'}"))
    active = next((gw for gw in node.gateways if gateways[gw].up), "")
    if active:
        actions += range_fixes(node.ranges, active, seen.allowed_ips, seen.routed)
    if node.internet6 and not seen.default6 and any("::/0" in ips for _key, ips in seen.allowed_ips):
        actions += [Log("a peer holds ::/0 but IPv6 has no default into the mesh (netclient routes IPv4's alone): adding it"), DefaultRoute6()]
    return NodeState(gateways=gateways, active=active), actions


def range_fixes(ranges: tuple[str, ...], gateway: str, allowed_ips, routed: frozenset[str]) -> list[Action]:
    """The peer holding gateway/32 also holds every range (WireGuard takes a range away from
    whichever peer had it); netclient can lose its routes for them on a restart."""
    held = next((ips for _key, ips in allowed_ips if f"{gateway}/32" in ips), None)
    if held is None:
        return []
    key = next(k for k, ips in allowed_ips if ips is held)
    actions: list[Action] = []
    missing = tuple(r for r in ranges if r not in held)
    if missing:
        actions += [Log(f"egress ranges {' '.join(missing)} -> gateway {gateway}"), SetAllowedIps(key, (*held, *missing))]
    for r in ranges:
        if r not in routed:
            actions += [Log(f"no route for {r}: adding one into the mesh"), FallbackRoute(r)]
    return actions
