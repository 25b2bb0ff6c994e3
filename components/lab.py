"""Assemble a stack from its validated config: hosts, networks, the Netmaker
control plane, mock ISPs, border routers (egress gateways) and mesh nodes.
Returns the stack outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker

from bgp4mesh.addressing import link_plans, underlay_plan
from bgp4mesh.config import StackConfig
from bgp4mesh.providers import (
    EgressGateway,
    EgressGatewayArgs,
    EnrollmentKey,
    EnrollmentKeyArgs,
    NetmakerNetwork,
    NetmakerNetworkArgs,
)

from .border_router import BorderRouter, BorderRouterArgs
from .docker_parts import ImageSet, lab_network
from .mesh_node import MeshJoin, MeshNode, MeshNodeArgs
from .mock_isp import MockIsp, MockIspArgs
from .netmaker_server import NetmakerServer, NetmakerServerArgs


class HostContext:
    """One Docker engine: its provider and the images built on it."""

    def __init__(self, name: str, endpoint: str):
        self.endpoint = endpoint
        self.provider = docker.Provider(f"docker-{name}", host=endpoint)
        self.images = ImageSet(prefix=f"{name}-", opts=pulumi.ResourceOptions(provider=self.provider))

    def opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(providers={"docker": self.provider}, **kwargs)


def build(cfg: StackConfig) -> dict[str, Any]:
    stack = pulumi.get_stack()
    hosts = {h.name: HostContext(h.name, h.docker) for h in cfg.hosts}
    control = hosts[cfg.netmaker.host]
    plan = underlay_plan(cfg) if cfg.lab is not None else None

    links, underlay = {}, None
    if plan is not None:
        links = {
            p.upstream: lab_network(f"link-{p.upstream}", stack, str(p.subnet), str(p.gateway), control.opts()).name
            for p in link_plans(cfg)
        }
        underlay = lab_network("underlay", stack, str(plan.subnet), str(plan.gateway), control.opts()).name

    server = NetmakerServer(
        "netmaker",
        NetmakerServerArgs(netmaker=cfg.netmaker, stack=stack, network=underlay or "host", underlay=plan),
        control.opts(),
    )
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
    key = EnrollmentKey(
        "mesh-key",
        EnrollmentKeyArgs(connection=connection, networks=[network.netid], tags=[f"{cfg.mesh.network}-members"], unlimited=True),
    )
    join = MeshJoin(
        network=network.netid,
        token=key.token,
        ca_certificate=server.ca_certificate,
        connection=connection,
        underlay_network=underlay or "host",
        wireguard_port=cfg.mesh.wireguard_port,
    )

    isps = {
        up.name: MockIsp(
            up.name,
            MockIspArgs(config=cfg, upstream=up, image=control.images.get("bird"), link_network=links[up.name]),
            control.opts(),
        )
        for up in cfg.upstreams
        if up.mock is not None
    }
    routers = {}
    for r in cfg.border_routers:
        host = hosts[r.host]
        args = BorderRouterArgs(
            config=cfg, router=r, image=host.images.get("border"), links=links, mesh=join, docker_host=host.endpoint
        )
        if plan is not None:
            args["underlay_address"] = str(plan.routers[r.name])
        routers[r.name] = BorderRouter(r.name, args, host.opts())
    nodes = {
        n.name: MeshNode(
            n.name,
            MeshNodeArgs(
                node=n,
                image=hosts[n.host].images.get("netclient"),
                join=join,
                underlay_address=str(plan.nodes[n.name]) if plan else None,
                docker_host=hosts[n.host].endpoint,
            ),
            hosts[n.host].opts(depends_on=[routers[cfg.border_routers[0].name].member]),
        )
        for n in cfg.mesh.nodes
    }
    # The egress is declared after every member has joined and been pinned: netclient
    # v1.6.0 drops a node's egress routes when the server changes its address, and the
    # egress's peer update is what installs them again (so: after every address is held).
    members = [r.ready for r in routers.values()] + [n.ready for n in nodes.values()]
    egress = {
        r.name: EgressGateway(
            f"{r.name}-egress",
            EgressGatewayArgs(
                connection=connection,
                network=network.netid,
                gateway_host_name=r.name,
                ranges=[str(x) for x in cfg.mesh.egress_ranges],
                nat=False,  # mesh addresses are public: routed, not translated
                metric=256,
            ),
            pulumi.ResourceOptions(depends_on=members),
        )
        for r in cfg.border_routers
    }
    return {
        "asn": cfg.asn,
        "prefixes": [str(p) for p in cfg.prefixes],
        "border_routers": {
            name: {
                "container": r.container_name,
                "router_id": r.router_id,
                "mesh_ip": r.mesh_ip,
                "upstream_sessions": r.upstream_sessions,
                "egress_ranges": egress[name].ranges,
            }
            for name, r in routers.items()
        },
        "mesh_nodes": {name: n.mesh_ip for name, n in nodes.items()},
        "mock_isps": {name: {"container": i.container_name, "address": i.peering_address, "asn": i.asn} for name, i in isps.items()},
        "netmaker_api": server.api_url,
        "netmaker_endpoint": server.client_endpoint,
        "netmaker_ca_certificate": server.ca_certificate,
        "netmaker_master_key": server.master_key,
        "enrollment_token": pulumi.Output.secret(key.token),
    }
