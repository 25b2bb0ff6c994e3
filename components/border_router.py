"""BorderRouter: BIRD announcing the AS's prefixes to every upstream it holds."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_docker as docker

from bgp4mesh.agent_config import AGENT_DIR, AgentConfig, agent_files
from bgp4mesh.looking_glass import LG_DIR, LG_FILE

from .docker_parts import IPV6_FORWARD, IPV6_LINK, IPV6_ON, ROUTER_CAPS, ROUTER_SYSCTLS, docker_name, exporter_envs, fixed_name, labels, uploads
from .mesh_join import MeshAccess, MeshJoin, MeshJoinArgs
from .mesh_node import edge_upload

if TYPE_CHECKING:
    from .hosts import HostContext


class Session(TypedDict):
    """One eBGP session of the router, as the stack outputs show it."""

    upstream: str
    peer: str
    asn: int
    local_address: str
    peer6: NotRequired[str]
    """The upstream's IPv6 address, where it has an IPv6 session (a second session, IPv6 routes only)."""
    local_address6: NotRequired[str]
    """The router's IPv6 address on the same link, with peer6."""
    link_network: NotRequired[pulumi.Input[str]]
    """Docker network of the peering link (lab); absent on a real host, where the
    session runs on the host's own interfaces (host networking)."""


@dataclass(frozen=True)
class RouterMesh:
    """The router's side of the mesh: netclient in the same container joins it, and the
    router serves as an egress gateway (its HA agent, images/netclient/agent)."""

    join: MeshAccess
    """How to join the mesh."""
    pinned: Optional[str]
    """Pinned mesh address; None lets Netmaker assign one."""
    endpoint: Optional[str]
    """The router's static WireGuard endpoint: its lab underlay address or its host's public address."""
    join_after: Sequence[pulumi.Resource]
    """Join only once these completed."""
    agent: AgentConfig
    """Its HA agent's settings (bgp4mesh.agent_config): sessions, gateways, probe timing."""
    maintenance: bool
    """Drained for maintenance: applied in place by `border-health maintenance`."""
    edge_rules: str
    """The router's edge firewall: anti-spoofing on its uplinks, the forward path into the
    mesh, its own mesh address (bgp4mesh.edge_rules.render_edge_rules)."""
    exporter: Optional[str] = None
    """ip:port where the member exporter serves WireGuard and agent state (a scrape target
    of the plan); None, no exporter runs."""
    edge_rules6: Optional[str] = None
    """The same in IPv6 (render_edge_rules6); None where the router has no IPv6."""
    underlay6: Optional[str] = None
    """Its IPv6 address on the lab underlay (lab.underlay6): its IPv6 iBGP sessions run there."""


class BorderRouterArgs(TypedDict):
    stack: str
    """The stack: Docker names are bgp4mesh-<stack>-<name>, labels bgp4mesh.stack=<stack>."""
    router_id: str
    """BGP router id."""
    asn: int
    """Our AS number."""
    sessions: list[Session]
    """The router's upstream sessions."""
    bird_files: dict[str, str]
    """/etc/bird files rendered from the model (bgp4mesh.render.render_border)."""
    secret_files: bool
    """The files carry a secret (a TCP-MD5 password, or config that came in secret)."""
    image: pulumi.Input[str]
    """The border image (BIRD + netclient)."""
    host: "HostContext"
    """The host the container runs on (its engine, and commands run there)."""
    mesh: NotRequired[RouterMesh]
    """Join the mesh too, to be its egress gateway."""
    bird_exporter: NotRequired[Optional[str]]
    """ip:port where prometheus-bird-exporter serves BIRD's sessions and prefix counts (a
    scrape target of the plan); absent or None, no exporter runs."""
    looking_glass: NotRequired[Optional[str]]
    """The looking glass's JSON config (bgp4mesh.looking_glass), uploaded where the image
    starts the service when it finds it (it runs beside netclient: with `mesh` only)."""


class BorderRouter(pulumi.ComponentResource):
    """One container holding the router's eBGP sessions with the edge policy rendered
    from the model, and (with `mesh`) netclient beside BIRD, so BIRD and the WireGuard
    interface share one network namespace and restart together."""

    container_name: pulumi.Output[str]
    router_id: pulumi.Output[str]
    asn: pulumi.Output[int]
    upstream_sessions: pulumi.Output[list]
    mesh_ip: pulumi.Output[Optional[str]]
    mesh_ip6: pulumi.Output[Optional[str]]
    member: Optional[pulumi.Resource]
    ready: Optional[pulumi.Resource]

    def __init__(self, name: str, args: BorderRouterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:BorderRouter", name, None, opts)
        stack = args["stack"]
        sessions = args["sessions"]
        networks = [
            docker.ContainerNetworksAdvancedArgs(name=s["link_network"], ipv4_address=s["local_address"], ipv6_address=s.get("local_address6"))
            for s in sessions
            if "link_network" in s
        ]
        files = uploads(args["bird_files"], "/etc/bird", secret=args["secret_files"])
        # Its own namespace (lab links): Docker's default route goes, BGP's replaces it. In
        # a host's namespace the host keeps its routes (BIRD's come with their own metric).
        envs = ["ROUTES_FROM_BGP_ONLY=1"] if networks else []
        envs += exporter_envs(bird=args.get("bird_exporter"))
        extra: dict = {}
        sysctls = ROUTER_SYSCTLS | (IPV6_LINK if any("local_address6" in s for s in sessions) else {})
        mesh_args = args.get("mesh")
        if mesh_args is not None:
            mesh = mesh_args.join.container_args(stack, name, mesh_args.endpoint, self, mesh_args.underlay6)
            networks += mesh["networks"]
            files += mesh["uploads"] + edge_upload(mesh_args.edge_rules, mesh_args.edge_rules6) + uploads(agent_files(mesh_args.agent), AGENT_DIR)
            files += uploads({LG_FILE: args["looking_glass"]}, LG_DIR) if args.get("looking_glass") else []
            envs += ["NETCLIENT=1", *mesh["envs"], *exporter_envs(member=mesh_args.exporter)]
            extra = {"devices": mesh["devices"], "volumes": mesh["volumes"]}
            sysctls |= (IPV6_ON | IPV6_FORWARD) if mesh_args.join.ipv6 else {}
        container = docker.Container(
            f"{name}-router",
            name=docker_name(stack, name),
            hostname=name,
            image=args["image"],
            networks_advanced=networks,
            network_mode=None if networks else "host",
            capabilities=ROUTER_CAPS,
            # runc refuses per-container sysctls in the host's namespace: host preparation sets them
            sysctls=sysctls if networks else None,
            envs=envs,
            uploads=files,
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=fixed_name(self),
            **extra,
        )
        self._join_mesh(name, args, container)
        self.container_name = container.name
        self.router_id = pulumi.Output.from_input(args["router_id"])
        self.asn = pulumi.Output.from_input(args["asn"])
        self.upstream_sessions = pulumi.Output.from_input(  # one per upstream and family
            [{"upstream": s["upstream"], "peer": s[peer], "asn": s["asn"]} for s in sessions for peer in ("peer", "peer6") if peer in s]
        )
        self.register_outputs(
            {
                "container_name": self.container_name,
                "router_id": self.router_id,
                "asn": self.asn,
                "upstream_sessions": self.upstream_sessions,
                "mesh_ip": self.mesh_ip,
                "mesh_ip6": self.mesh_ip6,
            }
        )

    def _join_mesh(self, name: str, args: BorderRouterArgs, container: docker.Container) -> None:
        """With `mesh`: the router's member (its mesh address) and its maintenance switch,
        set in border-health after every (re)creation of the container."""
        self.member = self.ready = None
        self.mesh_ip = self.mesh_ip6 = pulumi.Output.from_input(None)
        mesh = args.get("mesh")
        if mesh is None:
            return
        self.member = MeshJoin(
            name,
            MeshJoinArgs(access=mesh.join, host_name=name, pinned=mesh.pinned, container=container, host=args["host"], join_after=mesh.join_after),
            self,
        )
        self.ready = self.member.ready
        self.mesh_ip, self.mesh_ip6 = self.member.address, self.member.address6
        on = "on" if mesh.maintenance else "off"
        args["host"].run(
            f"{name}-maintenance",
            container.name.apply(lambda c: shlex.join(["docker", "exec", c, "border-health", "maintenance", on])),
            pulumi.ResourceOptions(parent=self),
            triggers=[container.id],
        )

