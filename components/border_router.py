"""BorderRouter: BIRD announcing the AS's prefixes to every upstream it holds."""

from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_docker as docker

from bgp4mesh.config import BorderRouter as RouterSpec
from bgp4mesh.config import StackConfig
from bgp4mesh.render import render_border

from .docker_parts import ROUTER_CAPS, ROUTER_SYSCTLS, labels, resource_name, uploads


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


class BorderRouter(pulumi.ComponentResource):
    """One container holding the eBGP sessions of `router` with the edge policy
    rendered from the model; the mesh half is added by `attach_mesh`."""

    container_name: pulumi.Output[str]
    router_id: pulumi.Output[str]
    asn: pulumi.Output[int]
    peering_addresses: pulumi.Output[list]
    upstream_sessions: pulumi.Output[list]

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
        container = docker.Container(
            f"{name}-router",
            name=resource_name(stack, router.name),
            hostname=router.name,
            image=args["image"],
            networks_advanced=networks,
            network_mode=None if networks else "host",
            capabilities=ROUTER_CAPS,
            sysctls=ROUTER_SYSCTLS,
            envs=["ROUTES_FROM_BGP_ONLY=1"],
            uploads=uploads(render_border(cfg, router), "/etc/bird"),
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=pulumi.ResourceOptions(parent=self),
        )
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
            }
        )
