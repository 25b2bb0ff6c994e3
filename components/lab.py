"""Wire a stack's plan to its components: hosts, networks, the Netmaker control plane,
mock ISPs, border routers (egress gateways), mesh nodes and monitoring. Returns the stack
outputs.

Everything here comes from the plan (bgp4mesh.plan): each component gets only what it
uses, the daemon configs rendered from the plan, and whether what it carries is secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from bgp4mesh.config import PROBE_NAME
from bgp4mesh.control_exporter import control_exporter_files
from bgp4mesh.edge_rules import render_edge_rules, render_edge_rules6
from bgp4mesh.looking_glass import looking_glass_config
from bgp4mesh.metrics import TARGET_ROUTER, TARGET_UPSTREAM
from bgp4mesh.monitoring import JOB_BIRD, JOB_MEMBER
from bgp4mesh.plan import Member, NodePlan, RouterPlan, StackPlan
from bgp4mesh.prometheus_config import console_pages, live_files, monitoring_files
from bgp4mesh.providers import (
    EgressGateway,
    EgressGatewayArgs,
    InternetGateway,
    InternetGatewayArgs,
    NetmakerNetwork,
    NetmakerNetworkArgs,
)
from bgp4mesh.render import render_border, render_isp, render_probe, render_vrps

from .border_router import BorderRouter, BorderRouterArgs, RouterMesh, Session
from .docker_parts import lab_network
from .hosts import HostContext, hosts as host_contexts
from .mesh_join import MeshAccess, converge
from .mesh_node import MeshNode, MeshNodeArgs
from .mock_isp import MockIsp, MockIspArgs
from .monitoring import Monitoring, MonitoringArgs, MonitoringLink
from .netmaker_server import IMAGE_KINDS, NetmakerServer, NetmakerServerArgs, objects_deleted_with
from .rtr_cache import RtrCache, RtrCacheArgs


@dataclass
class Mesh:
    """The Netmaker side every member needs."""

    network: NetmakerNetwork
    join: MeshAccess


def build(plan: StackPlan) -> dict[str, Any]:
    cfg, stack = plan.model, pulumi.get_stack()
    hosts = host_contexts(plan)
    control = hosts[cfg.netmaker.host]
    links, underlay, exchange = _lab_networks(plan, stack, control)
    server = NetmakerServer(
        "netmaker",
        NetmakerServerArgs(
            netmaker=cfg.netmaker,
            stack=stack,
            network=underlay or "host",
            underlay=plan.underlay,
            images=_server_images(plan, control),
            public_address=str(control.spec.endpoint) if control.spec.endpoint else None,
            monitoring=plan.monitoring is not None,
        ),
        control.opts(),
    )
    pulumi.runtime.register_stack_transformation(objects_deleted_with(server.store))
    mesh = _mesh(plan, server, underlay)
    isps = _mock_isps(plan, stack, control, links, exchange)
    probe = _probe(plan, stack, exchange, control) if plan.probe else None
    caches = _rtr_caches(plan, stack, underlay, control)
    routers, nodes = _members(plan, stack, hosts, links, mesh)
    ready = [r.ready for r in routers.values()] + [n.ready for n in nodes.values()]
    egress = _egress(plan, server, mesh, ready)
    internet = _internet_gateway(plan, server, mesh, ready)
    _converged(plan, hosts, nodes, list(egress.values()) + ([internet] if internet else []))
    monitoring = _monitoring(plan, stack, hosts, underlay, links, server)
    return _outputs(plan, server, routers, nodes, isps, probe, caches, egress, internet, monitoring)


def _mock_isps(plan: StackPlan, stack: str, control: HostContext, links: dict, exchange) -> dict[str, MockIsp]:
    """The lab's mock ISPs, each on its link (and on the exchange when the lab has one)."""
    return {
        isp.name: MockIsp(
            isp.name,
            MockIspArgs(
                stack=stack,
                asn=isp.session.upstream.asn,
                address=str(isp.session.upstream.neighbor),
                **({"address6": str(isp.session6.neighbor)} if isp.session6 else {}),
                router_id=str(isp.router_id),
                loopbacks=list(isp.loopbacks),
                bird_files=render_isp(plan, isp),
                secret_files=plan.secret_files,
                image=control.images.get("bird"),
                link_network=links[isp.name],
                bird_exporter=_listen(plan, JOB_BIRD, TARGET_UPSTREAM, isp.name),
                **({"exchange": (exchange, str(isp.exchange_address))} if isp.exchange_address else {}),
                **({"exchange_address6": str(isp.exchange_address6)} if isp.exchange_address6 else {}),
            ),
            control.opts(),
        )
        for isp in plan.isps
    }


def _outputs(plan: StackPlan, server, routers: dict, nodes: dict, isps: dict, probe, caches: dict, egress: dict, internet, monitoring) -> dict[str, Any]:
    """The stack outputs: what operators and tests read (node addresses above all)."""
    cfg = plan.model
    return {
        "asn": cfg.asn,
        "prefixes": [str(p) for p in cfg.prefixes],
        "border_routers": {
            name: {
                "container": r.container_name,
                "router_id": r.router_id,
                "mesh_ip": r.mesh_ip,
                **({"mesh_ip6": r.mesh_ip6} if cfg.mesh.range6 else {}),
                "upstream_sessions": r.upstream_sessions,
                "egress_ranges": egress[name].ranges if name in egress else [],
                "internet_gateway": name == plan.gateways.internet,
                "maintenance": plan.router(name).spec.maintenance,
            }
            for name, r in routers.items()
        },
        "mesh_nodes": {name: n.mesh_ip for name, n in nodes.items()},
        **({"mesh_nodes_ipv6": {name: n.mesh_ip6 for name, n in nodes.items()}} if cfg.mesh.range6 else {}),
        "mock_isps": {name: {"container": i.container_name, "address": i.peering_address, "asn": i.asn} for name, i in isps.items()},
        **({"probe": {"container": probe.container_name, "address": plan.probe.test_address, "asn": probe.asn}} if probe else {}),
        **({"rtr_caches": {name: {"container": c.container_name, "endpoint": c.endpoint} for name, c in caches.items()}} if caches else {}),
        **({"monitoring": {"prometheus": monitoring.prometheus_url, "container": monitoring.container_name}} if monitoring else {}),
        "netmaker_api": server.api_url,
        "netmaker_endpoint": server.client_endpoint,
        "netmaker_ca_certificate": server.ca_certificate,
    }


def _probe(plan: StackPlan, stack: str, exchange: pulumi.Output[str], control: HostContext) -> MockIsp:
    """The lab's Internet host: an AS of its own on the exchange (a MockIsp without a link)."""
    probe = plan.probe
    return MockIsp(
        PROBE_NAME,
        MockIspArgs(
            stack=stack,
            asn=probe.asn,
            address=str(probe.address),
            router_id=str(probe.address),
            loopbacks=[f"{probe.test_address}/32"] + ([f"{probe.test_address6}/128"] if probe.test_address6 else []),
            **({"address6": str(probe.address6)} if probe.address6 else {}),
            bird_files=render_probe(plan),
            secret_files=False,
            image=control.images.get("bird"),
            link_network=exchange,
        ),
        control.opts(),
    )


def _rtr_caches(plan: StackPlan, stack: str, underlay: Optional[pulumi.Output[str]], control: HostContext) -> dict[str, RtrCache]:
    """A lab's RPKI caches (stayrtr) serving lab.roas, on the underlay where every border router reaches them."""
    lab = plan.model.lab
    if lab is None:
        return {}
    vrps = render_vrps(plan)
    args = lambda c: RtrCacheArgs(  # noqa: E731
        stack=stack, address=str(c.address), port=c.port, network=underlay, vrps=vrps, refresh=lab.roa_refresh, image=control.images.get("rtr"))
    return {name: RtrCache(name, args(c), control.opts()) for name, c in plan.rtr_caches}


def _server_images(plan: StackPlan, control: HostContext) -> dict[str, pulumi.Output[str]]:
    nm = plan.model.netmaker
    if nm.images == "build":
        return {kind: control.images.get(kind) for kind in IMAGE_KINDS}
    return {kind: control.images.pull(kind, nm.pull_image(kind)) for kind in IMAGE_KINDS}


def _lab_networks(plan: StackPlan, stack: str, control: HostContext) -> tuple[dict, Optional[pulumi.Output[str]], Optional[pulumi.Output[str]]]:
    """Lab only: one internal network per peering link, the underlay and the exchange."""
    net = lambda name, p, v6=None: lab_network(name, stack, str(p.subnet), str(p.gateway), control.opts(), v6).name  # noqa: E731
    links = {p.upstream: net(f"link-{p.upstream}", p, (str(p.subnet6), str(p.gateway6)) if p.subnet6 else None) for p in plan.links}
    six = lambda p: (str(p.subnet6), str(p.gateway6)) if p.subnet6 else None  # noqa: E731
    underlay = net("underlay", plan.underlay, six(plan.underlay)) if plan.underlay else None
    exchange = net("exchange", plan.exchange, six(plan.exchange)) if plan.exchange else None
    return links, underlay, exchange


def _mesh(plan: StackPlan, server: NetmakerServer, underlay: Optional[pulumi.Output[str]]) -> Mesh:
    cfg = plan.model
    connection = server.connection
    network = NetmakerNetwork(
        "mesh-network",
        NetmakerNetworkArgs(connection=connection, netid=cfg.mesh.network, address_range=str(cfg.mesh.range), address_range6=str(cfg.mesh.range6) if cfg.mesh.range6 else None),
    )
    # no shared key: each member makes its own (components.mesh_join.MeshJoin), and the
    # network's default key is removed (NetmakerNetwork)
    join = MeshAccess(
        network=network.netid,
        ca_certificate=server.ca_certificate,
        connection=connection,
        underlay_network=underlay,
        offline=cfg.offline,
        wireguard_port=cfg.mesh.wireguard_port,
        ipv6=cfg.mesh.range6 is not None,
    )
    return Mesh(network, join)


def _members(plan: StackPlan, stack: str, hosts, links: dict, mesh: Mesh) -> tuple[dict, dict]:
    """Border routers and mesh nodes, each joining once the members the plan orders it
    after have joined (pinned members first; see bgp4mesh.plan._join_order)."""
    ready: dict[str, pulumi.Resource] = {}
    made: dict[str, Any] = {}
    specs = {m.member.name: m for m in (*plan.routers, *plan.nodes)}
    for name in plan.join_order:
        spec = specs[name]
        after = [ready[n] for n in spec.member.join_after]
        if isinstance(spec, RouterPlan):
            made[name] = _router(plan, stack, spec, hosts[spec.member.host], links, mesh, after)
        else:
            made[name] = _node(plan, stack, spec, hosts[spec.member.host], mesh, after)
        ready[name] = made[name].ready
    return {r.name: made[r.name] for r in plan.routers}, {n.name: made[n.name] for n in plan.nodes}


def _node(plan: StackPlan, stack: str, node: NodePlan, host: HostContext, mesh: Mesh, join_after: list) -> MeshNode:
    return MeshNode(
        node.name,
        MeshNodeArgs(
            stack=stack,
            node=node.spec,
            image=host.images.get("netclient"),
            join=mesh.join,
            endpoint=node.member.endpoint,
            host=host,
            join_after=join_after,
            agent=node.agent,
            edge_rules=render_edge_rules(node.member.edge),
            edge_rules6=render_edge_rules6(node.member.edge),
            exporter=_listen(plan, JOB_MEMBER, "member", node.name),
        ),
        host.opts(),
    )


def _router(plan: StackPlan, stack: str, router: RouterPlan, host: HostContext, links: dict, mesh: Mesh, join_after: list) -> BorderRouter:
    sessions: list[Session] = []
    for s in (s for s in router.sessions if s.version == 4):
        up = s.upstream
        session = Session(upstream=up.name, peer=str(up.neighbor), asn=up.asn, local_address=str(up.local_address))
        if up.link6 is not None:
            session.update(peer6=str(up.neighbor6), local_address6=str(up.local_address6))
        if s.link is not None:
            session["link_network"] = links[up.name]
        sessions.append(session)
    member: Member = router.member
    return BorderRouter(
        router.name,
        BorderRouterArgs(
            stack=stack,
            router_id=str(router.spec.router_id),
            asn=plan.model.asn,
            sessions=sessions,
            bird_files=render_border(plan, router),
            secret_files=plan.secret_files,
            image=host.images.get("border"),
            host=host,
            mesh=RouterMesh(
                join=mesh.join,
                pinned=str(member.pinned) if member.pinned else None,
                endpoint=member.endpoint,
                underlay6=str(plan.underlay.routers6[router.name]) if plan.underlay and plan.underlay.routers6 else None,
                join_after=join_after,
                agent=router.agent,
                maintenance=router.spec.maintenance,
                edge_rules=render_edge_rules(member.edge),
                edge_rules6=render_edge_rules6(member.edge),
                exporter=_listen(plan, JOB_MEMBER, "member", router.name),
            ),
            bird_exporter=_listen(plan, JOB_BIRD, TARGET_ROUTER, router.name),
            looking_glass=looking_glass_config(plan),
        ),
        host.opts(),
    )


def _listen(plan: StackPlan, job: str, label: str, name: str) -> Optional[str]:
    return plan.monitoring.listen(job, label, name) if plan.monitoring else None


def _monitoring(plan: StackPlan, stack: str, hosts, underlay: Optional[pulumi.Output[str]], links: dict, server: NetmakerServer) -> Optional[Monitoring]:
    """With `monitoring`: Prometheus and Alertmanager on the lab's underlay and every mock
    ISP's link, or with its host's network on a real host, scraping what the plan lists, and
    the control-plane exporter reading Netmaker's API and the broker where the plan says."""
    mon = plan.monitoring
    if mon is None:
        return None
    host = hosts[mon.host]
    return Monitoring(
        "monitoring",
        MonitoringArgs(
            stack=stack,
            image=host.images.get("monitoring"),
            underlay=None if mon.host_network else underlay,
            address=str(mon.address),
            links=[MonitoringLink(network=links[upstream], address=str(address)) for upstream, address in mon.links.items()],
            web=mon.web,
            url=mon.url,
            files=monitoring_files(plan),
            live_files=live_files(plan),
            host=host,
            consoles=console_pages(),
            secret_files=control_exporter_files(
                api_url=server.api_url, ca_certificate=server.ca_certificate, master_key=server.master_key,
                network=plan.model.mesh.network, broker_endpoint=mon.broker, broker_monitor=server.broker_monitor,
            ),
        ),
        host.opts(),
    )


def _egress(plan: StackPlan, server: NetmakerServer, mesh: Mesh, members: list[pulumi.Resource]) -> dict[str, EgressGateway]:
    """Every border router is an egress gateway, declared once every member holds its
    address: netclient v1.6.0 drops a node's egress routes when the server changes its
    address, and the egress's peer update is what installs them again."""
    ranges = [str(x) for v in plan.families for x in plan.egress[v]]
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
        for i, r in enumerate(plan.routers)
    }


def _internet_gateway(plan: StackPlan, server: NetmakerServer, mesh: Mesh, members: list[pulumi.Resource]) -> Optional[InternetGateway]:
    """mesh.internet_gateway: the first border router is every node's way to the whole
    Internet (a Netmaker client uses one internet gateway)."""
    if plan.gateways.internet is None:
        return None
    return InternetGateway(
        "internet-gateway",
        InternetGatewayArgs(
            connection=server.connection,
            network=mesh.network.netid,
            gateway_host_name=plan.gateways.internet,
            client_host_names=[n.name for n in plan.nodes],
        ),
        pulumi.ResourceOptions(depends_on=members),
    )


def _converged(plan: StackPlan, hosts, nodes: dict, egress: list[pulumi.Resource]) -> None:
    """After the egress, every node must still hold its address and a route into the mesh
    for each egress range (the border routers are the gateways: nothing to receive); a
    node that missed a push fetches its state until it does. What each gate checks
    depends on nothing but its own node, so adding or removing a node changes no other
    node's resources."""
    for spec in plan.nodes:
        node = nodes[spec.name]
        converge(
            f"{spec.name}-converged",
            node.container,
            node.mesh_ip,
            list(plan.node_wants),
            hosts[spec.member.host],
            pulumi.ResourceOptions(parent=node, depends_on=egress),
        )
