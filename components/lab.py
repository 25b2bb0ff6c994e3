"""Assemble a stack from its validated config: hosts, networks, the Netmaker
control plane, mock ISPs, border routers (egress gateways) and mesh nodes.
Returns the stack outputs.

Each component gets only what it uses: the daemon configs rendered from the model,
addresses from the address plan, and whether what it carries is secret."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any, Optional

import pulumi

from bgp4mesh.addressing import UnderlayPlan, exchange_plan, ibgp_addresses, link_plans, underlay_plan
from bgp4mesh.config import PROBE_NAME, RTR_CACHE_NAME, StackConfig
from bgp4mesh.edge_rules import edge_plan, render_edge_rules
from bgp4mesh.providers import (
    EgressGateway,
    EgressGatewayArgs,
    InternetGateway,
    InternetGatewayArgs,
    NetmakerNetwork,
    NetmakerNetworkArgs,
)
from bgp4mesh.render import isp_addresses, probe_address, render_border, render_isp, render_probe, render_vrps

from .border_router import BorderRouter, BorderRouterArgs, Session
from .docker_parts import lab_network
from .hosts import HostContext, hosts as host_contexts
from .mesh_node import MeshJoin, MeshNode, MeshNodeArgs, converge
from .mock_isp import MockIsp, MockIspArgs
from .netmaker_server import IMAGE_KINDS, NetmakerServer, NetmakerServerArgs
from .rtr_cache import RtrCache, RtrCacheArgs

RENDERED_FROM = frozenset({"asn", "prefixes", "policy", "upstreams", "border_routers", "rpki"})
"""Top-level config keys the BIRD configs are rendered from: if any came in secret,
the rendered files are secret too."""


@dataclass
class Mesh:
    """The Netmaker side every member needs."""

    network: NetmakerNetwork
    join: MeshJoin


def build(cfg: StackConfig, secret_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    stack = pulumi.get_stack()
    hosts = host_contexts(cfg)
    control = hosts[cfg.netmaker.host]
    plan = underlay_plan(cfg) if cfg.lab is not None else None
    links, underlay = _lab_networks(cfg, stack, plan, control)
    xplan = exchange_plan(cfg)
    exchange = lab_network("exchange", stack, str(xplan.subnet), str(xplan.gateway), control.opts()).name if xplan else None
    secret_files = bool(secret_keys & RENDERED_FROM) or any(u.password is not None for u in cfg.upstreams)

    server = NetmakerServer(
        "netmaker",
        NetmakerServerArgs(
            netmaker=cfg.netmaker,
            stack=stack,
            network=underlay or "host",
            underlay=plan,
            images=_server_images(cfg, control),
            public_address=str(control.spec.endpoint) if control.spec.endpoint else None,
        ),
        control.opts(),
    )
    mesh = _mesh(cfg, server, underlay)
    isps = _mock_isps(cfg, control, links, exchange, xplan, secret_files)
    probe = _probe(cfg, exchange, str(xplan.probe), control) if xplan and xplan.probe else None
    caches = _rtr_caches(cfg, underlay, control)
    routers, nodes = _members(cfg, hosts, links, plan, mesh, secret_files)
    ready = [r.ready for r in routers.values()] + [n.ready for n in nodes.values()]
    egress = _egress(cfg, server, mesh, ready)
    internet = _internet_gateway(cfg, server, mesh, ready)
    _converged(cfg, hosts, nodes, list(egress.values()) + ([internet] if internet else []))
    return _outputs(cfg, server, routers, nodes, isps, probe, caches, egress, internet)


def _mock_isps(cfg: StackConfig, control: HostContext, links: dict, exchange, xplan, secret_files: bool) -> dict[str, MockIsp]:
    """The lab's mock ISPs, each on its link (and on the exchange when the lab has one)."""
    return {
        up.name: MockIsp(
            up.name,
            MockIspArgs(
                asn=up.asn,
                address=str(up.neighbor),
                router_id=str(up.mock_router_id),
                loopbacks=isp_addresses(up),
                bird_files=render_isp(cfg, up),
                secret_files=secret_files,
                image=control.images.get("bird"),
                link_network=links[up.name],
                **({"exchange": (exchange, str(xplan.isps[up.name]))} if xplan else {}),
            ),
            control.opts(),
        )
        for up in cfg.upstreams
        if up.mock is not None
    }


def _outputs(cfg: StackConfig, server, routers: dict, nodes: dict, isps: dict, probe, caches: dict, egress: dict, internet) -> dict[str, Any]:
    """The stack outputs: what operators and tests read (node addresses above all)."""
    return {
        "asn": cfg.asn,
        "prefixes": [str(p) for p in cfg.prefixes],
        "border_routers": {
            name: {
                "container": r.container_name,
                "router_id": r.router_id,
                "mesh_ip": r.mesh_ip,
                "upstream_sessions": r.upstream_sessions,
                "egress_ranges": egress[name].ranges if name in egress else [],
                "internet_gateway": internet is not None and name == cfg.border_routers[0].name,
                "maintenance": next(x.maintenance for x in cfg.border_routers if x.name == name),
            }
            for name, r in routers.items()
        },
        "mesh_nodes": {name: n.mesh_ip for name, n in nodes.items()},
        "mock_isps": {name: {"container": i.container_name, "address": i.peering_address, "asn": i.asn} for name, i in isps.items()},
        **({"probe": {"container": probe.container_name, "address": probe_address(cfg), "asn": probe.asn}} if probe else {}),
        **({"rtr_caches": {name: {"container": c.container_name, "endpoint": c.endpoint} for name, c in caches.items()}} if caches else {}),
        "netmaker_api": server.api_url,
        "netmaker_endpoint": server.client_endpoint,
        "netmaker_ca_certificate": server.ca_certificate,
    }


def _probe(cfg: StackConfig, exchange: pulumi.Output[str], address: str, control: HostContext) -> MockIsp:
    """The lab's Internet host: an AS of its own on the exchange (a MockIsp without a link)."""
    return MockIsp(
        PROBE_NAME,
        MockIspArgs(
            asn=cfg.lab.probe.asn,
            address=address,
            router_id=address,
            loopbacks=[f"{probe_address(cfg)}/32"],
            bird_files=render_probe(cfg),
            secret_files=False,
            image=control.images.get("bird"),
            link_network=exchange,
        ),
        control.opts(),
    )


def _rtr_caches(cfg: StackConfig, underlay: Optional[pulumi.Output[str]], control: HostContext) -> dict[str, RtrCache]:
    """A lab's RPKI caches (stayrtr) serving lab.roas, on the underlay where every border router reaches them."""
    if cfg.lab is None:
        return {}
    vrps = render_vrps(cfg)
    args = lambda c: RtrCacheArgs(  # noqa: E731
        address=str(c.address), port=c.port, network=underlay, vrps=vrps, refresh=cfg.lab.roa_refresh, image=control.images.get("rtr"))
    names = [RTR_CACHE_NAME.format(n=i + 1) for i in range(len(cfg.rtr_caches))]
    return {name: RtrCache(name, args(c), control.opts()) for name, c in zip(names, cfg.rtr_caches)}


def _server_images(cfg: StackConfig, control: HostContext) -> dict[str, pulumi.Output[str]]:
    nm = cfg.netmaker
    if nm.images == "build":
        return {kind: control.images.get(kind) for kind in IMAGE_KINDS}
    return {kind: control.images.pull(kind, nm.pull_image(kind)) for kind in IMAGE_KINDS}


def _lab_networks(
    cfg: StackConfig, stack: str, plan: Optional[UnderlayPlan], control: HostContext
) -> tuple[dict[str, pulumi.Output[str]], Optional[pulumi.Output[str]]]:
    """Lab only: one internal network per peering link, and the underlay."""
    if plan is None:
        return {}, None
    links = {
        p.upstream: lab_network(f"link-{p.upstream}", stack, str(p.subnet), str(p.gateway), control.opts()).name
        for p in link_plans(cfg)
    }
    underlay = lab_network("underlay", stack, str(plan.subnet), str(plan.gateway), control.opts()).name
    return links, underlay


def _mesh(cfg: StackConfig, server: NetmakerServer, underlay: Optional[pulumi.Output[str]]) -> Mesh:
    connection = server.connection
    network = NetmakerNetwork(
        "mesh-network",
        NetmakerNetworkArgs(
            connection=connection,
            netid=cfg.mesh.network,
            address_range=str(cfg.mesh.range),
            address_range6=str(cfg.mesh.range6) if cfg.mesh.range6 else None,
        ),
    )
    # no shared key: each member makes its own (MeshJoin.member), and the network's
    # default key is removed (NetmakerNetwork)
    join = MeshJoin(
        network=network.netid,
        ca_certificate=server.ca_certificate,
        connection=connection,
        underlay_network=underlay,
        offline=cfg.offline,
        wireguard_port=cfg.mesh.wireguard_port,
    )
    return Mesh(network, join)


def _members(cfg: StackConfig, hosts, links, plan: Optional[UnderlayPlan], mesh: Mesh, secret_files: bool) -> tuple[dict, dict]:
    """Border routers and mesh nodes, in config order. Netmaker gives a joining node the
    lowest free address before it can be pinned, so members without a pinned address
    join only once every pinned member holds its own. Two pinned members joining at once
    can each be handed the other's address and wait for it forever; that can only happen
    to pins among the lowest addresses (the ones handed out at join), so those join one
    after another and the others at once."""
    routers: dict[str, BorderRouter] = {}
    nodes: dict[str, MeshNode] = {}
    pinned_ready: list[pulumi.Resource] = []
    pins = [r.mesh_ip for r in cfg.border_routers if r.mesh_ip] + [n.ip for n in cfg.mesh.nodes if n.ip]
    handed_out = set(islice(cfg.mesh.range.hosts(), len(pins)))
    low: list[pulumi.Resource] = []  # the gate of the last member pinned to a low address

    def after(pinned_address) -> list:
        if pinned_address is None:
            return pinned_ready
        return low[-1:] if pinned_address in handed_out else []

    for pinned in (True, False):
        for r in (r for r in cfg.border_routers if (r.mesh_ip is not None) == pinned):
            routers[r.name] = _router(cfg, r, hosts[r.host], links, plan, mesh, secret_files, after(r.mesh_ip))
            low += [routers[r.name].ready] if r.mesh_ip in handed_out else []
        for n in (n for n in cfg.mesh.nodes if (n.ip is not None) == pinned):
            nodes[n.name] = _node(cfg, n, hosts[n.host], plan, mesh, after(n.ip))
            low += [nodes[n.name].ready] if n.ip in handed_out else []
        if pinned:
            pinned_ready = [m.ready for m in (*routers.values(), *nodes.values())]
    return {r.name: routers[r.name] for r in cfg.border_routers}, {n.name: nodes[n.name] for n in cfg.mesh.nodes}


def _endpoint(host: HostContext, lab_address) -> Optional[str]:
    """A member's static WireGuard endpoint: its lab underlay address, else its host's
    public address; None behind NAT (STUN finds it)."""
    address = lab_address if lab_address is not None else host.spec.endpoint
    return str(address) if address is not None else None


def _node(cfg, node, host: HostContext, plan: Optional[UnderlayPlan], mesh: Mesh, join_after: list) -> MeshNode:
    return MeshNode(
        node.name,
        MeshNodeArgs(
            node=node,
            image=host.images.get("netclient"),
            join=mesh.join,
            endpoint=_endpoint(host, plan.nodes[node.name] if plan else None),
            host=host,
            join_after=join_after,
            egress_gateways=[str(r.mesh_ip) for r in cfg.border_routers if r.mesh_ip is not None],
            egress_ranges=[str(x) for x in cfg.mesh.egress_ranges if x.version == 4],
            failover=cfg.mesh.failover,
            edge_rules=render_edge_rules(edge_plan(cfg, node)),
        ),
        host.opts(),
    )


def _router(
    cfg, router, host: HostContext, links, plan: Optional[UnderlayPlan], mesh: Mesh, secret_files: bool, join_after: list
) -> BorderRouter:
    sessions: list[Session] = []
    for up in cfg.upstreams_of(router):
        session = Session(upstream=up.name, peer=str(up.neighbor), asn=up.asn, local_address=str(up.local_address))
        if up.name in links:
            session["link_network"] = links[up.name]
        sessions.append(session)
    return BorderRouter(
        router.name,
        BorderRouterArgs(
            router_id=str(router.router_id),
            asn=cfg.asn,
            sessions=sessions,
            bird_files=render_border(cfg, router),
            secret_files=secret_files,
            image=host.images.get("border"),
            mesh=mesh.join,
            mesh_ip=str(router.mesh_ip) if router.mesh_ip else None,
            endpoint=_endpoint(host, plan.routers[router.name] if plan else None),
            host=host,
            join_after=join_after,
            mesh_range=str(cfg.mesh.range),
            gateways=[(str(r.mesh_ip), str(a)) for r, a in zip(cfg.border_routers, _ibgp_in_order(cfg)) if a is not None],
            failover=cfg.mesh.failover,
            maintenance=router.maintenance,
            edge_rules=render_edge_rules(edge_plan(cfg, router)),
        ),
        host.opts(),
    )


def _ibgp_in_order(cfg: StackConfig) -> list:
    addresses = ibgp_addresses(cfg)
    return [addresses.get(r.name) for r in cfg.border_routers]


def _egress(cfg: StackConfig, server: NetmakerServer, mesh: Mesh, members: list[pulumi.Resource]) -> dict[str, EgressGateway]:
    """Every border router is an egress gateway, declared once every member holds its
    address: netclient v1.6.0 drops a node's egress routes when the server changes its
    address, and the egress's peer update is what installs them again."""
    ranges = [str(x) for x in cfg.mesh.egress_ranges]
    if not ranges:
        return {}
    # Netmaker v1.6.0 CE: one routing node per egress object ("can only set one routing node
    # on CE"), so each router has its own objects for the same ranges; their metrics follow
    # the priority order, and the nodes' egress-failover picks the gateway that serves.
    return {
        r.name: EgressGateway(
            f"{r.name}-egress",
            EgressGatewayArgs(
                connection=server.connection,
                network=mesh.network.netid,
                gateway_host_name=r.name,
                ranges=ranges,
                nat=False,  # mesh addresses are public: routed, not translated
                metric=256 + i,
            ),
            pulumi.ResourceOptions(depends_on=members),
        )
        for i, r in enumerate(cfg.border_routers)
    }


def _internet_gateway(cfg: StackConfig, server: NetmakerServer, mesh: Mesh, members: list[pulumi.Resource]) -> Optional[InternetGateway]:
    """mesh.internet_gateway: the first border router is every node's way to the whole
    Internet (a Netmaker client uses one internet gateway)."""
    if not cfg.mesh.internet_gateway:
        return None
    return InternetGateway(
        "internet-gateway",
        InternetGatewayArgs(
            connection=server.connection,
            network=mesh.network.netid,
            gateway_host_name=cfg.border_routers[0].name,
            client_host_names=[n.name for n in cfg.mesh.nodes],
        ),
        pulumi.ResourceOptions(depends_on=members),
    )


def _converged(cfg: StackConfig, hosts, nodes: dict, egress: list[pulumi.Resource]) -> None:
    """After the egress, every node must still hold its address and a route into the mesh
    for each egress range (the border routers are the gateways: nothing to receive); a
    node that missed a push fetches its state until it does. What each gate checks
    depends on nothing but its own node, so adding or removing a node changes no other
    node's resources."""
    routes = [f"route:{r}" for r in cfg.mesh.egress_ranges if r.version == 4] + ["internet"] * cfg.mesh.internet_gateway
    for spec in cfg.mesh.nodes:
        node = nodes[spec.name]
        converge(
            f"{spec.name}-converged",
            node.container,
            node.mesh_ip,
            routes,
            hosts[spec.host],
            pulumi.ResourceOptions(parent=node, depends_on=egress),
        )
