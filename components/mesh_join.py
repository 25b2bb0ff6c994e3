"""Joining the mesh: what every member's container needs (`MeshAccess`: an identity
volume so a restart keeps the same node and address, the TUN device for userspace
WireGuard, the CA to trust, a static endpoint where one is known), and `MeshJoin`, what
makes a container a member (resources of the component that owns the container).

netclient uses the kernel's WireGuard when the host has the module, wireguard-go on the TUN
device when not; without a static endpoint it finds its own with STUN. Each member joins
with an enrollment key of its own, made once the member is about to join and good for one
use: its token is handed over once, on the stdin of `netclient-join`, and a restart needs none.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence, TypedDict

import pulumi
import pulumi_docker as docker

from bgp4mesh.netmaker_api import MEMBER_KEY_SECONDS
from bgp4mesh.providers import EnrollmentKey, EnrollmentKeyArgs
from bgp4mesh.providers.member import MeshMember, MeshMemberArgs

from .docker_parts import IPV6_ON, MEMBER_SYSCTLS, docker_name, fixed_name, labels

if TYPE_CHECKING:
    from .hosts import HostContext


def member_key_tag(network: str, member: str) -> str:
    """The tag of `member`'s enrollment key: unique on the server, 3-32 characters (hashed
    when longer), never a network's name (those have no '@')."""
    tag = f"{member}@{network}"
    if len(tag) <= 32:
        return tag
    return f"{tag[:21]}~{hashlib.sha256(tag.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class MeshAccess:
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
    ipv6: bool = False
    """The mesh has an IPv6 range: a lab container must have IPv6 on for its WireGuard
    interface to take the v6 address (Docker turns it off outside IPv6 networks)."""

    def container_args(self, stack: str, name: str, endpoint: Optional[str], parent: pulumi.Resource, address6: Optional[str] = None) -> dict[str, Any]:
        """Container arguments that make `name` a netclient host: on the lab underlay (at
        `address6` too on a dual-stack one), or in the host's network namespace; with a
        static endpoint when one is known."""
        volume = docker.Volume(
            f"{name}-identity",
            name=docker_name(stack, f"{name}-netclient"),
            labels=[docker.VolumeLabelArgs(**label) for label in labels(stack)],
            opts=fixed_name(parent),
        )
        return {
            "networks": [docker.ContainerNetworksAdvancedArgs(name=self.underlay_network, ipv4_address=endpoint, ipv6_address=address6)]
            if self.underlay_network else [],
            # In the host's namespace runc refuses per-container sysctls: host preparation sets them there.
            "sysctls": (MEMBER_SYSCTLS | (IPV6_ON if self.ipv6 else {})) if self.underlay_network else None,
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


def join_script(container: str, network: str, wants: Sequence[str]) -> str:
    """`netclient-join` in `container` (images/netclient/netclient-join), then waiting for
    `wants` ("{network}" stands for the network's id)."""
    return shlex.join(["docker", "exec", "-i", container, "netclient-join", network, *(w.format(network=network) for w in wants)])


class MeshJoinArgs(TypedDict):
    access: MeshAccess
    """How to join the mesh."""
    host_name: str
    """The member's name in Netmaker (its netclient host name)."""
    pinned: Optional[str]
    """Its pinned mesh address; None lets Netmaker assign one."""
    container: docker.Container
    """The container that joins (netclient runs in it)."""
    host: "HostContext"
    """The host the container runs on (commands run there)."""
    join_after: Sequence[pulumi.Resource]
    """Join only once these completed (see bgp4mesh.plan's join order)."""


JOIN_PARTS = ("key", "join", "member", "address-applied")
"""The suffixes of a member's join resources (`<member>-<part>`): what a bench times as the join."""
MESH_JOIN_TYPE = "bgp4mesh:index:MeshJoin"
"""The component the join's resources had for parent up to issue #18 (aliased, see MeshJoin)."""


def former_parent(owner_urn: str, name: str) -> str:
    """The URN the MeshJoin component `name` under `owner_urn` had: the owner's type chain
    with MeshJoin's type appended (urn:pulumi:STACK::PROJECT::TYPES::NAME)."""
    head, _, _ = owner_urn.rpartition("::")
    return f"{head}${MESH_JOIN_TYPE}::{name}"


class MeshJoin:
    """A container made a mesh member: a one-use enrollment key of its own, the join, the
    node Netmaker made for it (pinned when the config pins it), and a gate that completes
    once the container really holds its mesh address (fetching it from the server while not):
    the join itself for a member without a pin, a command after the pin for one with it.
    Its resources are children of `owner` (the MeshNode or BorderRouter): a component of
    their own carried nothing but one more resource per member, so it went, with an alias
    that keeps stacks made before from replacing them (a replaced member leaves the mesh)."""

    address: pulumi.Output[str]
    address6: pulumi.Output[Optional[str]]
    node_id: pulumi.Output[str]
    ready: pulumi.Resource
    """Completes once the container holds its mesh address (and its pin, when pinned)."""

    def __init__(self, name: str, args: MeshJoinArgs, owner: pulumi.Resource):
        access, container, host_name = args["access"], args["container"], args["host_name"]
        was = [pulumi.Alias(parent=owner.urn.apply(lambda u: former_parent(u, name)))]
        member_of = pulumi.ResourceOptions(parent=owner, aliases=was)
        # Made only now, so it lives seconds before its one use; the token reaches the
        # container only on the join's stdin, never its configuration (`docker inspect`).
        key = EnrollmentKey(
            f"{name}-{JOIN_PARTS[0]}",
            EnrollmentKeyArgs(
                connection=access.connection,
                networks=[access.network],
                tags=[pulumi.Output.from_input(access.network).apply(lambda n: member_key_tag(n, host_name))],
                uses=1,
                valid_for_seconds=MEMBER_KEY_SECONDS,
                for_host=host_name,
            ),
            pulumi.ResourceOptions.merge(member_of, pulumi.ResourceOptions(depends_on=[container, *args["join_after"]])),
        )
        # A member keeps its identity on its volume: re-run with a new key (an update), the
        # script finds the host a member already and reads no token. Without a pin the join
        # is also the gate (it waits until the container holds the address Netmaker gave);
        # a pin is set only once the node exists, so a gate after it waits for that address.
        gate = [] if args["pinned"] else ["addressed:{network}"]
        join = args["host"].run(
            f"{name}-{JOIN_PARTS[1]}",
            pulumi.Output.all(container.name, access.network).apply(lambda a: join_script(a[0], a[1], gate)),
            pulumi.ResourceOptions.merge(member_of, pulumi.ResourceOptions(depends_on=list(args["join_after"]))),
            stdin=pulumi.Output.secret(key.token),
            triggers=[container.id],
        )
        member = MeshMember(
            f"{name}-{JOIN_PARTS[2]}",
            MeshMemberArgs(connection=access.connection, network=access.network, host_name=host_name, pinned_address=args["pinned"]),
            pulumi.ResourceOptions.merge(member_of, pulumi.ResourceOptions(depends_on=[join])),
        )
        self.ready = converge(f"{name}-{JOIN_PARTS[3]}", container, member.address, [], args["host"], member_of) if args["pinned"] else join
        self.address, self.address6, self.node_id = member.address, member.address6, member.node_id
