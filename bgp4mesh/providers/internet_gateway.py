"""InternetGateway: one mesh host is the way to the whole Internet for the others
(Netmaker v1.6.0 ``/api/nodes/{network}/{node}/gateway`` with ``is_internet_gw``).

Netmaker v1.6.0 CE accepts an egress object with range ``*`` but gives clients no route
from it, and its older ``/inet_gw`` endpoint answers 200 yet leaves no gateway (a node
counts as an internet gateway only while it is a gateway). What works is a gateway with
its internet clients named: they become relayed IGW clients, and each gets 0.0.0.0/0
through the gateway in a routing table of its own, with rules that keep the host's own
traffic (its default interface's address, the gateway's endpoint) on the main table, so
a host stays reachable at its own address while its mesh address reaches the Internet
through the gateway. A client uses one internet gateway only.

Clients are given by host name. A changed client list re-creates the gateway (v1.6.0 has
no call that edits it); another gateway or network replaces the resource. A gateway
removed on the server is made again by the next ``pulumi up``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pulumi.dynamic import CheckFailure

from bgp4mesh.netmaker_api import NetmakerClient, NotFound
from bgp4mesh.providers.base import NetmakerProvider, NetmakerResource, known
from bgp4mesh.providers.fields import INPUT, OUTPUT, Field, Fields
from bgp4mesh.providers.egress import resolve_gateway
from bgp4mesh.providers.network import NETID_RE

PROVIDER_VERSION = "1"
KIND = "netmaker-internet-gateway"


FIELDS = Fields(
    Field("network", INPUT, replaces=True),
    Field("gateway_host_name", INPUT, replaces=True),
    Field("client_host_names", INPUT, doc="a changed list re-creates the gateway in place"),
    Field("host_wait_seconds", INPUT, default=0),
    Field("gateway_node_id", OUTPUT),
    Field("client_node_ids", OUTPUT),
)


class InternetGatewayProvider(NetmakerProvider):
    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[Fields] = FIELDS
    GONE_FIELD: ClassVar[str] = "network"
    GONE_MEANS_REPLACE: ClassVar[bool] = False  # update sets it again in place

    def validate(self, news: dict[str, Any]) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        net = news.get("network")
        if not net:
            failures.append(CheckFailure("network", "required"))
        elif known(net) and not NETID_RE.match(str(net)):
            failures.append(CheckFailure("network", f"'{net}' is not a Netmaker network id"))
        if not news.get("gateway_host_name"):
            failures.append(CheckFailure("gateway_host_name", "required"))
        clients = news.get("client_host_names")
        if known(clients) and isinstance(clients, list):
            if news.get("gateway_host_name") in clients:
                failures.append(CheckFailure("client_host_names", "the gateway cannot be its own client"))
            news["client_host_names"] = sorted(set(clients))
        return failures

    def _nodes(self, client: NetmakerClient, props: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        network, wait = props["network"], props.get("host_wait_seconds") or 0
        gateway = resolve_gateway(client, network, props["gateway_host_name"], wait, what="internet gateway host")
        clients = [resolve_gateway(client, network, name, wait, what="internet gateway client")["id"] for name in props["client_host_names"]]
        return gateway, sorted(clients)

    def create_object(self, client: NetmakerClient, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        gateway, clients = self._nodes(client, props)
        client.create_internet_gateway(props["network"], gateway["id"], clients)
        return f"{props['network']}/{props['gateway_host_name']}", {"gateway_node_id": gateway["id"], "client_node_ids": clients}

    def read_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        network, node_id = props.get("network"), props.get("gateway_node_id")
        if not known(network) or not node_id:
            return None
        try:
            node = client.get_node(str(network), str(node_id))
        except NotFound:
            return None
        if not node.get("isinternetgateway"):
            return None
        nodes = client.list_nodes(str(network))
        ids = sorted(n["id"] for n in nodes if n.get("internetgw_node_id") == node_id)
        hosts = {h.get("id"): h.get("name") for h in client.list_hosts()}
        names = {n.get("id"): hosts.get(n.get("hostid")) for n in nodes}
        return {
            "network": network,
            "gateway_host_name": hosts.get(node.get("hostid")),
            "client_host_names": sorted(str(names.get(i)) for i in ids),
            "gateway_node_id": node_id,
            "client_node_ids": ids,
        }

    def update_object(self, client: NetmakerClient, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        gateway, clients = self._nodes(client, news)
        if client.get_node(news["network"], gateway["id"]).get("is_gw"):
            client.delete_gateway(news["network"], gateway["id"])
        client.create_internet_gateway(news["network"], gateway["id"], clients)
        return {"gateway_node_id": gateway["id"], "client_node_ids": clients}

    def delete_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> None:
        try:
            client.delete_gateway(props["network"], props["gateway_node_id"])
        except NotFound:
            pass  # the node (or its network) is gone, and the gateway with it


InternetGatewayArgs = FIELDS.args_class("InternetGatewayArgs", PROVIDER_VERSION, __name__)


class InternetGateway(NetmakerResource, module="bgp4mesh", name="InternetGateway"):
    """The mesh host every client reaches the Internet through; its inputs and outputs are
    ``FIELDS`` above, with ``kind``."""

    PROVIDER = InternetGatewayProvider
