"""MeshNode: a netclient host on the mesh, holding an address of the AS's block.

`MeshJoin` is what any container needs to join (the border router uses it too):
an identity volume so a restart keeps the same node and address, the TUN device
for userspace WireGuard (netclient uses the kernel's WireGuard when the host has
the module, wireguard-go on the TUN device when not), the CA to trust, and a static
endpoint where one is known (the lab underlay, a host's public address; without
one, netclient finds its endpoint with STUN). Each member joins with an enrollment key
of its own, made once the member is about to join and good for one use: its token is
handed over once, on the stdin of `netclient-join`, and a restart needs none.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from typing import Any, NotRequired, Optional, Sequence, TypedDict

from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from bgp4mesh.agent_config import AGENT_DIR, agent_files, node_config
from bgp4mesh.config import Failover
from bgp4mesh.config import MeshNode as NodeSpec
from bgp4mesh.edge_rules import RULES_PATH
from bgp4mesh.netmaker_api import MEMBER_KEY_SECONDS
from bgp4mesh.providers import EnrollmentKey, EnrollmentKeyArgs
from bgp4mesh.providers.member import MeshMember, MeshMemberArgs

from .docker_parts import docker_name, fixed_name, labels, uploads

if TYPE_CHECKING:
    from .hosts import HostContext


def edge_upload(rules: Optional[str]) -> list[docker.ContainerUploadArgs]:
    """The member's edge firewall (bgp4mesh/edge_rules.py), which the image's entrypoint
    loads before netclient runs; decided by the plan, only applied in the container."""
    return [docker.ContainerUploadArgs(file=RULES_PATH, content=rules)] if rules else []


def member_key_tag(network: str, member: str) -> str:
    """The tag of `member`'s enrollment key: unique on the server, 3-32 characters (hashed
    when longer), never a network's name (those have no '@')."""
    tag = f"{member}@{network}"
    if len(tag) <= 32:
        return tag
    return f"{tag[:21]}~{hashlib.sha256(tag.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class MeshJoin:
    """How to join the mesh; the same for every member."""

    network: pulumi.Input[str]
    """Netmaker network id."""
    ca_certificate: pulumi.Input[str]
    """PEM of the CA that signed the Netmaker API certificate."""
    connection: pulumi.Input[dict]
    """Netmaker connection for the member resource (master key secret)."""
    underlay_network: Optional[pulumi.Input[str]]
    """Docker network carrying the control plane and WireGuard (the lab's Internet);
    None on real hosts, where members run in the host's network namespace."""
    offline: bool
    """A lab: netclient must not call the Internet (public-IP lookups, STUN)."""
    wireguard_port: int = 51821

    def container_args(self, stack: str, name: str, endpoint: Optional[str], parent: pulumi.Resource) -> dict[str, Any]:
        """Container arguments that make `name` a netclient host: on the lab underlay, or
        in the host's network namespace; with a static endpoint when one is known."""
        volume = docker.Volume(
            f"{name}-identity",
            name=docker_name(stack, f"{name}-netclient"),
            labels=[docker.VolumeLabelArgs(**label) for label in labels(stack)],
            opts=fixed_name(parent),
        )
        return {
            "networks": [docker.ContainerNetworksAdvancedArgs(name=self.underlay_network, ipv4_address=endpoint)] if self.underlay_network else [],
            "volumes": [docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/etc/netclient")],
            "devices": [docker.ContainerDeviceArgs(host_path="/dev/net/tun", container_path="/dev/net/tun", permissions="rwm")],
            "uploads": [docker.ContainerUploadArgs(file="/etc/bgp4mesh/ca.pem", content=self.ca_certificate)],
            "envs": [
                f"NETCLIENT_NAME={name}",
                f"NETCLIENT_PORT={self.wireguard_port}",
                f"NETCLIENT_OFFLINE={int(self.offline)}",
                *([f"NETCLIENT_ENDPOINT={endpoint}"] if endpoint else []),
            ],
        }

    def member(
        self,
        name: str,
        host_name: str,
        pinned: Optional[str],
        container: docker.Container,
        host: "HostContext",
        parent: pulumi.Resource,
        join_after: Sequence[pulumi.Resource] = (),
    ) -> tuple[MeshMember, pulumi.Resource]:
        """Join `container` (once `join_after` completed) with a key of its own, then the
        node Netmaker made for `host_name`, pinned when the config pins it, and a gate that
        completes once the container really holds its mesh address (fetching it from the
        server while not)."""
        # Made only now, so it lives seconds before its one use; the token reaches the
        # container only on the join's stdin, never its configuration (`docker inspect`).
        key = EnrollmentKey(
            f"{name}-key",
            EnrollmentKeyArgs(
                connection=self.connection,
                networks=[self.network],
                tags=[pulumi.Output.from_input(self.network).apply(lambda n: member_key_tag(n, host_name))],
                uses=1,
                valid_for_seconds=MEMBER_KEY_SECONDS,
                for_host=host_name,
            ),
            pulumi.ResourceOptions(parent=parent, depends_on=[container, *join_after]),
        )
        # A member keeps its identity on its volume: re-run with a new key (an update), the
        # script finds the host a member already and reads no token.
        join = host.run(
            f"{name}-join",
            pulumi.Output.all(container.name, self.network).apply(lambda a: shlex.join(["docker", "exec", "-i", a[0], "netclient-join", a[1]])),
            pulumi.ResourceOptions(parent=parent, depends_on=list(join_after)),
            stdin=pulumi.Output.secret(key.token),
            triggers=[container.id],
        )
        member = MeshMember(
            f"{name}-member",
            MeshMemberArgs(connection=self.connection, network=self.network, host_name=host_name, pinned_address=pinned),
            pulumi.ResourceOptions(parent=parent, depends_on=[join]),
        )
        applied = converge(f"{name}-address-applied", container, member.address, [], host, pulumi.ResourceOptions(parent=parent))
        return member, applied


def converge(
    name: str, container: docker.Container, address: pulumi.Input[str], wants: list[str], host: "HostContext", opts: pulumi.ResourceOptions
) -> pulumi.Resource:
    """A command that completes once `container` holds `address` and every `wants`
    (see images/netclient/netclient-converge), pulling from the server meanwhile. It
    runs again for a replaced container and whenever what it checks changes."""
    script = pulumi.Output.all(container.name, address).apply(
        lambda a: shlex.join(["docker", "exec", a[0], "netclient-converge", f"address:{a[1]}", *wants])
    )
    return host.run(name, script, opts, triggers=[container.id])


class MeshNodeArgs(TypedDict):
    node: NodeSpec
    """The node's config: name and optional pinned mesh address."""
    image: pulumi.Input[str]
    """The netclient image."""
    join: MeshJoin
    """How to join the mesh."""
    endpoint: Optional[str]
    """This node's static WireGuard endpoint (lab underlay address, or the host's public
    address); None: found with STUN."""
    host: "HostContext"
    """The host the container runs on (its engine, and commands run there)."""
    join_after: NotRequired[Sequence[pulumi.Resource]]
    """Join only once these completed (the gates of members with pinned addresses)."""
    egress_gateways: NotRequired[list[str]]
    """Several border routers: their mesh addresses in priority order, for the node's
    egress-failover (with `egress_ranges` and `failover`)."""
    egress_ranges: NotRequired[list[str]]
    """The egress ranges egress-failover keeps on the first gateway that answers."""
    failover: NotRequired[Failover]
    """egress-failover's probe timing."""
    edge_rules: NotRequired[str]
    """The node's edge firewall rules (bgp4mesh.edge_rules.render_edge_rules)."""


class MeshNode(pulumi.ComponentResource):
    """A netclient container that joins with an enrollment key of its own and keeps its identity."""

    container_name: pulumi.Output[str]
    mesh_ip: pulumi.Output[str]
    node_id: pulumi.Output[str]
    container: docker.Container
    """The netclient container (for gates that must re-run when it is replaced)."""
    ready: pulumi.Resource
    """Completes once the container holds its mesh address."""

    def __init__(self, name: str, args: MeshNodeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bgp4mesh:index:MeshNode", name, None, opts)
        stack = pulumi.get_stack()
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
            # In the host's namespace runc refuses per-container sysctls: host preparation sets it there.
            sysctls={"net.ipv4.conf.all.src_valid_mark": "1"} if mesh["networks"] else None,
            devices=mesh["devices"],
            volumes=mesh["volumes"],
            uploads=mesh["uploads"] + edge_upload(args.get("edge_rules")) + uploads(self._agent_files(args), AGENT_DIR),
            envs=mesh["envs"],
            restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(**label) for label in labels(stack)],
            opts=fixed_name(self),
        )
        member, self.ready = join.member(
            name, node.name, str(node.ip) if node.ip else None, container, args["host"], self, args.get("join_after", ())
        )
        self.container = container
        self.container_name = container.name
        self.mesh_ip = member.address
        self.node_id = member.node_id
        self.register_outputs({"container_name": self.container_name, "mesh_ip": self.mesh_ip, "node_id": self.node_id})

    @staticmethod
    def _agent_files(args: MeshNodeArgs) -> dict[str, str]:
        """The HA agent's config: egress failover with several gateways (bgp4mesh/agent_config.py)."""
        config = node_config(args.get("egress_gateways") or [], args.get("egress_ranges") or [], args.get("failover") or Failover())
        return agent_files(config)
