"""RtrCache: a lab's RPKI-to-Router cache (stayrtr) serving the VRPs of `lab.roas`."""

from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_docker as docker

from bgp4mesh.render import VRP_PATH

from .docker_parts import docker_name, fixed_name, labels


class RtrCacheArgs(TypedDict):
    stack: str
    """The stack: Docker names are bgp4mesh-<stack>-<name>, labels bgp4mesh.stack=<stack>."""
    address: str
    """Its address on the lab network, where the border routers' `protocol rpki` dials."""
    port: int
    """The RTR port it listens on."""
    network: pulumi.Input[str]
    """Docker network every border router is on (the lab underlay)."""
    vrps: str
    """The VRP file, rpki-client's JSON (bgp4mesh.render.render_vrps)."""
    refresh: int
    """Seconds between its reads of the VRP file (lab.roa_refresh)."""
    image: pulumi.Input[str]
    """The stayrtr image (images/rtr)."""


class RtrCache(pulumi.ComponentResource):
    """What a validator (rpki-client, Routinator) and its RTR server are to a real AS, with
    the VRPs written by hand: RTR version 1, which BIRD 2.0.12 speaks (stayrtr 0.5.1 offers
    version 2 by default). Replacing the file in the container changes what the routers
    see within `refresh` seconds; the file has no build time, so staleness is not checked."""

    container_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]

    def __init__(self, name: str, args: RtrCacheArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:RtrCache", name, None, opts)
        stack = args["stack"]
        bind = f"{args['address']}:{args['port']}"
        container = docker.Container(
            f"{name}-stayrtr",
            name=docker_name(stack, name),
            hostname=name,
            image=args["image"],
            command=[
                "-bind", bind, "-cache", VRP_PATH, "-refresh", str(args["refresh"]), "-checktime=false",
                "-protocol", "1", "-metrics.addr", "127.0.0.1:9847", "-log.verbose=false",
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args["network"], ipv4_address=args["address"])],
            uploads=[docker.ContainerUploadArgs(file=VRP_PATH, content=args["vrps"])],
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=fixed_name(self),
        )
        self.container_name = container.name
        self.endpoint = pulumi.Output.from_input(bind)
        self.register_outputs({"container_name": self.container_name, "endpoint": self.endpoint})
