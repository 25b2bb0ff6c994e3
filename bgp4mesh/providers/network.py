"""NetmakerNetwork: a Netmaker network (``/api/networks``).

Resource ID = ``netid``. ``netid``, ``address_range`` and ``address_range6`` are immutable
in Netmaker v1.6.0 (PUT silently ignores the ranges), so any change replaces the network,
deleting first (the name and the CIDR must be free again before the create). A network that
was deleted on the server, or re-created there with other ranges, is replaced by the next
``pulumi up``.

Creating a network also makes a default enrollment key tagged ``<netid>``; deleting one
deletes the enrollment keys whose only network it was and its egress objects (EnrollmentKey
and EgressGateway resources notice that in their own diff).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure

from bgp4mesh.netmaker_api import NetmakerClient
from bgp4mesh.providers.base import (
    NetmakerConnection,
    NetmakerProvider,
    connection_input,
    known,
    merge_opts,
    normalize_cidr,
)

PROVIDER_VERSION = "1"
KIND = "netmaker-network"
NETID_RE = re.compile(r"^[a-z0-9_-]{1,32}$")


def _check_range(value: Any, version: int, field: str) -> tuple[str | None, list[CheckFailure]]:
    if not known(value) or value == "":
        return value, []
    try:
        norm = normalize_cidr(str(value), version)
    except ValueError as exc:
        return value, [CheckFailure(field, f"invalid IPv{version} CIDR '{value}': {exc}")]
    prefixlen = int(norm.split("/")[1])
    maxlen = 32 if version == 4 else 128
    if maxlen - prefixlen <= 1:
        return value, [CheckFailure(field, f"'{value}': Netmaker refuses /{prefixlen} networks (need room for hosts)")]
    return norm, []


class NetmakerNetworkProvider(NetmakerProvider):
    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[tuple[str, ...]] = ("netid", "address_range", "address_range6")
    REPLACE_ON: ClassVar[tuple[str, ...]] = ("netid", "address_range", "address_range6")
    COMPUTED_DRIFT: ClassVar[tuple[str, ...]] = ("network_id",)
    GONE_FIELD: ClassVar[str] = "netid"

    def validate(self, news: dict[str, Any]) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        netid = news.get("netid")
        if netid is None or netid == "":
            failures.append(CheckFailure("netid", "required"))
        elif known(netid) and not NETID_RE.match(str(netid)):
            failures.append(CheckFailure("netid", f"'{netid}': 1-32 characters of a-z, 0-9, '-' and '_'"))
        r4, f4 = _check_range(news.get("address_range"), 4, "address_range")
        r6, f6 = _check_range(news.get("address_range6"), 6, "address_range6")
        failures += f4 + f6
        news["address_range"] = r4 or None
        news["address_range6"] = r6 or None
        if news["address_range"] is None and news["address_range6"] is None:
            failures.append(CheckFailure("address_range", "an IPv4 and/or IPv6 range is required"))
        return failures

    @staticmethod
    def _computed(net: dict[str, Any]) -> dict[str, Any]:
        return {
            "network_id": net.get("id"),
            "default_keepalive": net.get("defaultkeepalive"),
            "default_mtu": net.get("defaultmtu"),
        }

    def create_object(self, client: NetmakerClient, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        net = client.create_network(props["netid"], props.get("address_range"), props.get("address_range6"))
        return net["netid"], self._computed(net)

    def read_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        net = client.find_network(id_)
        if net is None:
            return None
        return {
            "netid": net.get("netid"),
            "address_range": net.get("addressrange") or None,
            "address_range6": net.get("addressrange6") or None,
            **self._computed(net),
        }

    def delete_object(self, client: NetmakerClient, id_: str, props: dict[str, Any]) -> None:
        client.delete_network(id_, force=True)  # 200 also when it no longer exists


@dataclass
class NetmakerNetworkArgs:
    connection: NetmakerConnection | dict[str, Any] | pulumi.Input[dict[str, Any]]
    netid: pulumi.Input[str]
    address_range: pulumi.Input[str] | None
    address_range6: pulumi.Input[str] | None = None
    provider_version: str = PROVIDER_VERSION


class NetmakerNetwork(pulumi.dynamic.Resource, module="bgp4mesh", name="NetmakerNetwork"):
    """A Netmaker network. Outputs: ``netid``, ``address_range``, ``address_range6``,
    ``network_id`` (server uuid), ``default_keepalive``, ``default_mtu``, ``kind``."""

    kind: pulumi.Output[str]
    netid: pulumi.Output[str]
    address_range: pulumi.Output[str | None]
    address_range6: pulumi.Output[str | None]
    network_id: pulumi.Output[str]
    default_keepalive: pulumi.Output[int]
    default_mtu: pulumi.Output[int]
    provider_version: pulumi.Output[str]

    def __init__(self, name: str, args: NetmakerNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "kind": KIND,
            "connection": connection_input(args.connection),
            "netid": args.netid,
            "address_range": args.address_range,
            "address_range6": args.address_range6,
            "provider_version": args.provider_version,
            "network_id": None,
            "default_keepalive": None,
            "default_mtu": None,
        }
        super().__init__(NetmakerNetworkProvider(), name, props, merge_opts(opts, ["connection"]))
