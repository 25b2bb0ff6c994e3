"""BorderRouter: BIRD announcing the AS's prefixes to every upstream it holds."""

from __future__ import annotations

from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_docker as docker

from bgp4mesh.config import BorderRouter as RouterSpec
from bgp4mesh.config import StackConfig
from bgp4mesh.render import render_border

from .docker_parts import ROUTER_CAPS, ROUTER_SYSCTLS, labels, resource_name, uploads
from .mesh_node import MeshJoin


class BorderRouterArgs(TypedDict):
    config: StackConfig
    """The validated stack: own prefixes, policy, this router's upstreams."""
    router: RouterSpec
    """Which border router this is."""
    image: pulumi.Input[str]
    """The border image (BIRD + netclient)."""
    links: dict[str, pulumi.Input[str]]
    """Upstream name -> Docker network of that peering link (lab). Empty on a real
    host, where the sessions run on the host's own interfaces (host networking)."""
    mesh: NotRequired[MeshJoin]
    """Join the mesh too (netclient in the same container), to be its egress gateway."""
    underlay_address: NotRequired[str]
    """The router's static WireGuard endpoint on the underlay (with `mesh`)."""
    docker_host: NotRequired[str]
    """Endpoint of the Docker engine the container runs on (with `mesh`)."""


class BorderRouter(pulumi.ComponentResource):
    """One container holding the eBGP sessions of `router` with the edge policy
    rendered from the model, and (with `mesh`) netclient beside BIRD, so BIRD and
    the WireGuard interface share one network namespace and restart together."""

    container_name: pulumi.Output[str]
    router_id: pulumi.Output[str]
    asn: pulumi.Output[int]
    peering_addresses: pulumi.Output[list]
    upstream_sessions: pulumi.Output[list]
    mesh_ip: pulumi.Output[Optional[str]]
    member: Optional[pulumi.Resource]
    ready: Optional[pulumi.Resource]

    def __init__(self, name: str, args: BorderRouterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:BorderRouter", name, None, opts)
        cfg, router = args["config"], args["router"]
        stack = pulumi.get_stack()
        sessions = cfg.upstreams_of(router)
        networks = [
            docker.ContainerNetworksAdvancedArgs(name=args["links"][up.name], ipv4_address=str(up.local_address))
            for up in sessions
            if up.name in args["links"]
        ]
        files = uploads(render_border(cfg, router), "/etc/bird")
        envs: pulumi.Input[list] = ["ROUTES_FROM_BGP_ONLY=1"]
        extra: dict = {}
        join = args.get("mesh")
        if join is not None:
            mesh = join.container_args(stack, name, args.get("underlay_address"), self)
            networks += mesh["networks"]
            files += mesh["uploads"]
            envs = mesh["envs"].apply(lambda e: ["ROUTES_FROM_BGP_ONLY=1", *e])
            extra = {"devices": mesh["devices"], "volumes": mesh["volumes"]}
        container = docker.Container(
            f"{name}-router",
            name=resource_name(stack, router.name),
            hostname=router.name,
            image=args["image"],
            networks_advanced=networks,
            network_mode=None if networks else "host",
            capabilities=ROUTER_CAPS,
            sysctls=ROUTER_SYSCTLS,
            envs=envs,
            uploads=files,
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=pulumi.ResourceOptions(parent=self),
            **extra,
        )
        self.member = self.ready = None
        self.mesh_ip = pulumi.Output.from_input(None)
        if join is not None:
            pinned = str(router.mesh_ip) if router.mesh_ip else None
            self.member, self.ready = join.member(name, router.name, pinned, container, args["docker_host"], self)
            self.mesh_ip = self.member.address
        self.container_name = container.name
        self.router_id = pulumi.Output.from_input(str(router.router_id))
        self.asn = pulumi.Output.from_input(cfg.asn)
        self.peering_addresses = pulumi.Output.from_input([str(up.local_address) for up in sessions])
        self.upstream_sessions = pulumi.Output.from_input(
            [{"upstream": up.name, "peer": str(up.neighbor), "asn": up.asn} for up in sessions]
        )
        self.register_outputs(
            {
                "container_name": self.container_name,
                "router_id": self.router_id,
                "asn": self.asn,
                "peering_addresses": self.peering_addresses,
                "upstream_sessions": self.upstream_sessions,
                "mesh_ip": self.mesh_ip,
            }
        )
