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

from ipaddress import ip_address, ip_interface
from typing import Any, ClassVar

from pulumi.dynamic import CheckFailure

from bgp4mesh.netmaker_api import AddressInUse, NetmakerClient, NotFound
from bgp4mesh.providers.base import NetmakerProvider, NetmakerResource, known
from bgp4mesh.providers.fields import INPUT, OUTPUT, Field, Fields
from bgp4mesh.providers.egress import GatewayNotFound, resolve_gateway
from bgp4mesh.waiting import WaitTimeout, until

PROVIDER_VERSION = "1"
PIN_WAIT_SECONDS = 60
KIND = "netmaker-mesh-member"


FIELDS = Fields(
    Field("network", INPUT, replaces=True),
    Field("host_name", INPUT, replaces=True, doc="the name the netclient joined with (`netclient join -o NAME`)"),
    Field("pinned_address", INPUT, default=None, doc="pin this mesh address; None keeps the one Netmaker assigned"),
    Field("join_wait_seconds", INPUT, default=120),
    Field("node_id", OUTPUT, drift=True),
    Field("host_id", OUTPUT),
    Field("address", OUTPUT, doc="the node's mesh address"),
    Field("address6", OUTPUT, default=None, doc="the node's IPv6 mesh address (a network with an IPv6 range); None without"),
)


class MeshMemberProvider(NetmakerProvider):
    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[Fields] = FIELDS
    GONE_FIELD: ClassVar[str] = "host_name"

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
        address6 = str(ip_interface(node["address6"]).ip) if node.get("address6") else None
        return {"node_id": node["id"], "host_id": node.get("hostid"), "address": str(ip_interface(node["address"]).ip), "address6": address6}

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


MeshMemberArgs = FIELDS.args_class("MeshMemberArgs", PROVIDER_VERSION, __name__)


class MeshMember(NetmakerResource, module="bgp4mesh", name="MeshMember"):
    """A joined host's node in a network, with its (optionally pinned) mesh address; its
    inputs and outputs are ``FIELDS`` above, with ``kind``."""

    PROVIDER = MeshMemberProvider
