"""MockIsp: a BIRD router standing in for an upstream ISP in dev/lab stacks."""

from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_docker as docker

from bgp4mesh.config import StackConfig, Upstream
from bgp4mesh.render import isp_addresses, render_isp

from .docker_parts import ROUTER_CAPS, ROUTER_SYSCTLS, labels, resource_name, uploads


class MockIspArgs(TypedDict):
    config: StackConfig
    """The validated stack; the ISP peers with this AS."""
    upstream: Upstream
    """The upstream this ISP plays; its `mock` section says what it announces."""
    image: pulumi.Input[str]
    """The BIRD image (bgp4mesh/bird)."""
    link_network: pulumi.Input[str]
    """Docker network of the peering link."""


class MockIsp(pulumi.ComponentResource):
    """AS `upstream.asn` at `upstream.neighbor`, announcing test prefixes (whose
    first address answers ping) and a default route, like a transit upstream."""

    container_name: pulumi.Output[str]
    peering_address: pulumi.Output[str]
    router_id: pulumi.Output[str]
    asn: pulumi.Output[int]

    def __init__(self, name: str, args: MockIspArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:MockIsp", name, None, opts)
        cfg, up = args["config"], args["upstream"]
        stack = pulumi.get_stack()
        router_id = str(up.mock.router_id or up.neighbor)
        container = docker.Container(
            f"{name}-bird",
            name=resource_name(stack, up.name),
            hostname=up.name,
            image=args["image"],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args["link_network"], ipv4_address=str(up.neighbor))],
            capabilities=ROUTER_CAPS,
            sysctls=ROUTER_SYSCTLS,
            envs=[f"ISP_ADDRESSES={' '.join(isp_addresses(up))}", "ROUTES_FROM_BGP_ONLY=1"],
            uploads=uploads(render_isp(cfg, up), "/etc/bird"),
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.container_name = container.name
        self.peering_address = pulumi.Output.from_input(str(up.neighbor))
        self.router_id = pulumi.Output.from_input(router_id)
        self.asn = pulumi.Output.from_input(up.asn)
        self.register_outputs(
            {"container_name": self.container_name, "peering_address": self.peering_address, "router_id": self.router_id, "asn": self.asn}
        )
