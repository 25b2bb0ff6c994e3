"""MeshMember: a netclient host's node in a network, as Pulumi sees it.

A netclient joins on its own (its container runs `netclient join`), and Netmaker
creates the node asynchronously with the lowest free address. This resource waits
for that node (by host name), pins its address when the config pins one
(`PUT /api/nodes/{net}/{id}` with `address`), and reports the node id and address
as outputs, so `pulumi stack output` shows every member's mesh IP.

Delete removes the host from Netmaker (`DELETE /api/hosts/{id}?force=true`), so a
removed node does not linger as an offline peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_interface
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure

from bgp4mesh.netmaker_api import AddressInUse, NetmakerClient, NotFound
from bgp4mesh.providers.base import NetmakerConnection, NetmakerProvider, connection_input, known, merge_opts
from bgp4mesh.providers.egress import GatewayNotFound, resolve_gateway
from bgp4mesh.waiting import WaitTimeout, until

PROVIDER_VERSION = "1"
PIN_WAIT_SECONDS = 60
KIND = "netmaker-mesh-member"


class MeshMemberProvider(NetmakerProvider):
    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[tuple[str, ...]] = ("network", "host_name", "pinned_address", "join_wait_seconds")
    REPLACE_ON: ClassVar[tuple[str, ...]] = ("network", "host_name")
    COMPUTED_DRIFT: ClassVar[tuple[str, ...]] = ("node_id",)
    GONE_FIELD: ClassVar[str] = "host_name"
    DEFAULTS: ClassVar[dict[str, Any]] = {"join_wait_seconds": 120, "pinned_address": None}

    def validate(self, news: dict[str, Any]) -> list[CheckFailure]:
        pinned = news.get("pinned_address")
        if pinned is not None and known(pinned):
            try:
                ip_address(pinned)
            except ValueError:
                return [CheckFailure("pinned_address", f"'{pinned}' is not an IP address")]
        return []

    @staticmethod
    def _node(client: NetmakerClient, props: dict[str, Any], wait: float) -> dict[str, Any]:
        return resolve_gateway(client, props["network"], props["host_name"], wait, what="mesh member")

    @staticmethod
    def _pin(client: NetmakerClient, network: str, node: dict[str, Any], pinned: str | None) -> dict[str, Any]:
        """Move the node to its pinned address. Another member that joined at the same time
        may hold it for a moment (Netmaker gives every joining node the lowest free
        address, then each is pinned): wait for it to move on to its own."""
        current = ip_interface(node["address"])
        if not pinned or str(current.ip) == pinned:
            return node
        try:
            return until(
                lambda: client.set_node_address(network, node["id"], f"{pinned}/{current.network.prefixlen}"),
                PIN_WAIT_SECONDS, every=1.0, retry_on=(AddressInUse,),
            )
        except WaitTimeout as exc:
            raise AddressInUse(f"pin {pinned}", f"{exc} (still, after {PIN_WAIT_SECONDS}s)") from None

    @staticmethod
    def _computed(node: dict[str, Any]) -> dict[str, Any]:
        return {"node_id": node["id"], "host_id": node.get("hostid"), "address": str(ip_interface(node["address"]).ip)}

    def create_object(self, client: NetmakerClient, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        node = self._node(client, props, float(props.get("join_wait_seconds") or 0))
        node = self._pin(client, props["network"], node, props.get("pinned_address"))
        return node["id"], self._computed(node)

    def read_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        try:
            node = self._node(client, props, 0)
        except GatewayNotFound:
            return None
        live = {"network": props["network"], "host_name": props["host_name"], **self._computed(node)}
        live["pinned_address"] = live["address"] if props.get("pinned_address") else None
        return live

    def update_object(self, client: NetmakerClient, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        node = self._node(client, news, float(news.get("join_wait_seconds") or 0))
        return self._computed(self._pin(client, news["network"], node, news.get("pinned_address")))

    def delete_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> None:
        host_id = props.get("host_id")
        if host_id:
            try:
                client.delete_host(host_id, force=True)
            except NotFound:
                pass


@dataclass
class MeshMemberArgs:
    connection: NetmakerConnection | dict[str, Any] | pulumi.Input[dict[str, Any]]
    network: pulumi.Input[str]
    host_name: pulumi.Input[str]
    """The name the netclient joined with (`netclient join -o NAME`)."""
    pinned_address: pulumi.Input[str] | None = None
    """Pin this mesh address; None keeps the one Netmaker assigned."""
    join_wait_seconds: pulumi.Input[int] = 120
    provider_version: str = PROVIDER_VERSION


class MeshMember(pulumi.dynamic.Resource, module="bgp4mesh", name="MeshMember"):
    """A joined host's node in a network, with its (optionally pinned) mesh address."""

    kind: pulumi.Output[str]
    network: pulumi.Output[str]
    host_name: pulumi.Output[str]
    node_id: pulumi.Output[str]
    host_id: pulumi.Output[str]
    address: pulumi.Output[str]

    def __init__(self, name: str, args: MeshMemberArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "kind": KIND,
            "connection": connection_input(args.connection),
            "network": args.network,
            "host_name": args.host_name,
            "pinned_address": args.pinned_address,
            "join_wait_seconds": args.join_wait_seconds,
            "provider_version": args.provider_version,
            "node_id": None,
            "host_id": None,
            "address": None,
        }
        super().__init__(MeshMemberProvider(), name, props, merge_opts(opts, ["connection"]))

