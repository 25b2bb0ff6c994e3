"""The deployment plan: everything a stack deploys, decided once from the validated model.

Config -> model (config.py, rules.py) -> plan (here) -> components, renders, host
preparation, `verify` and `check`, which only read it. Every derived fact lives in one
field: a router's sessions with their BIRD names and links, its iBGP peers, the gateway
order, the agents' settings, the members' endpoints and join order, the egress ranges per
address family, the hosts' firewall openings. A problem only planning can find (a lab
network too small, an address clash) is a ConfigError with its key path, like the model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_interface
from itertools import islice
from typing import Optional, Union

from .agent_config import AgentConfig, node_config, router_config
from .addressing import ExchangePlan, LinkPlan, UnderlayPlan, exchange_plan, link_plans, underlay_plan
from .config import FAMILIES, LAB_RTR_SLOT, MESH_FAMILIES, RTR_CACHE_NAME, BorderRouter, MeshNode, RtrCache, StackConfig, Upstream
from .edge_rules import EdgePlan, Service, edge_plan
from .host_plan import HostPlan, host_plan
from .monitoring import MonitoringPlan, exporter_ports, monitoring_plan, scraper as scrape_source
from .monitoring import Member as Scraped
from .scalars import PortRange
from .naming import bird_protocol, bird_symbol
from .problems import ConfigError, Problem

Network = Union[IPv4Network, IPv6Network]
Address = Union[IPv4Address, IPv6Address]

RENDERED_FROM = frozenset({"asn", "prefixes", "policy", "upstreams", "border_routers", "rpki"})
"""Top-level config keys the BIRD configs are rendered from: if any came in secret, the
rendered files are secret too."""


@dataclass(frozen=True)
class Session:
    """One eBGP session of a border router: one per upstream and address family, each
    carrying the routes of its own family only."""

    upstream: Upstream
    version: int
    """Its address family (IP version): its neighbor, its routes, its own prefixes."""
    protocol: str
    """Its BIRD protocol on the router (and the router's on the mock ISP is `peer`)."""
    peer: str
    """The router's BIRD protocol on the mock ISP (kind mock)."""
    link: Optional[LinkPlan]
    """The lab network it runs on (kind mock)."""
    as_path: tuple[int, ...]
    """The AS path the upstream must see for the own prefixes (prepends, drain)."""

    @property
    def kind(self) -> str:
        return self.upstream.kind

    @property
    def neighbor(self) -> Address:
        return self.upstream.neighbor if self.version == 4 else self.upstream.neighbor6

    @property
    def local_address(self) -> Address:
        return self.upstream.local_address if self.version == 4 else self.upstream.local_address6


@dataclass(frozen=True)
class IbgpPeer:
    """An iBGP session with another border router: one per address family."""

    router: str
    protocol: str
    address: Address
    version: int = 4


@dataclass(frozen=True)
class Member:
    """What every mesh member (border router or node) shares: where it runs and joins."""

    name: str
    host: str
    pinned: Optional[IPv4Address]
    """Its mesh address when the config pins it (else Netmaker assigns one at join)."""
    endpoint: Optional[str]
    """Its static WireGuard endpoint: the lab underlay address, else the host's public
    address; None behind NAT (STUN finds it)."""
    join_after: tuple[str, ...]
    """Members whose join must complete before this one joins (see `_join_order`)."""
    edge: EdgePlan


@dataclass(frozen=True)
class RouterPlan:
    spec: BorderRouter
    member: Member
    sessions: tuple[Session, ...]
    ibgp: tuple[IbgpPeer, ...]
    kernel_table: Optional[int]
    """Where BIRD installs BGP routes: None is the main table (a lab)."""
    agent: AgentConfig
    """Its HA agent's settings (border-health's part: sessions, gateways, probe timing)."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class NodePlan:
    spec: MeshNode
    member: Member
    agent: Optional[AgentConfig]
    """Its HA agent's settings (egress failover), with several gateways and egress ranges."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class IspPlan:
    """A lab's mock ISP standing in for one upstream."""

    session: Session
    """Its IPv4 session with the border router."""
    session6: Optional[Session]
    """Its IPv6 session (the upstream has link6)."""
    router: str
    """The border router it peers with."""
    router_id: IPv4Address
    loopbacks: tuple[str, ...]
    """Its Internet test addresses (/32 or /128 on lo, the first of each announced prefix)."""
    exchange_address: Optional[IPv4Address]
    exchange_address6: Optional[IPv6Address] = None

    @property
    def name(self) -> str:
        return self.session.upstream.name

    @property
    def exchange_addresses(self) -> dict[int, Address]:
        """Its address on the exchange per family (lab.exchange, lab.exchange6)."""
        return {v: a for v, a in ((4, self.exchange_address), (6, self.exchange_address6)) if a is not None}

    @property
    def sessions(self) -> tuple[Session, ...]:
        return (self.session,) + ((self.session6,) if self.session6 else ())

    def test_address_of(self, version: int) -> Optional[str]:
        """Its first Internet test address of the family, if it announces one."""
        return next((a.split("/")[0] for a in self.loopbacks if ip_interface(a).version == version), None)

    @property
    def test_address(self) -> Optional[str]:
        return self.test_address_of(4)


@dataclass(frozen=True)
class ProbePlan:
    """A lab's Internet host on the exchange."""

    asn: int
    address: IPv4Address
    test_address: str
    address6: Optional[IPv6Address] = None
    """Its address on lab.exchange6."""
    test_address6: Optional[str] = None
    """The first address of probe.prefix6 (on lo; answers ping)."""

    @property
    def addresses(self) -> dict[int, Address]:
        return {v: a for v, a in ((4, self.address), (6, self.address6)) if a is not None}

    def test_address_of(self, version: int) -> Optional[str]:
        return self.test_address if version == 4 else self.test_address6


@dataclass(frozen=True)
class Gateways:
    """The border routers as the mesh's gateways, in priority order."""

    egress: tuple[str, ...]
    """Routers with a pinned mesh address: the nodes' egress-failover order."""
    health: tuple[tuple[str, str, str], ...]
    """(mesh address, iBGP address, IPv6 iBGP address or "") of each router border-health
    forwards to (several routers)."""
    internet: Optional[str]
    """The router every node uses as its internet gateway (mesh.internet_gateway)."""


@dataclass(frozen=True)
class StackPlan:
    model: StackConfig
    families: tuple[int, ...]
    mesh_families: tuple[int, ...]
    """The families the mesh carries: IPv4, and IPv6 with mesh.range6."""
    routers: tuple[RouterPlan, ...]
    nodes: tuple[NodePlan, ...]
    isps: tuple[IspPlan, ...]
    probe: Optional[ProbePlan]
    gateways: Gateways
    egress: dict[int, tuple[Network, ...]]
    """The egress ranges per address family."""
    node_wants: tuple[str, ...]
    """What a node must hold once the gateways are declared (netclient-converge's wants): a
    route into the mesh per egress range (or the internet gateway's default), and a
    WireGuard handshake with each gateway (the gateway knows the node, so its traffic
    flows both ways when `up` is done)."""
    rtr_caches: tuple[tuple[str, RtrCache], ...]
    hosts: tuple[HostPlan, ...]
    secret_files: bool
    """The rendered daemon configs hold secrets (a password, or a secret config key)."""
    underlay: Optional[UnderlayPlan] = None
    links: tuple[LinkPlan, ...] = ()
    exchange: Optional[ExchangePlan] = None
    ibgp_limits: tuple[int, int] = (0, 0)
    join_order: tuple[str, ...] = field(default=())
    """Every member, each after the members it joins after (Member.join_after)."""
    monitoring: Optional[MonitoringPlan] = None

    def router(self, name: str) -> RouterPlan:
        return next(r for r in self.routers if r.name == name)

    def host(self, name: str) -> HostPlan:
        return next(h for h in self.hosts if h.name == name)

    def member_name(self, address: str) -> str:
        """The router or node pinned to `address`, else the address itself."""
        found = (m.member.name for m in (*self.routers, *self.nodes) if str(m.member.pinned) == address)
        return next(found, address)


def lab_addressing(cfg: StackConfig) -> tuple[Optional[UnderlayPlan], tuple[LinkPlan, ...], Optional[ExchangePlan]]:
    """A lab's Docker networks and who sits where on them; every capacity problem at once."""
    if cfg.lab is None:
        return None, (), None
    found, problems = [], []
    for plan in (underlay_plan, link_plans, exchange_plan):
        try:
            found.append(plan(cfg))
        except ConfigError as exc:
            problems += exc.problems
    if not problems:
        problems += _cache_clashes(cfg, found[0])
    if problems:
        raise ConfigError(problems=problems)
    return found[0], tuple(found[1]), found[2]


def _cache_clashes(cfg: StackConfig, underlay: UnderlayPlan) -> list[Problem]:
    """A lab runs a cache at each rpki.caches address: on the underlay, where every border
    router reaches it, at an address nothing else there holds."""
    if cfg.rpki is None:
        return []
    taken = {a: f"{k} (Netmaker)" for k, a in underlay.netmaker.items()} | {underlay.gateway: "the Docker bridge gateway"}
    taken |= {underlay.monitoring: "monitoring"} if underlay.monitoring else {}
    taken |= {a: f"border router {n}" for n, a in underlay.routers.items()} | {a: f"mesh node {n}" for n, a in underlay.nodes.items()}
    subnet, problems = underlay.subnet, []
    for i, cache in enumerate(cfg.rtr_caches):
        key, hint = (f"rpki.caches[{i}].address", "") if cfg.rpki.caches else ("rpki", f" (the lab's default cache, lab.underlay + {LAB_RTR_SLOT}: list rpki.caches)")
        if cache.address not in subnet or cache.address in (subnet.network_address, subnet.broadcast_address):
            problems.append(Problem(key, cache.address, f"a lab runs this cache on the underlay: a host address of lab.underlay {subnet}"))
        elif cache.address in taken:
            problems.append(Problem(key, cache.address, f"already the underlay address of {taken[cache.address]}{hint}"))
    return problems


def build_plan(cfg: StackConfig, secret_keys: frozenset[str] = frozenset()) -> StackPlan:
    """The plan of a model that passed validation and the cross-section rules."""
    underlay, links, exchange = lab_addressing(cfg)
    ibgp, ibgp6 = _ibgp_addresses(cfg, underlay)
    joins = _join_order(cfg)
    egress = {v: tuple(x for x in cfg.mesh.egress_ranges if x.version == v) for v in FAMILIES}
    gateways = Gateways(
        egress=tuple(str(r.mesh_ip) for r in cfg.border_routers if r.mesh_ip is not None),
        health=tuple((str(r.mesh_ip), str(ibgp[r.name]), str(ibgp6.get(r.name, ""))) for r in cfg.border_routers if r.name in ibgp),
        internet=cfg.border_routers[0].name if cfg.mesh.internet_gateway else None,
    )
    by_link = {p.upstream: p for p in links}
    scraper = scrape_source(cfg, underlay)
    served = _services(cfg, scraper, router=True)
    routers = tuple(_router(cfg, r, underlay, (ibgp, ibgp6), joins, by_link, gateways, served) for r in cfg.border_routers)
    ranges = [str(x) for v in MESH_FAMILIES for x in egress[v]]
    served = _services(cfg, scraper, router=False)
    internet6 = gateways.internet is not None and cfg.mesh.range6 is not None
    node_agent = node_config(gateways.egress, ranges, cfg.mesh.failover, internet6)
    nodes = tuple(_node(cfg, n, underlay, joins, node_agent, served) for n in cfg.mesh.nodes)
    sessions = {(s.upstream.name, s.version): (r.name, s) for r in routers for s in r.sessions}
    isps = tuple(_isp(sessions[u.name, 4], sessions.get((u.name, 6)), exchange) for u in cfg.upstreams if u.kind == "mock")
    members = [Scraped(f"border_routers[{i}]", r.name, r.member.host, True, r.member.endpoint) for i, r in enumerate(routers)]
    members += [Scraped(f"mesh.nodes[{i}]", n.name, n.member.host, False, n.member.endpoint) for i, n in enumerate(nodes)]
    monitor = monitoring_plan(
        cfg, members, [(i.name, str(i.session.upstream.neighbor)) for i in isps],
        {p.upstream: p.monitor_address for p in links if p.monitor_address}, underlay, scraper,
    )
    return StackPlan(
        model=cfg,
        families=FAMILIES,
        mesh_families=(4, 6) if cfg.mesh.range6 else (4,),
        routers=routers,
        nodes=nodes,
        isps=isps,
        probe=_probe(cfg, exchange),
        gateways=gateways,
        egress=egress,
        node_wants=_node_wants(cfg, egress, gateways),
        rtr_caches=tuple((RTR_CACHE_NAME.format(n=i + 1), c) for i, c in enumerate(cfg.rtr_caches)),
        hosts=tuple(host_plan(cfg, h, (ibgp, ibgp6), scraper) for h in cfg.hosts),
        secret_files=bool(secret_keys & RENDERED_FROM) or any(u.password is not None for u in cfg.upstreams),
        underlay=underlay,
        links=links,
        exchange=exchange,
        ibgp_limits=cfg.ibgp_limits(),
        join_order=_in_join_order(joins),
        monitoring=monitor,
    )


def _services(cfg: StackConfig, scraper: Optional[IPv4Address], router: bool) -> tuple[Service, ...]:
    """What a member serves to a few sources: its exporters to Prometheus, a router's
    looking glass to `looking_glass.allow`."""
    found = []
    if cfg.monitoring is not None and scraper is not None:
        source = (IPv4Network(f"{scraper}/32"),)
        found += [Service(PortRange("tcp", port, port), source, name) for port, name in exporter_ports(router)]
    if router and cfg.looking_glass is not None:
        lg = cfg.looking_glass
        found.append(Service(PortRange("tcp", lg.port, lg.port), tuple(p for p in lg.allow if p.version == 4), "looking glass"))
    return tuple(found)


def _node_wants(cfg: StackConfig, egress: dict, gateways: Gateways) -> tuple[str, ...]:
    """Routes into the mesh, and a handshake with each gateway the node peers with: every
    egress gateway, or only the internet gateway (Netmaker gives its clients that one peer,
    and reaches them through it)."""
    routes = tuple(f"route:{r}" for v in MESH_FAMILIES for r in egress[v])
    if gateways.internet is not None:
        pinned = cfg.border_routers[0].mesh_ip
        return routes + ("internet",) + ((f"gateway:{pinned}",) if pinned else ())
    return routes + tuple(f"gateway:{address}" for address in gateways.egress) if routes else ()


def _ibgp_addresses(cfg: StackConfig, underlay: Optional[UnderlayPlan]) -> tuple[dict[str, IPv4Address], dict[str, IPv6Address]]:
    """Where each border router takes iBGP sessions, per family: its lab underlay addresses,
    else its `ibgp_address` and `ibgp_address6`. Empty with one router (no iBGP)."""
    if len(cfg.border_routers) < 2:
        return {}, {}
    if underlay is not None:
        return dict(underlay.routers), dict(underlay.routers6 or {})
    return ({r.name: r.ibgp_address for r in cfg.border_routers if r.ibgp_address is not None},
            {r.name: r.ibgp_address6 for r in cfg.border_routers if r.ibgp_address6 is not None})


def _sessions(cfg: StackConfig, router: BorderRouter, up: Upstream, link: Optional[LinkPlan]) -> tuple[Session, ...]:
    """The upstream's sessions, one per address family it has addresses for."""
    path = (cfg.asn,) * (1 + up.prepend + cfg.policy.drain_prepend * router.maintenance)
    return tuple(Session(up, v, bird_protocol(up.name, v), bird_protocol(router.name, v), link, path) for v in up.families)


def _router(cfg: StackConfig, router: BorderRouter, underlay, ibgp: tuple[dict, dict], joins: dict, links: dict, gateways: Gateways, served: tuple) -> RouterPlan:
    peers = tuple(
        IbgpPeer(r.name, bird_symbol("ibgp" if version == 4 else f"ibgp{version}", r.name), addresses[r.name], version)
        for version, addresses in zip((4, 6), ibgp)
        for r in cfg.border_routers
        if r.name != router.name and r.name in addresses and router.name in addresses
    )
    lab_address = underlay.routers[router.name] if underlay else None
    sessions = tuple(s for u in cfg.upstreams_of(router) for s in _sessions(cfg, router, u, links.get(u.name)))
    pinned = str(router.mesh_ip) if router.mesh_ip else None
    return RouterPlan(
        spec=router,
        member=_member(cfg, router.name, router.host, router.mesh_ip, lab_address, joins, edge_plan(cfg, router, served)),
        sessions=sessions,
        ibgp=peers,
        kernel_table=cfg.bgp_kernel_table(router),
        agent=router_config([s.protocol for s in sessions if s.version == 4], gateways.health, pinned, str(cfg.mesh.range), cfg.mesh.failover,
                            str(cfg.mesh.range6) if cfg.mesh.range6 else None),
    )


def _node(cfg: StackConfig, node: MeshNode, underlay, joins: dict, agent: Optional[AgentConfig], served: tuple) -> NodePlan:
    lab_address = underlay.nodes[node.name] if underlay else None
    return NodePlan(node, _member(cfg, node.name, node.host, node.ip, lab_address, joins, edge_plan(cfg, node, served)), agent)


def _member(cfg: StackConfig, name: str, host: str, pinned, lab_address, joins: dict, edge: EdgePlan) -> Member:
    address = lab_address if lab_address is not None else cfg.host(host).endpoint
    return Member(name, host, pinned, str(address) if address is not None else None, joins[name], edge)


def _join_order(cfg: StackConfig) -> dict[str, tuple[str, ...]]:
    """Member -> the members it joins after. Netmaker gives a joining node the lowest free
    address before it can be pinned. Members pinned among the lowest addresses (the ones
    handed out at join) join one after another, each then handed its own pin: two at once
    could each be handed the other's and wait for it forever, and a member handed another's
    pin for a moment has been seen to go back to it later (netclient re-applying a stale
    address). The other pinned members join once those hold theirs, so they are only ever
    handed addresses nobody pins; members without a pin join last, `mesh.join_parallel` (K)
    at a time: the i-th joins after the (i-K)-th, so K chains run side by side, each one join
    at a time. All at once, fifty joins overran the control plane (registrations timed out),
    and a failed join stops only the members queued behind it in its chain."""
    members = [(r.name, r.mesh_ip) for r in cfg.border_routers] + [(n.name, n.ip) for n in cfg.mesh.nodes]
    pinned = [name for name, ip in members if ip is not None]
    unpinned = {name: i for i, name in enumerate(name for name, ip in members if ip is None)}
    handed_out = set(islice(cfg.mesh.range.hosts(), len(pinned)))
    low = [name for name, ip in members if ip in handed_out]
    waves, queue = cfg.mesh.join_parallel, list(unpinned)
    order: dict[str, tuple[str, ...]] = {}
    for name, ip in members:
        if ip is None:
            i = unpinned[name]
            order[name] = tuple(pinned) if i < waves else (queue[i - waves],)
        elif ip in handed_out:
            order[name] = tuple(low[low.index(name) - 1:low.index(name)])
        else:
            order[name] = tuple(low[-1:])
    return order


def _in_join_order(joins: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The members ordered so each comes after those it joins after (config order otherwise)."""
    done: dict[str, None] = {}
    while len(done) < len(joins):  # one pass per step of the chain of low pins, plus two
        for member, after in joins.items():
            if member not in done and all(a in done for a in after):
                done[member] = None
    return tuple(done)


def _isp(found: tuple[str, Session], found6: Optional[tuple[str, Session]], exchange: Optional[ExchangePlan]) -> IspPlan:
    router, session = found
    up = session.upstream
    return IspPlan(
        session=session,
        session6=found6[1] if found6 else None,
        router=router,
        router_id=up.mock_router_id or up.neighbor,
        loopbacks=tuple(f"{next(iter(p.hosts()))}/{p.max_prefixlen}" for p in up.mock.announce),
        exchange_address=exchange.isps[up.name] if exchange is not None else None,
        exchange_address6=exchange.isps6[up.name] if exchange is not None and exchange.isps6 else None,
    )


def _probe(cfg: StackConfig, exchange: Optional[ExchangePlan]) -> Optional[ProbePlan]:
    if exchange is None or exchange.probe is None:
        return None
    probe = cfg.lab.probe
    six = exchange.probe6 is not None and probe.prefix6 is not None
    first6 = str(probe.prefix6.network_address + 1) if six else None
    return ProbePlan(probe.asn, exchange.probe, str(next(iter(probe.prefix.hosts()))), exchange.probe6 if six else None, first6)
