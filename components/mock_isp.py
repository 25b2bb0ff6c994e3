"""MockIsp: a BIRD router standing in for an upstream ISP in dev/lab stacks."""

from __future__ import annotations

from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_docker as docker

from .docker_parts import IPV6_FORWARD, IPV6_LINK, ROUTER_CAPS, ROUTER_SYSCTLS, docker_name, exporter_envs, fixed_name, labels, uploads


class MockIspArgs(TypedDict):
    stack: str
    """The stack: Docker names are bgp4mesh-<stack>-<name>, labels bgp4mesh.stack=<stack>."""
    asn: int
    """The ISP's AS number."""
    address: str
    """The ISP's address on the peering link."""
    address6: NotRequired[str]
    """Its IPv6 address on the link, where the upstream has an IPv6 session."""
    router_id: str
    """BGP router id."""
    loopbacks: list[str]
    """Addresses put on lo so they answer ping (the first host of each test prefix)."""
    bird_files: dict[str, str]
    """/etc/bird files rendered from the model (bgp4mesh.render.render_isp)."""
    secret_files: bool
    """The files carry a secret (the session's TCP-MD5 password)."""
    image: pulumi.Input[str]
    """The BIRD image (bgp4mesh/bird)."""
    link_network: pulumi.Input[str]
    """Docker network of the peering link."""
    exchange: NotRequired[tuple[pulumi.Input[str], str]]
    """The lab's exchange LAN and this router's address on it, where the mock ISPs peer
    with each other and the probe."""
    exchange_address6: NotRequired[str]
    """Its IPv6 address on the exchange (lab.exchange6)."""
    bird_exporter: NotRequired[Optional[str]]
    """ip:port where prometheus-bird-exporter serves BIRD's sessions and prefix counts (its
    address on the link, a scrape target of the plan); absent or None, no exporter runs."""


class MockIsp(pulumi.ComponentResource):
    """An upstream's stand-in announcing test prefixes (whose first address answers
    ping) and a default route, like a transit upstream. The lab probe is one too: an AS
    beyond the ISPs with a test prefix, on the exchange only."""

    container_name: pulumi.Output[str]
    peering_address: pulumi.Output[str]
    router_id: pulumi.Output[str]
    asn: pulumi.Output[int]

    def __init__(self, name: str, args: MockIspArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:MockIsp", name, None, opts)
        stack = args["stack"]
        networks = [docker.ContainerNetworksAdvancedArgs(name=args["link_network"], ipv4_address=args["address"], ipv6_address=args.get("address6"))]
        if "exchange" in args:
            networks.append(docker.ContainerNetworksAdvancedArgs(name=args["exchange"][0], ipv4_address=args["exchange"][1],
                                                                 ipv6_address=args.get("exchange_address6")))
        container = docker.Container(
            f"{name}-bird",
            name=docker_name(stack, name),
            hostname=name,
            image=args["image"],
            networks_advanced=networks,
            capabilities=ROUTER_CAPS,
            sysctls=ROUTER_SYSCTLS | (IPV6_FORWARD | IPV6_LINK if "address6" in args else {}),
            envs=[f"ISP_ADDRESSES={' '.join(args['loopbacks'])}", "ROUTES_FROM_BGP_ONLY=1", *exporter_envs(bird=args.get("bird_exporter"))],
            uploads=uploads(args["bird_files"], "/etc/bird", secret=args["secret_files"]),
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=fixed_name(self),
        )
        self.container_name = container.name
        self.peering_address = pulumi.Output.from_input(args["address"])
        self.router_id = pulumi.Output.from_input(args["router_id"])
        self.asn = pulumi.Output.from_input(args["asn"])
        self.register_outputs(
            {"container_name": self.container_name, "peering_address": self.peering_address, "router_id": self.router_id, "asn": self.asn}
        )
