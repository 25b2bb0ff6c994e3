"""MeshNode: a netclient host on the mesh, holding an address of the AS's block
(joined as components/mesh_join.py describes; the border router joins the same way)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_docker as docker

from bgp4mesh.agent_config import AGENT_DIR, AgentConfig, agent_files
from bgp4mesh.config import MeshNode as NodeSpec
from bgp4mesh.edge_rules import RULES6_PATH, RULES_PATH

from .docker_parts import docker_name, exporter_envs, fixed_name, labels, uploads
from .mesh_join import MeshAccess, MeshJoin, MeshJoinArgs

if TYPE_CHECKING:
    from .hosts import HostContext


def edge_upload(rules: Optional[str], rules6: Optional[str] = None) -> list[docker.ContainerUploadArgs]:
    """The member's edge firewall (bgp4mesh/edge_rules.py), which the image's entrypoint
    loads before netclient runs; decided by the plan, only applied in the container. The
    IPv6 rules go up only where they were rendered (the member has IPv6)."""
    files = ((RULES_PATH, rules), (RULES6_PATH, rules6))
    return [docker.ContainerUploadArgs(file=path, content=text) for path, text in files if text]


class MeshNodeArgs(TypedDict):
    stack: str
    """The stack: Docker names are bgp4mesh-<stack>-<name>, labels bgp4mesh.stack=<stack>."""
    node: NodeSpec
    """The node's config: name and optional pinned mesh address."""
    image: pulumi.Input[str]
    """The netclient image."""
    join: MeshAccess
    """How to join the mesh."""
    endpoint: Optional[str]
    """This node's static WireGuard endpoint (lab underlay address, or the host's public
    address); None: found with STUN."""
    host: "HostContext"
    """The host the container runs on (its engine, and commands run there)."""
    join_after: NotRequired[Sequence[pulumi.Resource]]
    """Join only once these completed (the gates of members with pinned addresses)."""
    agent: NotRequired[Optional[AgentConfig]]
    """Its HA agent's settings (bgp4mesh.agent_config): egress failover with several gateways."""
    edge_rules: NotRequired[str]
    """The node's edge firewall rules (bgp4mesh.edge_rules.render_edge_rules)."""
    edge_rules6: NotRequired[Optional[str]]
    """Its IPv6 rules (render_edge_rules6); absent or None where it has no IPv6."""
    exporter: NotRequired[Optional[str]]
    """ip:port where the member exporter serves WireGuard and agent state (a scrape target of
    the plan); absent or None, no exporter runs."""


class MeshNode(pulumi.ComponentResource):
    """A netclient container that joins with an enrollment key of its own and keeps its identity."""

    container_name: pulumi.Output[str]
    mesh_ip: pulumi.Output[str]
    mesh_ip6: pulumi.Output[Optional[str]]
    node_id: pulumi.Output[str]
    container: docker.Container
    """The netclient container (for gates that must re-run when it is replaced)."""
    ready: pulumi.Resource
    """Completes once the container holds its mesh address."""

    def __init__(self, name: str, args: MeshNodeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:MeshNode", name, None, opts)
        stack = args["stack"]
        node, join = args["node"], args["join"]
        mesh = join.container_args(stack, name, args["endpoint"], self)
        container = docker.Container(
            f"{name}-netclient",
            name=docker_name(stack, node.name),
            hostname=node.name,
            image=args["image"],
            networks_advanced=mesh["networks"],
            network_mode=None if mesh["networks"] else "host",
            capabilities=docker.ContainerCapabilitiesArgs(adds=["NET_ADMIN", "NET_RAW"]),
            sysctls=mesh["sysctls"],
            devices=mesh["devices"],
            volumes=mesh["volumes"],
            uploads=mesh["uploads"] + edge_upload(args.get("edge_rules"), args.get("edge_rules6")) + uploads(agent_files(args.get("agent")), AGENT_DIR),
            envs=mesh["envs"] + exporter_envs(member=args.get("exporter")),
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=fixed_name(self),
        )
        member = MeshJoin(
            name,
            MeshJoinArgs(
                access=join, host_name=node.name, pinned=str(node.ip) if node.ip else None,
                container=container, host=args["host"], join_after=args.get("join_after", ()),
            ),
            self,
        )
        self.ready = member.ready
        self.container = container
        self.container_name = container.name
        self.mesh_ip, self.mesh_ip6 = member.address, member.address6
        self.node_id = member.node_id
        self.register_outputs({"container_name": self.container_name, "mesh_ip": self.mesh_ip, "mesh_ip6": self.mesh_ip6, "node_id": self.node_id})
